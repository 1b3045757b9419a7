"""The catalog of encoding properties: each one declared once, read by every consumer.

A :class:`Property` entry names a property's metric columns (``{key}_{split}``), its table
label, the function computing it and the record step :func:`acthash.properties.encoding_properties`
runs, its timing, the splits it is reported on, whether it is a mean over seeds with a
std row, and how figures, the report and the claims show it. :data:`PROPERTIES` is the
catalog in table order; :func:`property_rows` (``properties_table`` and ``acthash run``),
:func:`timing_rows`, :func:`quantities` (sweep figures), :func:`summary_columns` (the HTML
report) and :func:`claim_columns` / :func:`short_names` (the claims) read it.

A record step is ``compute(m, split, codes, labels) -> {column: value}`` (``per_split``,
called for train then test) or ``compute(m) -> {column: value}`` (called once, after the
per-split steps), where ``m`` holds the resolved options (``m.options``), the codes and
labels of both splits (``m.train``, ``m.y_train``, ``m.test``, ``m.y_test``; test may be
None), the network outputs, the fixed K-Means K (``m.n_classes``) and ``m.skip(name, why)``
for a split too small. docs/properties.md shows how to add a property.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from acthash.errors import InputError
from acthash.properties import aggregate as _aggregate
from acthash.properties import clustering, knn, linear, network, redundancy

__all__ = ["Property", "PROPERTIES", "STAGES", "SPLITS", "knn_label", "property_rows",
           "timing_rows", "timing_keys", "quantities", "summary_columns", "claim_columns",
           "short_names", "get_property"]

SPLITS = ("train", "test")

#: (timing key, label) of the run's stages before any property (``seconds_{key}`` columns)
STAGES = (("train", "training (cumulative)"), ("capture", "capture (train + test)"))

_KINDS = ("redundancy", "accuracy", "fraction", "loss")


def knn_label(k) -> str:
    """``"9-NN"`` for k = 9; ``"k-NN"`` when k is unknown (None, NaN or pandas' NA)."""
    try:
        known = k is not None and bool(k == k)
    except TypeError:  # pandas.NA
        known = False
    return f"{int(k)}-NN" if known else "k-NN"


@dataclass(frozen=True)
class Property:
    """One encoding property (see the module docstring for ``compute``).

    key : column prefix; the record's columns are ``{key}_{split}``.
    label : row label in tables, a string or a function of k (the k-NN's neighbours).
    function : the public function that computes it (for reference).
    compute : its record step in ``encoding_properties``; None when another entry's step
        (or another record: ``aggregate_properties``, the run) fills its columns.
    per_split : whether ``compute`` is called once per split.
    timing : key of the seconds its step takes (``timings[key]``, column ``seconds_{key}``);
        timing_label : the timing's row label, on the entry that owns the timing.
    splits : the splits it is reported on.
    std_label : the label of its std-over-seeds row (columns ``{key}_std_{split}``) when it
        is a mean over seeds; None otherwise.
    kind : "redundancy", "accuracy" (fractions of correct categorization), "fraction" or
        "loss".
    plot_label, panel : axis label and position of its panel in sweep figures (None: no
        panel). summary : splits shown in the report's summary table.
    short, claims : the short name in claim texts and the splits the claims read by default
        (the split is appended to ``short`` when there are several).
    """

    key: str
    label: str | Callable[[int | None], str]
    function: Callable | None = None
    compute: Callable | None = None
    per_split: bool = True
    timing: str | None = None
    timing_label: str | None = None
    splits: tuple[str, ...] = SPLITS
    std_label: str | None = None
    kind: str = "accuracy"
    plot_label: str | None = None
    panel: int | None = None
    summary: tuple[str, ...] = ()
    short: str | None = None
    claims: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key.isidentifier():
            raise InputError(f"property key must be an identifier, got {self.key!r}")
        for name in ("splits", "summary", "claims"):
            bad = set(getattr(self, name)) - set(SPLITS)
            if bad:
                raise InputError(f"property {self.key!r}: {name} holds unknown splits "
                                 f"{sorted(bad)}; use {SPLITS}")
        if self.kind not in _KINDS:
            raise InputError(f"property {self.key!r}: unknown kind {self.kind!r}; use "
                             f"{', '.join(_KINDS)}")
        if self.timing_label is not None and self.timing is None:
            raise InputError(f"property {self.key!r}: timing_label needs a timing key")
        if self.claims and not self.short:
            raise InputError(f"property {self.key!r}: claims need a short name")
        if (self.plot_label is None) != (self.panel is None):
            raise InputError(f"property {self.key!r}: give both plot_label and panel, or none")

    def title(self, k: int | None = 9) -> str:
        """The table label, with ``k`` for a label function."""
        return self.label if isinstance(self.label, str) else self.label(k)

    def columns(self, splits: Sequence[str] | None = None) -> list[str]:
        """Its metric columns on ``splits`` (default: the splits it is reported on)."""
        return [f"{self.key}_{s}" for s in (self.splits if splits is None else splits)]


PROPERTIES: tuple[Property, ...] = (
    Property("redundancy", "redundancy ratio", redundancy.redundancy_ratio,
             redundancy._measure, timing="redundancy", timing_label="redundancy",
             kind="redundancy", plot_label="redundancy ratio", panel=0,
             summary=("train", "test"), short="red", claims=("train", "test")),
    Property("kmeans", "K-Means acc. (Hungarian)", clustering.kmeans_scores, clustering._measure,
             timing="kmeans", timing_label="K-Means",
             std_label="K-Means (Hungarian): std over seeds",
             plot_label="K-Means accuracy (Hungarian)", panel=1, summary=("test",),
             short="K-Means", claims=("test",)),
    Property("kmeans_purity", "K-Means acc. (purity)", clustering.kmeans_scores,
             std_label="K-Means (purity): std over seeds"),
    Property("kmeans_original", "K-Means acc. (original mapping)", clustering.kmeans_scores),
    Property("knn", lambda k: f"{knn_label(k)} acc. (train: leave-one-out)",
             knn.knn_loo_accuracy, knn._measure, per_split=False, timing="knn",
             timing_label="k-NN", plot_label="k-NN accuracy (Hamming)", panel=2,
             summary=("test",), short="K-NN", claims=("test",)),
    Property("logreg", "logistic regression acc.", linear.logreg_accuracy, linear._measure,
             per_split=False, timing="logreg", timing_label="logistic regression",
             plot_label="logistic regression accuracy", panel=3, summary=("test",),
             short="LR", claims=("test",)),
    Property("agg_kmeans", "aggregate: K-Means (Hungarian)", _aggregate.aggregate_properties,
             std_label="aggregate K-Means: std over seeds"),
    Property("agg_knn", lambda k: f"aggregate: {knn_label(k)} (Euclidean)",
             _aggregate.aggregate_properties),
    Property("agg_logreg", "aggregate: logistic regression", _aggregate.aggregate_properties),
    Property("dead_units", "dead units (never active on train)", network.dead_unit_fractions,
             splits=("train",), kind="fraction", plot_label="dead units (never active, train)",
             panel=5, summary=("train",)),
    Property("net_acc", "network accuracy", network.network_scores, network._measure,
             per_split=False, plot_label="network accuracy", panel=4, summary=("train", "test")),
    Property("net_loss", "network loss (nats)", network.network_scores, kind="loss"),
)


def _catalog(catalog: Sequence[Property] | None) -> Sequence[Property]:
    """``catalog`` (default :data:`PROPERTIES`) checked: Property entries, unique keys."""
    if catalog is None:
        return PROPERTIES
    if isinstance(catalog, Property) or not all(isinstance(p, Property) for p in catalog):
        raise InputError("a property catalog is a sequence of Property entries")
    keys = [p.key for p in catalog]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise InputError(f"property keys must be unique in a catalog, repeated: {dup}")
    return catalog


def get_property(key: str, catalog: Sequence[Property] | None = None) -> Property:
    """The catalog entry of ``key``."""
    for p in _catalog(catalog):
        if p.key == key:
            return p
    raise InputError(f"no property {key!r} in the catalog; keys: "
                     f"{', '.join(p.key for p in _catalog(catalog))}")


def property_rows(k: int | None = 9,
                  catalog: Sequence[Property] | None = None) -> list[tuple[str, str]]:
    """(column prefix, label) of each table row in catalog order: every property, then its
    std-over-seeds row (prefix ``{key}_std``) when it has one; the k-NN labels name ``k``."""
    rows = []
    for p in _catalog(catalog):
        rows.append((p.key, p.title(k)))
        if p.std_label is not None:
            rows.append((f"{p.key}_std", p.std_label))
    return rows


def timing_rows(catalog: Sequence[Property] | None = None) -> list[tuple[str, str]]:
    """(timing key, label) of the run's timing table: the stages (:data:`STAGES`), then each
    property's timing in catalog order; the columns are ``seconds_{key}``."""
    return [*STAGES, *((p.timing, p.timing_label) for p in _catalog(catalog)
                       if p.timing_label is not None)]


def timing_keys(catalog: Sequence[Property] | None = None) -> list[str]:
    """The timing keys of the record steps, in catalog order, each once."""
    return list(dict.fromkeys(p.timing for p in _catalog(catalog)
                              if p.compute is not None and p.timing is not None))


def _by_panel(catalog) -> list[Property]:
    return sorted((p for p in _catalog(catalog) if p.panel is not None), key=lambda p: p.panel)


def quantities(catalog: Sequence[Property] | None = None) -> list[tuple[str, str]]:
    """(key, axis label) of the sweep figures' panels, in panel order."""
    return [(p.key, p.plot_label) for p in _by_panel(catalog)]


def summary_columns(catalog: Sequence[Property] | None = None) -> list[str]:
    """The report's summary-table columns: each property's ``summary`` splits, panel order."""
    ordered = _by_panel(catalog) + [p for p in _catalog(catalog) if p.panel is None]
    return [c for p in ordered for c in p.columns(p.summary)]


def claim_columns(kind: str, catalog: Sequence[Property] | None = None) -> tuple[str, ...]:
    """The columns the claims read by default for properties of ``kind``."""
    return tuple(c for p in _catalog(catalog) if p.kind == kind for c in p.columns(p.claims))


def short_names(catalog: Sequence[Property] | None = None) -> dict[str, str]:
    """{column: short name} of the columns the claims read by default."""
    out = {}
    for p in _catalog(catalog):
        for split in p.claims:
            out[f"{p.key}_{split}"] = p.short if len(p.claims) == 1 else f"{p.short}.{split}"
    return out
