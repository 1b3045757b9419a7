"""Empirical NTK: every method equals an independent per-example autograd loop."""

import numpy as np
import pytest
import torch
from torch import nn

from acthash.errors import ResourceError
from acthash.models import MLP
from acthash.spectrum.ntk import choose_method, ntk

METHODS = ["structured", "jacobian", "ntk-vp"]


def reference_gram(model, x, x2=None):
    """Independent reference: one torch.autograd.grad per example and output, float64.

    Returns (C, N1, N2) per-logit kernels."""
    model = model.double().eval()
    params = [p for p in model.parameters() if p.requires_grad]

    def jac(xs):
        rows = []
        for i in range(len(xs)):
            xi = xs[i : i + 1]
            out = model(xi.double() if xi.is_floating_point() else xi).reshape(-1)
            rows.append(torch.stack([
                torch.cat([g.reshape(-1) for g in
                           torch.autograd.grad(out[c], params, retain_graph=True)])
                for c in range(out.numel())]))
        return torch.stack(rows)  # (N, C, P)

    j1 = jac(x)
    j2 = j1 if x2 is None else jac(x2)
    return torch.einsum("ncp,mcp->cnm", j1, j2)


@pytest.fixture
def mlp3():
    torch.manual_seed(0)
    return MLP(5, [7, 6], n_classes=3, activation="leaky_relu")


@pytest.fixture
def mlp1():
    torch.manual_seed(1)
    return MLP(2, [8, 8, 8], n_classes=1, activation="leaky_relu")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunk", [None, 4])
def test_scalar_output_matches_loop(mlp1, method, chunk):
    x = torch.randn(11, 2)
    ref = reference_gram(_copy(mlp1), x)[0]
    g = ntk(mlp1, x, method=method, dtype=torch.float64, chunk_size=chunk)
    assert g.shape == (11, 11) and g.dtype == torch.float64
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


def _copy(model):
    import copy

    return copy.deepcopy(model)


@pytest.mark.parametrize("method", METHODS)
def test_per_logit_and_trace_match_loop(mlp3, method):
    x = torch.randn(9, 5)
    ref = reference_gram(_copy(mlp3), x)
    per = ntk(mlp3, x, output="per-logit", method=method, dtype=torch.float64, chunk_size=4)
    tr = ntk(mlp3, x, output="trace", method=method, dtype=torch.float64)
    assert per.shape == (3, 9, 9)
    torch.testing.assert_close(per, ref, atol=1e-10, rtol=0)
    torch.testing.assert_close(tr, ref.sum(0), atol=1e-10, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_cross_kernel_matches_loop(mlp3, method):
    x, x2 = torch.randn(6, 5), torch.randn(4, 5)
    ref = reference_gram(_copy(mlp3), x, x2)
    g = ntk(mlp3, x, x2, output="per-logit", method=method, dtype=torch.float64, chunk_size=3)
    assert g.shape == (3, 6, 4)
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_conv_batchnorm_model_matches_loop(method):
    """Conv2d through unfolded patches; BatchNorm (in train mode!) via the generic path."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.LeakyReLU(),
                          nn.Conv2d(3, 2, 3, stride=2), nn.Flatten(), nn.Linear(8, 1))
    x = torch.randn(5, 2, 6, 6)
    with torch.no_grad():
        model(x)  # update BatchNorm running stats so they are not trivial
    model.train()
    ref = reference_gram(_copy(model), x)[0]
    g = ntk(model, x, method=method, dtype=torch.float64, chunk_size=2)
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)
    assert model.training  # mode restored
    assert next(model.parameters()).dtype == torch.float32  # original model untouched


def test_frozen_parameters_are_left_out(mlp1):
    mlp1.features[1].weight.requires_grad_(False)
    x = torch.randn(6, 2)
    ref = reference_gram(_copy(mlp1), x)[0]
    for method in METHODS:
        torch.testing.assert_close(ntk(mlp1, x, method=method, dtype=torch.float64), ref,
                                   atol=1e-10, rtol=0)


def test_gram_is_symmetric_psd(mlp3):
    x = torch.randn(20, 5)
    for out in ("trace", "per-logit"):
        g = ntk(mlp3, x, output=out, dtype=torch.float64)
        gs = g if g.dim() == 3 else g[None]
        for k in gs:
            torch.testing.assert_close(k, k.T, atol=1e-12, rtol=0)
            w = torch.linalg.eigvalsh(k)
            assert w.min() >= -1e-10 * w.max()
    # 20 inputs but only 5+1 parameters per output in a linear model: rank <= 6
    lin = nn.Linear(5, 1).double()
    w = torch.linalg.eigvalsh(ntk(lin, x.double()))
    assert (w > 1e-8 * w.max()).sum() == 6


def test_linear_model_kernel_is_x_xT_plus_one():
    x = torch.randn(7, 4, dtype=torch.float64)
    lin = nn.Linear(4, 1).double()
    for method in METHODS:
        torch.testing.assert_close(ntk(lin, x, method=method), x @ x.T + 1, atol=1e-12, rtol=0)


def test_errors(mlp3):
    x = torch.randn(4, 5)
    assert ntk(mlp3, x).shape == (4, 4)  # auto output = trace for 3 logits
    with pytest.raises(ValueError, match="output='trace'"):
        ntk(mlp3, x, output="scalar")
    with pytest.raises(ValueError, match="unknown method"):
        ntk(mlp3, x, method="fast")
    with pytest.raises(ValueError, match="chunk_size"):
        ntk(mlp3, x, chunk_size=0)
    with pytest.raises(ValueError, match="memory_budget"):
        ntk(mlp3, x, memory_budget=0)
    with pytest.raises(ValueError, match="x2"):
        ntk(mlp3, x, torch.randn(3, 4))
    with pytest.raises(ValueError, match="no trainable"):
        ntk(nn.Linear(5, 1).requires_grad_(False), x)


def test_float32_close_to_float64(mlp3):
    x = torch.randn(10, 5)
    g32 = ntk(mlp3, x)
    g64 = ntk(mlp3, x, dtype=torch.float64)
    assert g32.dtype == torch.float32
    np.testing.assert_allclose(g32.numpy(), g64.numpy(), rtol=1e-4, atol=1e-4)


class _TokenNet(nn.Module):
    """A Linear shared over 3 positions (weight sharing), no bias, and a (N,) output."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 5, bias=False)
        self.out = nn.Linear(5, 1)

    def forward(self, x):  # x: (N, 3, 4)
        h = torch.nn.functional.leaky_relu(self.proj(x)).mean(1)
        return self.out(h).squeeze(-1)


@pytest.mark.parametrize("method", METHODS)
def test_shared_linear_and_flat_output_match_loop(method):
    torch.manual_seed(3)
    model = _TokenNet()
    x = torch.randn(6, 3, 4)
    ref = reference_gram(_copy(model), x)[0]
    g = ntk(model, x, method=method, dtype=torch.float64, chunk_size=4)
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


def test_integer_inputs_and_embedding_use_generic_path():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(6, 1))
    x = torch.randint(0, 10, (7, 2))
    ref = reference_gram(_copy(model), x)[0]
    for method in METHODS:
        torch.testing.assert_close(ntk(model, x, method=method, dtype=torch.float64), ref,
                                   atol=1e-10, rtol=0)


# ---------------------------------------------------------------------------------------
# convolutions: every layout option of Conv1d/Conv2d against the independent loop

CONV2D = {
    "stride2-pad1": dict(kernel_size=3, stride=2, padding=1),
    "pad-tuple-rect-kernel": dict(kernel_size=(3, 2), padding=(1, 0), stride=(1, 2)),
    "dilation2": dict(kernel_size=3, dilation=2, padding=2),
    "same-even-kernel": dict(kernel_size=4, padding="same"),
    "same-dilated": dict(kernel_size=3, padding="same", dilation=(2, 1)),
    "valid-no-bias": dict(kernel_size=3, padding="valid", bias=False),
    "groups2": dict(kernel_size=3, padding=1, groups=2),
    "reflect": dict(kernel_size=3, padding=1, padding_mode="reflect"),
    "replicate-stride": dict(kernel_size=3, padding=2, padding_mode="replicate", stride=2),
    "circular": dict(kernel_size=3, padding=1, padding_mode="circular"),
}


@pytest.mark.parametrize("name", sorted(CONV2D))
@pytest.mark.parametrize("method", ["structured", "auto"])
def test_conv2d_options_match_loop(name, method):
    torch.manual_seed(5)
    conv = nn.Conv2d(4, 6, **CONV2D[name])
    model = nn.Sequential(conv, nn.Tanh(), nn.Conv2d(6, 3, 1, groups=3), nn.Flatten(),
                          nn.LazyLinear(2))
    x = torch.randn(5, 4, 7, 8)
    model(x)  # materialize the lazy layer
    ref = reference_gram(_copy(model), x)
    g = ntk(model, x, output="per-logit", method=method, dtype=torch.float64, chunk_size=3)
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=2, dilation=3, padding="same", groups=3),
                                dict(kernel_size=3, padding=1, padding_mode="reflect")])
def test_conv1d_matches_loop(kw):
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv1d(3, 6, **kw), nn.ReLU(), nn.Flatten(), nn.LazyLinear(1))
    x = torch.randn(6, 3, 9)
    model(x)
    ref = reference_gram(_copy(model), x)[0]
    torch.testing.assert_close(ntk(model, x, method="structured", dtype=torch.float64), ref,
                               atol=1e-10, rtol=0)


def test_depthwise_conv_channels_last_and_cross_kernel():
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.LeakyReLU(),
                          nn.Conv2d(4, 8, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 3))
    x = torch.randn(4, 4, 6, 6).to(memory_format=torch.channels_last)
    x2 = torch.randn(3, 4, 6, 6)
    ref = reference_gram(_copy(model), x, x2)
    g = ntk(model, x, x2, output="per-logit", method="structured", dtype=torch.float64)
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


class _ResBlock(nn.Module):
    """conv-ReLU-conv plus a skip connection, in-place ReLUs, and one conv used twice."""

    def __init__(self, c=4):
        super().__init__()
        self.stem = nn.Conv2d(2, c, 3, padding=1)
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Linear(c, 1)

    def forward(self, x):
        h = self.act(self.stem(x))
        h = self.act(h + self.c2(self.act(self.c1(h))))
        h = self.act(h + self.c2(h))  # weight sharing: c2 called twice
        return self.head(h.mean((2, 3)))


@pytest.mark.parametrize("chunk", [None, 2])
def test_residual_block_with_shared_conv_matches_loop(chunk):
    torch.manual_seed(8)
    model = _ResBlock()
    x = torch.randn(5, 2, 5, 5)
    ref = reference_gram(_copy(model), x)[0]
    g, plan = ntk(model, x, method="structured", dtype=torch.float64, chunk_size=chunk,
                  return_info=True)
    assert plan.method == "structured" and plan.note == ""
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


def test_single_position_conv_uses_hadamard_form():
    """A conv whose output has one position is a Linear layer: (δδᵀ)∘(aaᵀ) form."""
    torch.manual_seed(9)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 5),
                          nn.ReLU(), nn.Flatten(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 1))
    x = torch.randn(7, 3, 5, 5)
    ref = reference_gram(_copy(model), x)[0]
    g, plan = ntk(model, x, method="structured", dtype=torch.float64, return_info=True)
    forms = {ly.name: ly.hadamard for ly in plan.layers}
    assert forms == {"0": False, "2": True, "5": True, "7": False}
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


def test_symmetric_blocked_product_matches_full():
    """N = 203: row blocks of 48 on and above the diagonal, the last one partial."""
    torch.manual_seed(10)
    model = MLP(3, [16], n_classes=1, activation="relu").double()
    x = torch.randn(203, 3, dtype=torch.float64)
    g = ntk(model, x, method="structured")
    ref = ntk(model, x, method="jacobian", chunk_size=100)
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


# ---------------------------------------------------------------------------------------
# method="auto": the cost model, its record, the memory budget and the fallbacks


def test_auto_picks_by_cost_and_records_estimates(mlp1):
    x = torch.randn(600, 2)
    g, plan = ntk(mlp1, x, return_info=True)
    assert plan.requested == "auto" and plan.method == "structured"
    assert set(plan.estimates) == {"structured", "jacobian", "ntk-vp", "loop"}
    est = plan.estimates
    # the structured path's kernel work is N²·(widths), the Jacobian's N²·P
    assert est["structured"].macs < est["jacobian"].macs < est["ntk-vp"].macs
    assert all(e.fits for e in est.values())
    line = plan.summary()
    assert line.startswith("ntk: method=structured (auto)") and "jacobian" in line
    # two examples: the per-example loop has no set-up cost to amortise
    assert choose_method(mlp1, x[:2]).method == "loop"
    # parameters mostly outside Linear/Conv layers: the Jacobian path
    ln = nn.Sequential(nn.LayerNorm(400), nn.Linear(400, 1, bias=False).requires_grad_(False))
    assert choose_method(ln, torch.randn(50, 400)).method == "jacobian"
    # the choice does not change the kernel
    torch.testing.assert_close(g, ntk(mlp1, x, method="jacobian", chunk_size=200),
                               atol=1e-4, rtol=1e-4)


def test_small_budget_chunks_and_too_small_budget_errors(mlp3):
    torch.manual_seed(11)
    x = torch.randn(40, 5)
    ref = reference_gram(_copy(mlp3), x).sum(0)
    full = choose_method(mlp3, x, dtype=torch.float64, memory_budget=2**30)
    assert full.chunk_size is None
    need = full.estimates[full.method].bytes
    g, plan = ntk(mlp3, x, dtype=torch.float64, memory_budget=int(need * 0.7),
                  return_info=True)
    assert plan.chunk_size is not None and plan.chunk_size < 40
    assert plan.estimates[plan.method].bytes <= need * 0.7
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)
    with pytest.raises(ResourceError, match="chunk_size"):
        ntk(mlp3, x, memory_budget=1000)
    with pytest.raises(ResourceError, match="chunk_size"):
        ntk(mlp3, x, chunk_size=40, memory_budget=int(need * 0.3))


class _TiedNet(nn.Module):
    """The hidden layer's weight is used a second time outside the layer."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        h = torch.tanh(self.hidden(x))
        return self.out(torch.nn.functional.linear(h, self.hidden.weight))


class _BatchMixer(nn.Module):
    """Subtracts the batch mean: examples are not independent within a batch."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 5)
        self.b = nn.Linear(5, 1)

    def forward(self, x):
        h = self.a(x)
        return self.b(torch.tanh(h - h.mean(0, keepdim=True) + h))


@pytest.mark.parametrize("cls", [_TiedNet, _BatchMixer])
def test_structured_check_falls_back_to_jacobian(cls):
    torch.manual_seed(12)
    model = cls()
    x = torch.randn(6, 4 if cls is _TiedNet else 3)
    ref = reference_gram(_copy(model), x)[0]
    with pytest.warns(RuntimeWarning, match="Jacobian path"):
        g, plan = ntk(model, x, method="structured", dtype=torch.float64, return_info=True)
    assert plan.method == "jacobian" and "gradient check" in plan.note
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


def test_unsupported_layer_goes_through_jacobian_with_note():
    torch.manual_seed(13)
    model = nn.Sequential(nn.Conv3d(1, 2, 2), nn.Flatten(), nn.Linear(2 * 27, 8), nn.ReLU(),
                          nn.Linear(8, 1))
    x = torch.randn(5, 1, 4, 4, 4)
    ref = reference_gram(_copy(model), x)[0]
    g, plan = ntk(model, x, method="structured", dtype=torch.float64, return_info=True)
    assert plan.rest == ["0.weight", "0.bias"] and "Jacobian path" in plan.note
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


class _BatchDependent(nn.Module):
    """Calls its hidden layer twice for batches of more than one example."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(3, 3)
        self.out = nn.Linear(3, 1)

    def forward(self, x):
        z = torch.tanh(self.h(x))
        if len(x) > 1:
            z = z + 0 * self.h(z)
        return self.out(z)


def test_layer_calls_differing_from_probe_fall_back():
    torch.manual_seed(14)
    model = _BatchDependent()
    x = torch.randn(5, 3)
    ref = reference_gram(_copy(model), x)[0]  # one example at a time, as the Jacobian path
    with pytest.warns(RuntimeWarning, match="differently from the probe"):
        g, plan = ntk(model, x, method="structured", dtype=torch.float64, return_info=True)
    assert plan.method == "jacobian"
    torch.testing.assert_close(g, ref, atol=1e-10, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_structured_conv_on_cuda_matches_loop():
    torch.manual_seed(15)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding="same", groups=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 25, 2)).cuda()
    x = torch.randn(6, 2, 5, 5, device="cuda")
    ref = reference_gram(_copy(model).cpu(), x.cpu())
    g = ntk(model, x, output="per-logit", method="structured", dtype=torch.float64)
    assert g.device.type == "cuda"
    torch.testing.assert_close(g.cpu(), ref, atol=1e-10, rtol=0)
