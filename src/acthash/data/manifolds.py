"""Synthetic class manifolds ``x = G(gamma, theta)`` (the LSH paper's generative model).

Each class is a manifold with identifier ``gamma`` (a point in R^gamma_dim drawn from
N(0, gamma_scale^2 I)); an example is ``G(gamma, theta)`` with a transformation parameter
``theta`` drawn uniformly from ``[-theta_range, theta_range]^theta_dim`` that moves it along
the manifold. ``G`` is a fixed random network of ``[gamma; theta]``: ReLU layers (``kind=
"relu"``, piecewise linear) or tanh layers (``kind="smooth"``), He-scaled Gaussian weights,
a final linear map to ``input_dim``. Everything is seeded: the same options give the same
``G``, the same ``gamma``s and the same examples bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from acthash.data.registry import Dataset, as_tensors, register_dataset
from acthash.errors import InputError

__all__ = ["ManifoldGenerator", "load_manifolds"]


@dataclass
class ManifoldGenerator:
    """The fixed map ``G``: (N, gamma_dim) x (N, theta_dim) -> (N, input_dim) float32."""

    input_dim: int = 64
    gamma_dim: int = 8
    theta_dim: int = 2
    hidden: int = 128
    depth: int = 2
    kind: str = "relu"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("input_dim", "gamma_dim", "theta_dim", "hidden", "depth"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kind not in ("relu", "smooth"):
            raise InputError(f"unknown generator kind {self.kind!r}; use 'relu' or 'smooth'")
        rng = np.random.default_rng([self.seed, 7919])
        sizes = [self.gamma_dim + self.theta_dim] + [self.hidden] * self.depth + [self.input_dim]
        self.weights = [rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))
                        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
        self.biases = [rng.normal(0.0, 0.1, size=n_out) for n_out in sizes[1:]]

    def config(self) -> dict:
        return asdict(self)

    def __call__(self, gamma, theta) -> np.ndarray:
        gamma, theta = np.atleast_2d(gamma), np.atleast_2d(theta)
        if gamma.shape[1] != self.gamma_dim or theta.shape[1] != self.theta_dim:
            raise InputError(
                f"gamma must be (N, {self.gamma_dim}) and theta (N, {self.theta_dim}); got "
                f"{gamma.shape} and {theta.shape}"
            )
        if len(gamma) != len(theta):
            raise InputError(f"{len(gamma)} gammas but {len(theta)} thetas")
        h = np.concatenate([gamma, theta], axis=1).astype(np.float64)
        act = (lambda v: np.maximum(v, 0.0)) if self.kind == "relu" else np.tanh
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = act(h)
        return h.astype(np.float32)

    def sample_gammas(self, n: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        """(n, gamma_dim) manifold identifiers from N(0, scale^2 I)."""
        return rng.normal(0.0, scale, size=(n, self.gamma_dim))

    def sample_thetas(self, n: int, rng: np.random.Generator, theta_range: float) -> np.ndarray:
        """(n, theta_dim) transformation parameters, uniform on [-theta_range, theta_range]."""
        return rng.uniform(-theta_range, theta_range, size=(n, self.theta_dim))

    def sample(self, gammas: np.ndarray, per_class: int, rng: np.random.Generator,
               theta_range: float, noise: float = 0.0):
        """``per_class`` examples of each manifold: (x (N, input_dim), y (N,), theta (N, td)),
        class-major order."""
        gammas = np.atleast_2d(gammas)
        y = np.repeat(np.arange(len(gammas)), per_class)
        theta = self.sample_thetas(len(y), rng, theta_range)
        x = self(gammas[y], theta)
        if noise > 0:
            x = x + rng.normal(0.0, noise, size=x.shape).astype(np.float32)
        return x, y.astype(np.int64), theta


@register_dataset(
    "manifolds",
    "synthetic class manifolds x = G(gamma, theta), G a fixed random ReLU/tanh net (seeded)",
)
def load_manifolds(
    n_classes: int = 10,
    per_class: int = 200,
    test_per_class: int = 100,
    input_dim: int = 64,
    gamma_dim: int = 8,
    theta_dim: int = 2,
    theta_range: float = 1.0,
    gamma_scale: float = 1.0,
    hidden: int = 128,
    depth: int = 2,
    kind: str = "relu",
    noise: float = 0.0,
    seed: int = 0,
) -> Dataset:
    """``n_classes`` manifolds, ``per_class`` train and ``test_per_class`` test examples each
    (fresh thetas); inputs (input_dim,), not normalized (G keeps them at unit scale)."""
    if n_classes < 1 or per_class < 1 or test_per_class < 0:
        raise InputError("n_classes and per_class must be >= 1 and test_per_class >= 0")
    if theta_range < 0 or gamma_scale <= 0 or noise < 0:
        raise InputError("theta_range and noise must be >= 0 and gamma_scale > 0")
    gen = ManifoldGenerator(input_dim, gamma_dim, theta_dim, hidden, depth, kind, seed)
    rng = np.random.default_rng([seed, 1])
    gammas = gen.sample_gammas(n_classes, rng, gamma_scale)
    x_tr, y_tr, _ = gen.sample(gammas, per_class, rng, theta_range, noise)
    x_te, y_te, _ = gen.sample(gammas, test_per_class, rng, theta_range, noise)
    x_tr, y_tr = as_tensors(x_tr, y_tr)
    x_te, y_te = as_tensors(x_te, y_te)
    return Dataset(
        name="manifolds",
        x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        class_names=[f"gamma{i}" for i in range(n_classes)],
        input_shape=(input_dim,),
        normalization={"kind": "none"},
        info={"generator": gen.config(), "theta_range": theta_range,
              "gamma_scale": gamma_scale, "noise": noise, "per_class": per_class,
              "test_per_class": test_per_class, "gammas": gammas.tolist()},
    )
