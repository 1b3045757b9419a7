"""Capture: codes of hand-set networks, functional and reused activations, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from acthash import NoReluUnitError, capture, list_layers, neural_codes
from acthash.errors import InputError


def _linear(w, b):
    lin = nn.Linear(len(w[0]), len(w))
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w, dtype=torch.float32))
        lin.bias.copy_(torch.tensor(b, dtype=torch.float32))
    return lin


def test_hand_set_two_layer_net_codes():
    # layer 1: h = relu([x1 - x2, x1 + x2 - 1, -x1])
    # layer 2: relu([h1 - h2, h3 - 0.5])
    net = nn.Sequential(
        _linear([[1, -1], [1, 1], [-1, 0]], [0, -1, 0]),
        nn.ReLU(),
        _linear([[1, -1, 0], [0, 0, 1]], [0, -0.5]),
        nn.ReLU(),
    )
    x = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-1.0, 0.5], [0.5, 0.25]])
    # by hand:
    # [2,0]:   pre1 = [2, 1, -2] -> bits 1 1 0; h = [2,1,0]; pre2 = [1, -0.5] -> 1 0
    # [0,2]:   pre1 = [-2, 1, 0] -> 0 1 0;   h = [0,1,0]; pre2 = [-1, -0.5] -> 0 0
    # [-1,.5]: pre1 = [-1.5,-1.5,1] -> 0 0 1; h = [0,0,1]; pre2 = [0, 0.5] -> 0 1
    # [.5,.25]: pre1 = [.25,-.25,-.5] -> 1 0 0; h=[.25,0,0]; pre2 = [.25,-.5] -> 1 0
    expected = np.array(
        [
            [1, 1, 0, 1, 0],
            [0, 1, 0, 0, 0],
            [0, 0, 1, 0, 1],
            [1, 0, 0, 1, 0],
        ],
        dtype=np.uint8,
    )
    codes = neural_codes(net, x)
    assert codes.n_bits == 5
    np.testing.assert_array_equal(codes.unpack(), expected)
    assert [s.name for s in codes.layers] == ["1", "3"]
    assert [(s.start, s.stop) for s in codes.layers] == [(0, 3), (3, 5)]


class ResBlock(nn.Module):
    """Reuses one nn.ReLU twice and calls F.relu once, like torchvision's BasicBlock."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 4)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.fc1(x))
        out = self.fc2(out)
        out = self.relu(out + x)
        return F.relu(out - 0.1)


def test_reused_relu_and_functional_relu_are_separate_layers():
    torch.manual_seed(0)
    block = ResBlock()
    x = torch.randn(50, 4)
    codes = neural_codes(block, x)
    assert [s.name for s in codes.layers] == ["relu", "relu#2", ":relu"]
    with torch.no_grad():
        p1 = block.fc1(x)
        h = torch.relu(p1)
        p2 = block.fc2(h) + x
        p3 = torch.relu(p2) - 0.1
    expected = torch.cat([p1 > 0, p2 > 0, p3 > 0], dim=1).numpy().astype(np.uint8)
    np.testing.assert_array_equal(codes.unpack(), expected)


def test_functional_forms_match_module_forms():
    torch.manual_seed(1)
    lin1, lin2, lin3, lin4 = (nn.Linear(6, 6) for _ in range(4))

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.l3, self.l4 = lin1, lin2, lin3, lin4

        def forward(self, x):
            x = F.relu(self.l1(x))
            x = torch.relu(self.l2(x))
            x = self.l3(x).relu()
            return self.l4(x).relu_()

    modular = nn.Sequential(lin1, nn.ReLU(), lin2, nn.ReLU(), lin3, nn.ReLU(), lin4, nn.ReLU())
    x = torch.randn(64, 6)
    a, b = neural_codes(Functional(), x), neural_codes(modular, x)
    assert a.n_bits == b.n_bits == 24
    assert len(a.layers) == 4
    np.testing.assert_array_equal(a.unpack(), b.unpack())


def test_conv_batchnorm_inplace_relu_uses_preactivation():
    torch.manual_seed(2)
    conv, bn = nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5)
    with torch.no_grad():  # non-trivial running statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    model = nn.Sequential(conv, bn, nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(5 * 6 * 6, 3))
    x = torch.randn(20, 3, 6, 6)
    codes = neural_codes(model, x)
    model.eval()
    with torch.no_grad():
        pre = bn(conv(x))
    expected = (pre > 0).reshape(20, -1).numpy().astype(np.uint8)
    assert codes.n_bits == 5 * 6 * 6
    assert codes.layers[0].shape == (5, 6, 6)
    np.testing.assert_array_equal(codes.unpack(), expected)


def test_leaky_relu_and_relu6_and_hardtanh_bits():
    ident = _linear([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [0, 0, 0])
    x = torch.tensor([[-1.0, 3.0, 7.0], [0.5, -0.5, 6.5], [2.0, 0.0, -3.0]])
    leaky = neural_codes(nn.Sequential(ident, nn.LeakyReLU(0.1)), x)
    np.testing.assert_array_equal(leaky.unpack(), [[0, 1, 1], [1, 0, 1], [1, 0, 0]])
    relu6 = neural_codes(nn.Sequential(ident, nn.ReLU6()), x)
    assert relu6.layers[0].bits_per_unit == 2 and relu6.n_bits == 6
    # kink-major: [x > 0 for 3 units] then [x > 6 for 3 units]
    np.testing.assert_array_equal(
        relu6.unpack(), [[0, 1, 1, 0, 0, 1], [1, 0, 1, 0, 0, 1], [1, 0, 0, 0, 0, 0]]
    )
    ht = neural_codes(nn.Sequential(ident, nn.Hardtanh()), x)
    # kinks at -1 and 1; x = -1 is not > -1
    np.testing.assert_array_equal(
        ht.unpack(), [[0, 1, 1, 0, 1, 1], [1, 1, 1, 0, 0, 1], [1, 1, 0, 1, 0, 0]]
    )


def test_functional_hardtanh_kinks_follow_arguments():
    class M(nn.Module):
        def forward(self, x):
            return F.hardtanh(x, min_val=0.0, max_val=2.0)

    x = torch.tensor([[-1.0, 1.0, 3.0]])
    codes = neural_codes(M(), x)
    np.testing.assert_array_equal(codes.unpack(), [[0, 1, 1, 0, 0, 1]])


def test_prelu_rrelu_eval_captured():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 5), nn.PReLU(), nn.Linear(5, 5), nn.RReLU())
    x = torch.randn(30, 4)
    codes = neural_codes(model, x)
    assert [s.kind for s in codes.layers] == ["prelu", "rrelu"]
    with torch.no_grad():
        p1 = model[0](x)
        p2 = model[2](model[1](p1))
    np.testing.assert_array_equal(
        codes.unpack(), torch.cat([p1 > 0, p2 > 0], 1).numpy().astype(np.uint8)
    )


def test_inputs_in_any_form_give_the_same_codes():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(37, 3)
    y = torch.arange(37) % 2
    ref = neural_codes(model, x, batch_size=1000)
    small = neural_codes(model, x, batch_size=5)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    via_loader = neural_codes(model, loader)
    via_list = neural_codes(model, [x[:10], x[10:]])
    via_numpy = neural_codes(model, x.numpy())
    for other in (small, via_loader, via_list, via_numpy):
        assert other.equals(ref)
    np.testing.assert_array_equal(via_loader.labels, y.numpy())


def test_layer_selection_and_listing():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 6), nn.ReLU6())
    x = torch.randn(10, 3)
    full = neural_codes(model, x)
    only = neural_codes(model, x, layers="^3$")
    assert only.n_bits == 12 and [s.name for s in only.layers] == ["3"]
    np.testing.assert_array_equal(only.unpack(), full.unpack()[:, 4:])
    by_list = neural_codes(model, x, layers=["1"])
    np.testing.assert_array_equal(by_list.unpack(), full.unpack()[:, :4])
    with pytest.raises(ValueError, match="captured layers are"):
        neural_codes(model, x, layers=["nope"])
    table = list_layers(model, x)
    assert list(table["layer"]) == ["1", "3"]
    assert list(table["units"]) == [4, 6]
    assert list(table["stop"]) == [4, 16]


def test_model_state_is_restored_and_outputs_kept():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    model.train()
    x = torch.randn(16, 3)
    cap = capture(model, x, keep_outputs=True)
    assert model.training
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(cap.outputs, model(x))


def test_no_relu_unit_error_names_the_fix():
    model = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2))
    with pytest.raises(NoReluUnitError, match="GELU") as err:
        neural_codes(model, torch.randn(4, 3))
    assert "nn.ReLU" in str(err.value)


def test_bad_inputs_give_clear_errors():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = torch.randn(10, 3)
    x[7, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf \(rows \[7\]"):
        neural_codes(model, x)
    with pytest.raises(ValueError, match="empty"):
        neural_codes(model, torch.empty(0, 3))
    with pytest.raises(ValueError, match="labels have length 3 but there are 10 examples"):
        neural_codes(model, torch.randn(10, 3), labels=[0, 1, 2])
    with pytest.raises(InputError, match="nn.Module"):
        neural_codes(lambda t: t, x)


def test_device_side_packing_matches_numpy(rng):
    from acthash.core.capture import pack_bits_torch

    for n_bits in (1, 8, 13, 64, 100):
        bits = rng.integers(0, 2, size=(17, n_bits)).astype(bool)
        np.testing.assert_array_equal(
            pack_bits_torch(torch.from_numpy(bits)).numpy(), np.packbits(bits, axis=1)
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_codes_on_gpu_equal_codes_on_cpu():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 21), nn.ReLU6(), nn.Linear(21, 3))
    model = model.double()  # float64 on both sides: no TF32, no near-zero flips
    x = torch.randn(300, 1, 8, 8, dtype=torch.float64)
    cpu = neural_codes(model, x, batch_size=64)
    gpu = neural_codes(model.cuda(), x, batch_size=64)
    assert gpu.equals(cpu)


def test_activation_recorder_reports_calls_and_restores_the_model():
    from acthash import ActivationRecorder

    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3), nn.Hardtanh(-0.5, 0.5))
    model.train()
    model[2].eval()  # a mixed train/eval state is restored module by module
    seen = []
    with ActivationRecorder(model, before=lambda c: seen.append((c.index, c.name, c.kind,
                                                                 c.n_kinks))) as rec:
        assert not model.training
        rec(torch.randn(5, 4))
        assert rec.calls == 2
    assert seen == [(0, "1", "relu", 1), (1, "3", "hardtanh", 2)]
    assert model.training and not model[2].training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())

    def boom(call):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        with ActivationRecorder(model, before=boom) as rec:
            rec(torch.randn(5, 4))
    assert model.training and not model[2].training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_capture_and_codes_reject_an_unknown_layer_name_alike():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3), nn.ReLU())
    x = torch.randn(5, 4)
    with pytest.raises(InputError, match=r"unknown layer\(s\) \['nope'\]"):
        neural_codes(model, x, layers=["1", "nope"])
    codes = neural_codes(model, x)
    with pytest.raises(InputError, match=r"unknown layer\(s\) \['nope'\]"):
        codes.select_layers(["1", "nope"])
    assert codes.select_layers(["3"]).equals(neural_codes(model, x, layers=["3"]))
