"""Empirical NTK: every method equals an independent per-example autograd loop."""

import numpy as np
import pytest
import torch
from torch import nn

from acthash.models import MLP
from acthash.ntk import choose_method, ntk

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


def test_auto_choices_and_errors(mlp3):
    assert choose_method(mlp3) == "structured"
    assert choose_method(nn.Sequential(nn.Flatten(), nn.LayerNorm(400),
                                       nn.Linear(400, 1, bias=False).requires_grad_(False))
                         ) == "jacobian"
    x = torch.randn(4, 5)
    assert ntk(mlp3, x).shape == (4, 4)  # auto output = trace for 3 logits
    with pytest.raises(ValueError, match="output='trace'"):
        ntk(mlp3, x, output="scalar")
    with pytest.raises(ValueError, match="unknown method"):
        ntk(mlp3, x, method="fast")
    with pytest.raises(ValueError, match="chunk_size"):
        ntk(mlp3, x, chunk_size=0)
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
