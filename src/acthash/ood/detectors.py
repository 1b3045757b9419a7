"""Out-of-distribution detectors: ``fit(model, train_data)`` on in-distribution training data,
then ``score(x)`` gives one score per input, **higher = more out-of-distribution**.

Neural-code detectors (the code is which ReLU-like units fire, :func:`acthash.capture`):

- :class:`HammingKNN`: Hamming distance from the code to its k-th nearest training code
  (exact, :func:`acthash.ops.hamming.hamming_knn`); ``per_class=True``: to the training codes
  of the class the network predicts; ``aggregate="mean"``/``"max"``: one distance per layer,
  divided by the layer's bits, then averaged / maximised; ``aggregate="vote"``: the share
  of layers whose distance exceeds that layer's ``vote_quantile`` of the training codes'
  own k-th-neighbour distances (self excluded).
- :class:`Coverage`: neuron activation coverage in the spirit of NAC (Liu et al., 2023) on
  the binary unit states: each unit's state (on/off) is *covered* in proportion to how often
  the training set puts the unit in that state, κᵤ = min(1, freqᵤ(state) / r); the score is
  1 − (mean over layers of the mean κᵤ of the layer's units), r = 0.1 by default. With two
  states per unit most states are covered, so it is a weak detector (see docs/ood.md).

Baselines on the network's logits and penultimate features (the input of the last
``nn.Linear``, or of ``head=``):

- :class:`MSP`: −max softmax probability (Hendrycks & Gimpel, 2017);
- :class:`Energy`: the free energy −T·logsumexp(logits / T) (Liu et al., 2020), T = 1;
- :class:`FeatureKNN`: Euclidean distance to the k-th nearest training feature, features
  L2-normalised (Sun et al., 2022), exact (faiss ``IndexFlatL2``);
- :class:`Mahalanobis`: minimum Mahalanobis distance to the class means under one shared
  covariance (Lee et al., 2018; :func:`acthash.binary.fit_tied_gaussian`).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from acthash.binary.reliability import fit_tied_gaussian, min_mahalanobis
from acthash.core.capture import capture
from acthash.errors import ConfigError, InputError
from acthash.ood.features import as_inputs, logits_and_features
from acthash.ops.hamming import hamming_knn

__all__ = ["Detector", "HammingKNN", "Coverage", "MSP", "Energy", "FeatureKNN", "Mahalanobis",
           "DETECTORS", "make_detector"]

AGGREGATES = ("concat", "mean", "max", "vote")


class Detector:
    """Base class: ``fit(model, train_data, labels=None)`` returns the detector; ``score(x)``
    the (N,) float64 scores, higher = more OOD. ``train_data`` is an (N, ...) tensor/array
    or an ``(x, y)`` pair; detectors that need classes (``needs_labels``) raise without."""

    name = "detector"
    needs_labels = False

    def __init__(self, *, batch_size: int = 1024, head: str | None = None):
        self.batch_size = int(batch_size)
        self.head = head
        self.model: nn.Module | None = None

    def fit(self, model: nn.Module, train_data, labels=None) -> Detector:
        x, y = as_inputs(train_data, labels)
        if self.needs_labels and y is None:
            raise InputError(f"the {self.name} detector needs the training labels: pass "
                             "fit(model, (x, y)) or labels=y")
        self.model = model
        self._fit(x, y)
        return self

    def score(self, x) -> np.ndarray:
        if self.model is None:
            raise InputError(f"the {self.name} detector is not fitted; call fit(model, "
                             "train_data) first")
        xt, _ = as_inputs(x)
        return np.asarray(self._score(xt), dtype=np.float64)

    def _fit(self, x, y) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _score(self, x) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _forward(self, x):
        return logits_and_features(self.model, x, head=self.head, batch_size=self.batch_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


# ---------------------------------------------------------------------------- logits
class MSP(Detector):
    """−max softmax probability."""

    name = "msp"

    def _fit(self, x, y) -> None:
        pass

    def _score(self, x):
        logits, _ = self._forward(x)
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z)
        return -(p.max(1) / p.sum(1))


class Energy(Detector):
    """Free energy −T·logsumexp(logits / T)."""

    name = "energy"

    def __init__(self, *, temperature: float = 1.0, **kw):
        super().__init__(**kw)
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def _fit(self, x, y) -> None:
        pass

    def _score(self, x):
        logits, _ = self._forward(x)
        z = logits / self.temperature
        m = z.max(1)
        return -self.temperature * (m + np.log(np.exp(z - m[:, None]).sum(1)))


# ---------------------------------------------------------------------------- features
def _l2_normalise(f: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    return f / np.where(norm > 0, norm, 1.0)


class FeatureKNN(Detector):
    """Distance to the k-th nearest (L2-normalised) training feature."""

    name = "feature-knn"

    def __init__(self, *, k: int = 10, normalise: bool = True, **kw):
        super().__init__(**kw)
        self.k, self.normalise = int(k), bool(normalise)

    def _fit(self, x, y) -> None:
        import faiss

        _, f = self._forward(x)
        f = _l2_normalise(f) if self.normalise else f
        if not 1 <= self.k <= len(f):
            raise ConfigError(f"k={self.k} must lie in 1..{len(f)} (the training set size)")
        self.index = faiss.IndexFlatL2(f.shape[1])
        self.index.add(np.ascontiguousarray(f, dtype=np.float32))

    def _score(self, x):
        _, f = self._forward(x)
        f = _l2_normalise(f) if self.normalise else f
        d2, _ = self.index.search(np.ascontiguousarray(f, dtype=np.float32), self.k)
        return np.sqrt(np.maximum(d2[:, -1].astype(np.float64), 0.0))


class Mahalanobis(Detector):
    """Minimum Mahalanobis distance to the class means (one shared covariance)."""

    name = "mahalanobis"
    needs_labels = True

    def __init__(self, *, shrinkage: float = 1e-6, **kw):
        super().__init__(**kw)
        self.shrinkage = float(shrinkage)

    def _fit(self, x, y) -> None:
        _, f = self._forward(x)
        self.tied = fit_tied_gaussian(f, y, shrinkage=self.shrinkage)

    def _score(self, x):
        _, f = self._forward(x)
        return min_mahalanobis(self.tied, f)


# ---------------------------------------------------------------------------- neural codes
class _CodeDetector(Detector):
    def __init__(self, *, layers=None, **kw):
        super().__init__(**kw)
        self.layers = layers

    def _codes(self, x, outputs: bool = False):
        cap = capture(self.model, x, layers=self.layers, batch_size=self.batch_size,
                      keep_outputs=outputs)
        return cap if outputs else cap.codes


def _layer_packed(codes) -> list[tuple[str, int, np.ndarray]]:
    """``[(layer name, bits, packed rows)]`` of every layer of ``codes``."""
    bits = codes.unpack()
    return [(s.name, s.n_bits, np.packbits(bits[:, s.start : s.stop], axis=1))
            for s in codes.layers]


class HammingKNN(_CodeDetector):
    """Hamming distance to the k-th nearest training code (see the module docstring)."""

    name = "hamming-knn"

    def __init__(self, *, k: int = 10, per_class: bool = False, aggregate: str = "concat",
                 vote_quantile: float = 0.95, backend: str = "auto", **kw):
        super().__init__(**kw)
        if aggregate not in AGGREGATES:
            raise ConfigError(f"unknown aggregate {aggregate!r}; choose {', '.join(AGGREGATES)}")
        if not 0.0 < vote_quantile < 1.0:
            raise ConfigError(f"vote_quantile must be in (0, 1), got {vote_quantile}")
        if isinstance(k, bool) or int(k) < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        self.k, self.per_class, self.aggregate = int(k), bool(per_class), aggregate
        self.vote_quantile, self.backend = float(vote_quantile), backend
        self.needs_labels = self.per_class

    def _parts(self, codes):
        if self.aggregate == "concat":
            return [("all", codes.n_bits, np.ascontiguousarray(codes.packed))]
        return _layer_packed(codes)

    def _fit(self, x, y) -> None:
        codes = self._codes(x)
        if self.k > len(codes):
            raise ConfigError(f"k={self.k} exceeds the {len(codes)} training codes; choose a "
                              "smaller k")
        self.train_parts = self._parts(codes)
        self.train_labels = y
        if self.per_class:
            counts = np.bincount(y)
            small = np.flatnonzero((counts > 0) & (counts < self.k)).tolist()
            if small:
                raise ConfigError(f"classes {small} have fewer than k={self.k} training codes; "
                                  "choose a smaller k or per_class=False")
        if self.aggregate == "vote":
            # each layer's threshold: a quantile of the training codes' own k-th neighbour
            # distance, the code itself left out (k + 1 neighbours, the first dropped)
            kk = min(self.k + 1, len(codes))
            self.thresholds = []
            for _, n_bits, db in self.train_parts:
                d = self._kth(db, db, y, kk, y, n_bits)
                self.thresholds.append(float(np.quantile(d, self.vote_quantile)))

    def _kth(self, db, q, db_labels, k, q_classes, n_bits: int = 0) -> np.ndarray:
        """k-th nearest distance of each query row, within its class when per_class."""
        if not self.per_class:
            d, _ = hamming_knn(db, q, k, backend=self.backend)
            return d[:, -1].astype(np.float64)
        out = np.empty(len(q))
        for c in np.unique(q_classes):
            sel = q_classes == c
            mine = db[db_labels == c]
            if len(mine) == 0:  # a class without training codes: as far as can be
                out[sel] = n_bits
                continue
            d, _ = hamming_knn(mine, q[sel], min(k, len(mine)), backend=self.backend)
            out[sel] = d[:, -1]
        return out

    def _score(self, x):
        if self.per_class:
            cap = self._codes(x, outputs=True)
            codes, pred = cap.codes, cap.outputs.argmax(1).numpy()
        else:
            codes, pred = self._codes(x), None
        dists = []
        for (_, n_bits, db), (_, _, q) in zip(self.train_parts, self._parts(codes), strict=True):
            dists.append(self._kth(db, q, self.train_labels, self.k, pred, n_bits) / (
                1.0 if self.aggregate == "concat" else n_bits))
        d = np.stack(dists, axis=1)
        if self.aggregate == "concat":
            return d[:, 0]
        if self.aggregate == "mean":
            return d.mean(1)
        if self.aggregate == "max":
            return d.max(1)
        thr = np.asarray(self.thresholds) / np.asarray([p[1] for p in self.train_parts])
        return (d > thr[None, :]).mean(1)


class Coverage(_CodeDetector):
    """1 − neuron activation coverage of the binary unit states (see the module docstring)."""

    name = "coverage"

    def __init__(self, *, r: float = 0.1, chunk: int = 4096, **kw):
        super().__init__(**kw)
        if not 0.0 < r <= 1.0:
            raise ConfigError(f"the coverage threshold r must be in (0, 1], got {r}")
        self.r, self.chunk = float(r), int(chunk)

    def _fit(self, x, y) -> None:
        codes = self._codes(x)
        on = np.zeros(codes.n_bits)
        for lo in range(0, len(codes), self.chunk):
            on += codes.unpack(slice(lo, lo + self.chunk)).sum(0)
        self.p_on = on / len(codes)
        self.spans = [(s.start, s.stop) for s in codes.layers]

    def _score(self, x):
        codes = self._codes(x)
        k_on = np.minimum(1.0, self.p_on / self.r)
        k_off = np.minimum(1.0, (1.0 - self.p_on) / self.r)
        out = np.empty(len(codes))
        for lo in range(0, len(codes), self.chunk):
            b = codes.unpack(slice(lo, lo + self.chunk)).astype(bool)
            kappa = np.where(b, k_on, k_off)
            per_layer = np.stack([kappa[:, a:z].mean(1) for a, z in self.spans], axis=1)
            out[lo : lo + len(b)] = 1.0 - per_layer.mean(1)
        return out


#: detector name -> (class, default options); the study's ``detectors`` choose from these
DETECTORS = {
    "hamming-knn": (HammingKNN, {}),
    "hamming-knn-class": (HammingKNN, {"per_class": True}),
    "hamming-knn-layers": (HammingKNN, {"aggregate": "mean"}),
    "coverage": (Coverage, {}),
    "msp": (MSP, {}),
    "energy": (Energy, {}),
    "feature-knn": (FeatureKNN, {}),
    "mahalanobis": (Mahalanobis, {}),
}


def make_detector(name: str, **options) -> Detector:
    """A detector of :data:`DETECTORS` by name, its defaults updated with ``options``."""
    if name not in DETECTORS:
        raise ConfigError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    cls, defaults = DETECTORS[name]
    det = cls(**{**defaults, **options})
    det.name = name
    return det
