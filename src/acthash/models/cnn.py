"""Convolutional models for (C, H, W) images: a VGG-style CNN and a CIFAR-style ResNet.

Both use BatchNorm before a ReLU-like activation module and take a ``width_mult`` that scales
every channel count (rounded, at least 1), so model size can be swept like an MLP's width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from acthash.errors import InputError
from acthash.models.mlp import make_activation

__all__ = ["VGG", "ResNet", "BasicBlock", "VGG_CONFIGS"]

# channel counts, "M" = 2x2 max-pool (Simonyan & Zisserman's configurations A, B, D, E)
VGG_CONFIGS: dict[str, list] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def _scaled(c: int, width_mult: float) -> int:
    return max(1, int(round(c * width_mult)))


def _check_image_shape(input_shape, what: str) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise InputError(f"{what} needs image inputs (C, H, W), got input shape {shape}; use "
                         "--model mlp for flat or 1-D data")
    return shape  # type: ignore[return-value]


class VGG(nn.Module):
    """VGG-style CNN: [Conv3x3 -> BatchNorm -> act] blocks with 2x2 max-pools, global
    average pooling, one Linear classifier (the CIFAR variant of VGG).

    input_shape : (C, H, W); pools that would shrink a side below 1 pixel are skipped
    config : a list of channel counts and "M", or a name in ``VGG_CONFIGS``
    width_mult : multiplies every channel count
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int = 10,
                 config: str | list = "vgg11", width_mult: float = 1.0,
                 batchnorm: bool = True, activation: str = "relu") -> None:
        super().__init__()
        c, h, w = _check_image_shape(input_shape, "VGG")
        if width_mult <= 0:
            raise InputError(f"width_mult must be > 0, got {width_mult}")
        if isinstance(config, str):
            if config not in VGG_CONFIGS:
                raise InputError(f"unknown VGG config {config!r}; choose {list(VGG_CONFIGS)}")
            config = VGG_CONFIGS[config]
        layers: list[nn.Module] = []
        for item in config:
            if item == "M":
                if h >= 2 and w >= 2:
                    layers.append(nn.MaxPool2d(2))
                    h, w = h // 2, w // 2
                continue
            out = _scaled(int(item), width_mult)
            layers.append(nn.Conv2d(c, out, 3, padding=1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(make_activation(activation))
            c = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = make_activation(activation)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet (He et al. 2016, section 4.2): a 3x3 stem, three stages of ``n``
    basic blocks with 16, 32, 64 channels (times ``width_mult``; stride 2 at stages 2 and 3),
    global average pooling and a Linear classifier. Depth = 6n + 2 (20, 32, 44, 56, 110).
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int = 10, depth: int = 20,
                 width_mult: float = 1.0, activation: str = "relu") -> None:
        super().__init__()
        c, _, _ = _check_image_shape(input_shape, "ResNet")
        if depth < 8 or (depth - 2) % 6:
            raise InputError(f"ResNet depth must be 6n+2 (8, 14, 20, 32, 44, 56, 110), got {depth}")
        if width_mult <= 0:
            raise InputError(f"width_mult must be > 0, got {width_mult}")
        n = (depth - 2) // 6
        widths = [_scaled(16 * m, width_mult) for m in (1, 2, 4)]
        self.depth = depth
        self.stem = nn.Sequential(nn.Conv2d(c, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), make_activation(activation))
        stages = []
        c_in = widths[0]
        for i, c_out in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(c_in, c_out, stride=2 if (i > 0 and j == 0) else 1,
                                         activation=activation))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_in, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.head(torch.flatten(self.pool(x), 1))
