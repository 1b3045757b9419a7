"""Model zoo: VGG-style CNN, CIFAR ResNet family, user builders by import path."""

import math
import textwrap

import pytest
import torch
from torch import nn

from acthash.core.capture import neural_codes
from acthash.errors import InputError
from acthash.models import VGG, ResNet, build_model


def _main_path_layers(model: nn.Module) -> int:
    """Weighted layers on the main path: 3x3 convs plus Linear (1x1 shortcut convs excluded)."""
    convs = sum(1 for m in model.modules()
                if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    return convs + sum(1 for m in model.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("depth", [20, 32, 56])
def test_resnet_depth_counts_layers(depth):
    m = build_model(f"resnet{depth}", (3, 32, 32), 10, width_mult=0.25)
    assert _main_path_layers(m) == depth
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert _main_path_layers(build_model("resnet", (3, 32, 32), 10, depth=depth,
                                         width_mult=0.25)) == depth


def test_resnet_width_multiplier_and_code_length():
    m = build_model("resnet20", (3, 32, 32), 10, width_mult=0.5)
    chans = sorted({mod.out_channels for mod in m.modules() if isinstance(mod, nn.Conv2d)})
    assert chans == [8, 16, 32]  # 16, 32, 64 halved
    m.eval()
    codes = neural_codes(m, torch.rand(3, 3, 32, 32))
    # stem ReLU + 2 ReLUs per block x 3 blocks per stage, every channel at every position
    want = 8 * 32 * 32 + 6 * 8 * 32 * 32 + 6 * 16 * 16 * 16 + 6 * 32 * 8 * 8
    assert codes.n_bits == want and len(codes.layers) == 19


def test_resnet_parameter_count_matches_formula():
    m = ResNet((3, 32, 32), 10, depth=20)
    # 3x3 convs without bias, BN (2 per channel), projection shortcuts at stages 2 and 3
    stem = 3 * 16 * 9 + 2 * 16
    stage = lambda cin, c, n: (cin * c * 9 + c * c * 9 + 4 * c) + (n - 1) * (2 * c * c * 9 + 4 * c)  # noqa: E731
    proj = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    head = 64 * 10 + 10
    want = stem + stage(16, 16, 3) + stage(16, 32, 3) + stage(32, 64, 3) + proj + head
    assert sum(p.numel() for p in m.parameters()) == want


def test_vgg_batchnorm_width_and_small_inputs():
    m = build_model("vgg11", (1, 28, 28), 10, width_mult=0.125)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 32, 64, 64, 64, 64]
    assert sum(isinstance(mod, nn.BatchNorm2d) for mod in m.modules()) == 8
    pools = sum(isinstance(mod, nn.MaxPool2d) for mod in m.modules())
    assert pools == 4  # 28 -> 14 -> 7 -> 3 -> 1; the fifth pool would leave 0 pixels
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    m.eval()
    codes = neural_codes(m, torch.rand(2, 1, 28, 28))
    want = 8 * 28 * 28 + 16 * 14 * 14 + 2 * 32 * 7 * 7 + 2 * 64 * 3 * 3 + 2 * 64 * 1 * 1
    assert codes.n_bits == want
    v16 = build_model("vgg16", (3, 32, 32), 10, width_mult=0.0625)
    assert sum(isinstance(mod, nn.Conv2d) for mod in v16.modules()) == 13


def test_cnn_shape_errors():
    with pytest.raises(ValueError, match=r"image inputs \(C, H, W\).*--model mlp"):
        build_model("vgg11", (40,), 10)
    with pytest.raises(ValueError, match="6n\\+2"):
        build_model("resnet", (3, 32, 32), 10, depth=1)
    with pytest.raises(ValueError, match="unknown model 'vgg7'"):
        build_model("vgg7", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="unknown VGG config"):
        VGG((3, 8, 8), 10, config="vgg7")


def test_mlp_options_still_apply():
    m = build_model("mlp", (1, 8, 8), 10, widths=[5, 7], batchnorm=True, activation="relu6")
    linears = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(64, 5), (5, 7), (7, 10)]
    assert sum(isinstance(mod, nn.BatchNorm1d) for mod in m.modules()) == 2
    assert sum(isinstance(mod, nn.ReLU6) for mod in m.modules()) == 2


def test_user_builder_from_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(textwrap.dedent("""
        import math
        from torch import nn

        def tiny(input_shape, n_classes, width=4, **_):
            return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width),
                                 nn.LeakyReLU(), nn.Linear(width, n_classes))

        def not_a_model(input_shape, n_classes, **_):
            return 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    m = build_model("my_models:tiny", (1, 8, 8), 3, width=6)
    assert m[1].in_features == math.prod((1, 8, 8)) and m[1].out_features == 6
    assert neural_codes(m, torch.rand(4, 1, 8, 8)).n_bits == 6
    with pytest.raises(InputError, match="not an nn.Module"):
        build_model("my_models:not_a_model", (1, 8, 8), 3)
    with pytest.raises(ValueError, match="cannot import 'my_models:missing'"):
        build_model("my_models:missing", (1, 8, 8), 3)
    # the same path works end to end through a run
    from acthash.runs.experiment import RunConfig, run_experiment

    res = run_experiment(RunConfig(model="my_models:tiny", width=5, epochs=1, sample_size=100,
                                   kmeans_n_init=1), write=False)
    assert len(res.metrics) == 1 and res.metrics["epoch"].iloc[0] == 1
