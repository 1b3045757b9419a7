"""Hash encoders with a bit budget: ``fit(database)`` learns the encoder's state from the
database alone (no labels), ``encode(x)`` maps any inputs to packed codes
(:class:`~acthash.core.codes.NeuralCodes`), ``save(path)`` / :func:`load_encoder` keep the state, so
codes of new queries come from the fitted encoder.

=====================  ====================================================================
``NeuralCodeEncoder``  the neural code of a trained model: all units, the units of chosen
                       layers, or ``n_bits`` units picked by a label-free rule fitted on the
                       database (``select="entropy"``: highest bit entropy;
                       ``"decorrelated"``: greedy least-correlated; ``"first"``: forward order)
``SignRandomProjection``  LSH for angles (Charikar, 2002): sign of b Gaussian projections of
                       the centred input
``PCAHash``            sign of the top-b principal components (b ≤ input dimension)
``ITQ``                iterative quantization (Gong & Lazebnik, 2011): PCA to b dimensions,
                       then the rotation minimising the quantization error ‖B − VR‖²
``SpectralHash``       spectral hashing (Weiss, Torralba & Fergus, 2008): the b lowest
                       uniform-distribution eigenfunctions sin(π/2 + ω(y − min)) along the
                       principal directions, thresholded at 0
=====================  ====================================================================

The classical encoders take any (N, ...) array or tensor, flattened to (N, D) rows: raw
inputs, or the network's penultimate features from :func:`penultimate_features`. Every
encoder is deterministic given its seed (and, for the neural one, the model's weights).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from acthash._utils.io import atomic_path
from acthash.core.capture import neural_codes
from acthash.core.codes import NeuralCodes
from acthash.errors import CorruptFileError, InputError, MissingFileError
from acthash.lsh.features import penultimate_features
from acthash.lsh.srp import srp_matrix

__all__ = ["HashEncoder", "NeuralCodeEncoder", "SignRandomProjection", "PCAHash", "ITQ",
           "SpectralHash", "PCABasis", "ENCODERS", "make_encoder", "load_encoder",
           "penultimate_features", "model_fingerprint", "bit_entropy"]


def _as_matrix(x, what: str = "inputs") -> np.ndarray:
    """(N, ...) array/tensor -> (N, D) float64, finite."""
    if isinstance(x, NeuralCodes):
        raise InputError(f"{what} are codes; classical encoders take real-valued inputs or "
                         "features (see penultimate_features)")
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise InputError(f"{what} must be an (N, ...) array with one row per example, got shape "
                         f"{x.shape}")
    if x.shape[0] == 0:
        raise InputError(f"{what} are empty; pass at least one example")
    x = x.reshape(x.shape[0], -1)
    if not np.isfinite(x).all():
        rows = np.flatnonzero(~np.isfinite(x).all(axis=1))[:5].tolist()
        raise InputError(f"{what} contain NaN or inf (rows {rows} ...); clean or impute them")
    return x


def bit_entropy(bits: np.ndarray) -> np.ndarray:
    """(n_bits,) entropy in bits of each column of a (N, n_bits) 0/1 array (0 for constant)."""
    p = np.asarray(bits, dtype=np.float64).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.nan_to_num(h, nan=0.0)


class HashEncoder:
    """Base class: ``fit(database) -> self``, ``encode(x) -> NeuralCodes``, ``save(path)``.

    n_bits : the bit budget (codes have exactly this many bits)
    seed : seeds every random choice of the encoder
    """

    kind: ClassVar[str] = "base"

    def __init__(self, n_bits: int | None, seed: int = 0) -> None:
        if n_bits is not None and (not isinstance(n_bits, (int, np.integer)) or n_bits < 1):
            raise InputError(f"n_bits must be a positive integer, got {n_bits!r}")
        self.n_bits = None if n_bits is None else int(n_bits)
        self.seed = int(seed)
        self._fitted = False

    @property
    def fitted(self) -> bool:
        return self._fitted

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise InputError(f"this {type(self).__name__} is not fitted yet; call "
                             ".fit(database) first (or load a saved one with load_encoder)")

    def fit(self, database) -> HashEncoder:  # pragma: no cover - abstract
        raise NotImplementedError

    def _bits(self, x) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, x, labels=None) -> NeuralCodes:
        """Packed codes of ``x`` (N rows, ``n_bits`` bits each), with ``labels`` if given."""
        self._require_fitted()
        return NeuralCodes.from_bits(self._bits(x), labels=labels)

    def fit_encode(self, database, labels=None) -> NeuralCodes:
        return self.fit(database).encode(database, labels)

    def __repr__(self) -> str:
        state = "fitted" if self._fitted else "not fitted"
        return f"{type(self).__name__}(n_bits={self.n_bits}, seed={self.seed}, {state})"

    # ---------------------------------------------------------------- persistence
    def _meta(self) -> dict:
        return {"kind": self.kind, "n_bits": self.n_bits, "seed": self.seed}

    def _arrays(self) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted state to one ``.npz`` file, atomically."""
        self._require_fitted()
        path = Path(path)
        blob = {"__meta__": np.frombuffer(json.dumps(self._meta()).encode(), dtype=np.uint8)}
        blob.update(self._arrays())
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **blob)
        return path


def _read_state(path: Path) -> tuple[dict, dict]:
    if not path.exists():
        raise MissingFileError(f"no encoder file at {path}; write one with encoder.save(path)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    except Exception as e:  # zipfile, json and numpy raise many kinds for a damaged file
        raise CorruptFileError(f"{path} is not a readable encoder file ({type(e).__name__}: "
                               f"{e}); fit the encoder again and save it") from e
    return meta, arrays


# ------------------------------------------------------------------ classical encoders
class PCABasis:
    """Mean and principal directions of a (N, D) matrix, variance descending.

    components : (D, m) orthonormal columns; each column's entry of largest magnitude is
        positive (a fixed sign, so codes do not depend on the eigensolver's sign choice).
    variances : (m,) eigenvalues of the covariance, descending.
    """

    def __init__(self, mean: np.ndarray, components: np.ndarray, variances: np.ndarray):
        self.mean, self.components, self.variances = mean, components, variances

    @property
    def dim(self) -> int:
        return self.components.shape[0]

    @classmethod
    def fit(cls, x) -> PCABasis:
        x = _as_matrix(x, "database")
        mean = x.mean(axis=0)
        xc = x - mean
        cov = (xc.T @ xc) / max(len(x) - 1, 1)
        var, vec = np.linalg.eigh(cov)
        order = np.argsort(-var, kind="stable")
        var, vec = var[order], vec[:, order]
        flip = vec[np.argmax(np.abs(vec), axis=0), np.arange(vec.shape[1])] < 0
        vec[:, flip] *= -1
        return cls(mean, vec, np.clip(var, 0, None))

    def project(self, x, m: int) -> np.ndarray:
        return (x - self.mean) @ self.components[:, :m]


class _LinearSign(HashEncoder):
    """Codes = [(x − mean) W > 0] for a fitted (D, n_bits) matrix W."""

    def _check_dim(self, x: np.ndarray) -> None:
        if x.shape[1] != self.mean_.shape[0]:
            raise InputError(f"inputs have {x.shape[1]} features, the encoder was fitted on "
                             f"{self.mean_.shape[0]}; encode inputs of the same kind as the "
                             "database")

    def _bits(self, x) -> np.ndarray:
        x = _as_matrix(x)
        self._check_dim(x)
        return (x - self.mean_) @ self.projection_ > 0

    def _arrays(self) -> dict:
        return {"mean": self.mean_, "projection": self.projection_}

    def _restore(self, meta, arrays) -> None:
        self.mean_, self.projection_ = arrays["mean"], arrays["projection"]
        self._fitted = True


class SignRandomProjection(_LinearSign):
    """LSH by signs of random hyperplanes through the database mean: W is
    :func:`acthash.lsh.srp.srp_matrix` (i.i.d. N(0, 1) from ``default_rng(seed)``), the
    hyperplanes of :func:`acthash.lsh.srp_hash`; any bit budget."""

    kind = "lsh"

    def __init__(self, n_bits: int, seed: int = 0, center: bool = True) -> None:
        super().__init__(n_bits, seed)
        self.center = bool(center)

    def fit(self, database) -> SignRandomProjection:
        x = _as_matrix(database, "database")
        self.mean_ = x.mean(axis=0) if self.center else np.zeros(x.shape[1])
        self.projection_ = srp_matrix(x.shape[1], self.n_bits, self.seed)
        self._fitted = True
        return self

    def _meta(self) -> dict:
        return {**super()._meta(), "center": self.center}


def _check_pca_budget(n_bits: int, dim: int, name: str) -> None:
    if n_bits > dim:
        raise InputError(f"{name} gives at most one bit per input dimension: a budget of "
                         f"{n_bits} bits exceeds the {dim} dimensions; choose n_bits <= {dim} "
                         "(or use SignRandomProjection / SpectralHash, which have no such limit)")


class PCAHash(_LinearSign):
    """Sign of the top ``n_bits`` principal components (n_bits ≤ D). ``basis`` reuses a
    :class:`PCABasis` fitted on the same database (saves refitting for every budget)."""

    kind = "pca"

    def __init__(self, n_bits: int, seed: int = 0, basis: PCABasis | None = None) -> None:
        super().__init__(n_bits, seed)
        self.basis = basis

    def fit(self, database) -> PCAHash:
        basis = self.basis if self.basis is not None else PCABasis.fit(database)
        _check_pca_budget(self.n_bits, basis.dim, "PCA hashing")
        self.mean_, self.projection_ = basis.mean, basis.components[:, : self.n_bits].copy()
        self._fitted = True
        return self


class ITQ(_LinearSign):
    """Iterative quantization: V = PCA_b(x − mean); starting from a random orthogonal R
    (QR of a Gaussian matrix, ``seed``), alternate B = sign(VR) and R = Ŝ Sᵀ from the SVD
    BᵀV = S Ω Ŝᵀ, ``n_iter`` times (50 in the paper). ``fit_size`` fits the rotation on a
    seeded random subset of that many database rows (all rows when None)."""

    kind = "itq"

    def __init__(self, n_bits: int, seed: int = 0, n_iter: int = 50, fit_size: int | None = None,
                 basis: PCABasis | None = None) -> None:
        super().__init__(n_bits, seed)
        if n_iter < 0:
            raise InputError(f"n_iter must be >= 0, got {n_iter}")
        self.n_iter, self.fit_size, self.basis = int(n_iter), fit_size, basis

    def fit(self, database) -> ITQ:
        x = _as_matrix(database, "database")
        basis = self.basis if self.basis is not None else PCABasis.fit(x)
        _check_pca_budget(self.n_bits, basis.dim, "ITQ")
        rng = np.random.default_rng(self.seed)
        if self.fit_size is not None and self.fit_size < len(x):
            x = x[np.sort(rng.choice(len(x), self.fit_size, replace=False))]
        # the iterations run in float32 (the products dominate the cost); the SVD in float64
        v = basis.project(x, self.n_bits).astype(np.float32)
        q, r = np.linalg.qr(rng.standard_normal((self.n_bits, self.n_bits)))
        rot = q * np.sign(np.diag(r))
        for _ in range(self.n_iter):
            b = np.where(v @ rot.astype(np.float32) >= 0, np.float32(1), np.float32(-1))
            s, _, s_hat_t = np.linalg.svd((b.T @ v).astype(np.float64))
            rot = s_hat_t.T @ s.T
        self.rotation_ = rot
        vr = v.astype(np.float64) @ rot
        self.quantization_error_ = float(np.mean((np.where(vr >= 0, 1.0, -1.0) - vr) ** 2))
        self.mean_ = basis.mean
        self.projection_ = basis.components[:, : self.n_bits] @ rot
        self._fitted = True
        return self

    def _meta(self) -> dict:
        return {**super()._meta(), "n_iter": self.n_iter, "fit_size": self.fit_size}


class SpectralHash(HashEncoder):
    """Spectral hashing from the paper's definition (no maintained Python package exists).

    PCA to m = min(n_bits, D) dimensions; along direction j the data are taken as uniform on
    [min_j, max_j] (the database's range), whose Laplacian eigenfunctions are
    sin(π/2 + ω (y − min_j)) with ω = kπ/(max_j − min_j), k = 1, 2, ...; eigenvalues grow
    with ω, so the n_bits modes of smallest ω over all (j, k) are kept (ties: lower j, then
    lower k); each bit is its eigenfunction > 0. Any bit budget (several modes per direction).
    """

    kind = "sh"

    def __init__(self, n_bits: int, seed: int = 0, basis: PCABasis | None = None) -> None:
        super().__init__(n_bits, seed)
        self.basis = basis

    def fit(self, database) -> SpectralHash:
        x = _as_matrix(database, "database")
        basis = self.basis if self.basis is not None else PCABasis.fit(x)
        m = min(self.n_bits, basis.dim)
        y = basis.project(x, m)
        lo, hi = y.min(axis=0), y.max(axis=0)
        width = hi - lo
        ok = width > 1e-12 * max(float(width.max()), 1e-300)
        if not ok.any():
            raise InputError("the database is constant along every principal direction; "
                             "spectral hashing needs varied inputs")
        dims, modes, omegas = [], [], []
        max_mode = np.ceil((self.n_bits + 1) * width / width.max()).astype(int)
        for j in np.flatnonzero(ok):
            for k in range(1, max_mode[j] + 1):
                dims.append(j)
                modes.append(k)
                omegas.append(k * np.pi / width[j])
        order = np.lexsort((modes, dims, omegas))[: self.n_bits]
        self.mean_ = basis.mean
        self.projection_ = basis.components[:, :m].copy()
        self.low_ = lo
        self.dims_ = np.asarray(dims, np.int64)[order]
        self.omegas_ = np.asarray(omegas)[order]
        self._fitted = True
        return self

    def _bits(self, x) -> np.ndarray:
        x = _as_matrix(x)
        if x.shape[1] != self.mean_.shape[0]:
            raise InputError(f"inputs have {x.shape[1]} features, the encoder was fitted on "
                             f"{self.mean_.shape[0]}")
        y = (x - self.mean_) @ self.projection_
        return np.sin(np.pi / 2 + self.omegas_ * (y[:, self.dims_] - self.low_[self.dims_])) > 0

    def _arrays(self) -> dict:
        return {"mean": self.mean_, "projection": self.projection_, "low": self.low_,
                "dims": self.dims_, "omegas": self.omegas_}

    def _restore(self, meta, arrays) -> None:
        for k in ("mean", "projection", "low", "dims", "omegas"):
            setattr(self, k + "_", arrays[k])
        self._fitted = True


# ------------------------------------------------------------------ neural codes
def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (names, shapes, values)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        arr = t.detach().cpu().contiguous().numpy()
        h.update(name.encode())
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


_SELECT = ("entropy", "decorrelated", "first")


def _select_units(bits: np.ndarray, n: int, rule: str) -> np.ndarray:
    """Indices of ``n`` columns of (N, D) 0/1 ``bits`` by ``rule`` (label-free)."""
    ent = bit_entropy(bits)
    idx = np.arange(bits.shape[1])
    if rule == "first":
        return idx[:n]
    by_entropy = np.lexsort((idx, -ent))
    if rule == "entropy":
        return by_entropy[:n]
    # greedy: start from the most informative unit, then add the unit whose largest absolute
    # correlation with the chosen ones is smallest (ties: higher entropy, lower index);
    # constant units have no correlation and come last, by index
    x = bits.astype(np.float32)
    x -= x.mean(axis=0)
    sd = np.sqrt((x * x).mean(axis=0))
    live = sd > 0
    x[:, live] /= sd[live]
    corr = np.abs(x.T @ x) / len(x)
    corr[:, ~live] = np.inf
    chosen = [int(by_entropy[0])]
    worst = corr[chosen[0]].astype(np.float64)
    worst[~live] = np.inf
    taken = np.zeros(bits.shape[1], dtype=bool)
    taken[chosen[0]] = True
    while len(chosen) < n:
        score = np.where(taken, np.inf, worst)
        best = np.flatnonzero(score == score.min())
        if not np.isfinite(score.min()):  # only constant units are left
            best = np.flatnonzero(~taken)
        pick = int(best[np.lexsort((best, -ent[best]))[0]])
        chosen.append(pick)
        taken[pick] = True
        worst = np.maximum(worst, corr[pick])
    return np.asarray(chosen, dtype=np.int64)


class NeuralCodeEncoder(HashEncoder):
    """The neural code of a trained model as a hash, with a bit budget.

    model : any nn.Module with ReLU-like units (its weights are fixed by ``fit``: the
        encoder records their fingerprint and refuses a changed model)
    n_bits : None for every captured unit, else the number of units kept
    layers : None (all layers) or a layer selection of :func:`acthash.core.capture` (regex or list)
    select : how ``n_bits`` units are chosen from the database's codes, without labels:
        "entropy" (highest bit entropy −p log p − (1−p) log(1−p), p = share of database rows
        where the unit fires; ties to the earlier unit), "decorrelated" (greedy: the most
        entropic unit, then repeatedly the unit least correlated with those chosen) or
        "first" (forward order)
    """

    kind = "neural"

    def __init__(self, model: nn.Module, n_bits: int | None = None, *, layers=None,
                 select: str = "entropy", device: str | None = None, batch_size: int = 1024,
                 seed: int = 0) -> None:
        super().__init__(n_bits, seed)
        if select not in _SELECT:
            raise InputError(f"unknown unit selection {select!r}; choose one of {', '.join(_SELECT)}")
        if not isinstance(model, nn.Module):
            raise InputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model, self.layers, self.select = model, layers, select
        self.device, self.batch_size = device, int(batch_size)

    def _codes(self, x) -> NeuralCodes:
        return neural_codes(self.model, x, layers=self.layers, device=self.device,
                            batch_size=self.batch_size)

    def fit(self, database, *, codes: NeuralCodes | None = None) -> NeuralCodeEncoder:
        """Fit on ``database`` inputs; ``codes`` passes their neural codes (this encoder's
        layers, all units) when already computed, to skip the forward pass."""
        if codes is None:
            codes = self._codes(database)
        elif len(codes) != len(database):
            raise InputError(f"codes has {len(codes)} rows for {len(database)} database inputs")
        n_avail = codes.n_bits
        n = n_avail if self.n_bits is None else self.n_bits
        if n > n_avail:
            which = "all layers" if self.layers is None else f"layers {self.layers!r}"
            raise InputError(
                f"a budget of {n} bits exceeds the {n_avail} units of {which}; choose "
                f"n_bits <= {n_avail}, n_bits=None for every unit, or a wider/deeper model")
        # the whole code keeps forward order; a smaller budget picks units by the rule
        self.units_ = (np.arange(n_avail) if n == n_avail
                       else _select_units(codes.unpack(), n, self.select))
        self.n_units_ = n_avail
        self.layer_names_ = codes.layer_names()
        self.fingerprint_ = model_fingerprint(self.model)
        self.n_bits = n
        self._fitted = True
        return self

    def encode(self, x, labels=None) -> NeuralCodes:
        self._require_fitted()
        if model_fingerprint(self.model) != self.fingerprint_:
            raise InputError("the model's weights changed since this encoder was fitted; "
                             "fit the encoder again on the database")
        return self.select_from(self._codes(x), labels)

    def select_from(self, codes: NeuralCodes, labels=None) -> NeuralCodes:
        """This encoder's units of already computed codes (all units of its layers)."""
        self._require_fitted()
        if codes.n_bits != self.n_units_:
            raise InputError(f"the codes have {codes.n_bits} units, the encoder was fitted on "
                             f"{self.n_units_} (all units of its layers); pass full codes of "
                             "the same layers, or fit the encoder again")
        if len(self.units_) == codes.n_bits and np.array_equal(self.units_, np.arange(codes.n_bits)):
            return codes.with_labels(labels) if labels is not None else codes
        return NeuralCodes.from_bits(codes.unpack()[:, self.units_], labels=labels)

    def _meta(self) -> dict:
        return {**super()._meta(), "layers": self.layers, "select": self.select,
                "n_units": self.n_units_, "layer_names": self.layer_names_,
                "fingerprint": self.fingerprint_}

    def _arrays(self) -> dict:
        return {"units": self.units_}

    def _restore(self, meta, arrays) -> None:
        self.units_ = arrays["units"].astype(np.int64)
        self.n_units_ = int(meta["n_units"])
        self.layer_names_ = meta["layer_names"]
        self.fingerprint_ = meta["fingerprint"]
        if model_fingerprint(self.model) != self.fingerprint_:
            raise InputError("the model passed to load_encoder is not the one the encoder was "
                             "fitted with (weights differ); load the run's model.pt")
        self._fitted = True


ENCODERS: dict[str, type[HashEncoder]] = {
    "neural": NeuralCodeEncoder, "lsh": SignRandomProjection, "pca": PCAHash, "itq": ITQ,
    "sh": SpectralHash,
}


def make_encoder(kind: str, n_bits: int | None, seed: int = 0, **options) -> HashEncoder:
    """An unfitted encoder by name: "neural" (needs ``model=``), "lsh", "pca", "itq", "sh"."""
    if kind not in ENCODERS:
        raise InputError(f"unknown encoder {kind!r}; choose one of {', '.join(ENCODERS)}")
    if kind == "neural":
        if "model" not in options:
            raise InputError("the neural encoder needs the trained model: make_encoder('neural', "
                             "n_bits, model=model)")
        model = options.pop("model")
        return NeuralCodeEncoder(model, n_bits, seed=seed, **options)
    return ENCODERS[kind](n_bits, seed=seed, **options)


def load_encoder(path: str | os.PathLike, model: nn.Module | None = None) -> HashEncoder:
    """Read an encoder written by ``save``; a neural encoder needs the same ``model``."""
    path = Path(path)
    meta, arrays = _read_state(path)
    kind = meta.get("kind")
    if kind not in ENCODERS:
        raise CorruptFileError(f"{path} holds an unknown encoder kind {kind!r}")
    if kind == "neural":
        if model is None:
            raise InputError(f"{path} is a neural-code encoder: pass the trained model, "
                             "load_encoder(path, model=model)")
        enc = NeuralCodeEncoder(model, meta["n_bits"], layers=meta["layers"],
                                select=meta["select"], seed=meta["seed"])
    elif kind == "lsh":
        enc = SignRandomProjection(meta["n_bits"], meta["seed"], center=meta["center"])
    elif kind == "itq":
        enc = ITQ(meta["n_bits"], meta["seed"], n_iter=meta["n_iter"], fit_size=meta["fit_size"])
    else:
        enc = ENCODERS[kind](meta["n_bits"], meta["seed"])
    enc._restore(meta, arrays)
    return enc
