"""The paper's findings as checkable claims, evaluated on sweep results.

He et al. (2021) state their findings as shapes of curves (science.md §1). Each
:data:`CLAIMS` entry turns one into an explicit criterion on the mean over seeds of a
sweep's results, with thresholds in :class:`ClaimCriteria` (configurable, printed with the
table). :func:`evaluate_claims` reads any number of sweep directories, files each under the
factor it varies (model size, training time, sample size, weight decay, label noise,
random inputs) and its data set, and returns one row per data set and claim: the measured
numbers, a verdict — ``holds``, ``does not hold`` or ``not measured here`` — and a
one-line reason. A claim whose factor is missing names the preset that provides it; a
sweep with a single seed is evaluated with a warning that no spread is available.

Series: a factor swept at several widths (training time, sample size, weight decay, label
noise) gives one curve per width; a claim about that factor holds when it holds on every
curve it applies to, and the reason names the widths where it fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from acthash.errors import InputError, MissingFileError
from acthash.properties.catalog import claim_columns, short_names
from acthash.properties.clustering import matched_chance
from acthash.runs.results import FACTOR_OF_ROLE as _FACTOR_OF_ROLE
from acthash.runs.results import ROLES as _ROLES
from acthash.runs.results import (
    checkpoint_note,
    final_checkpoints,
    is_random,
    sweep_roles,
    varies,
)

__all__ = ["ClaimCriteria", "CLAIMS", "VERDICTS", "checkpoint_note", "evaluate_claims",
           "matched_chance", "sweep_roles"]

VERDICTS = ("holds", "does not hold", "not measured here")
HOLDS, FAILS, UNMEASURED = VERDICTS

_MAIN_ROLES = _ROLES[:3]  # the factors the minor ones are compared with
_SHORT = short_names()  # column -> short name in the measured texts (property catalog)
_RERUN = "rerun the sweep (it computes only the missing cells)"


@dataclass
class ClaimCriteria:
    """Thresholds of the claims (fractions; redundancy and accuracies are in [0, 1]).

    zero: redundancy "≈ 0" means at most this, on train and test (default 0.01).
    one: redundancy "≈ 1" at the smallest width means at least this (0.9); a width whose
        redundancy at initialization is already ≥ ``one`` is saturated and left out of the
        rise-then-decay check (its redundancy cannot rise).
    rise: the epoch-1 redundancy exceeds the epoch-0 one by at least this (0.01). A width
        whose redundancy stays ≤ ``zero`` at every checkpoint is at the floor and, like a
        saturated one, left out (it can neither rise nor decay measurably).
    decay: the final redundancy is at most this fraction of its peak after epoch 0 (0.5).
    gain: an accuracy "rises" when its value at the high end of the factor exceeds the one
        at the low end by at least this (0.02 = 2 points, about the seed-to-seed spread).
    minor: weight decay / label noise "move the properties less" when the range (max − min
        of the means) of each ``minor_properties`` column over their grid is at most this
        times its smallest range over width, training time and sample size (0.5).
    chance_margin: random inputs categorize "at chance" when every accuracy is at most
        its chance level + this (0.05). Chance is 1 / classes, and for K-Means (scored after
        the best cluster-to-class matching) the matched accuracy of uniformly random
        clusters on the same number of test examples (:func:`matched_chance`).
    redundancy / accuracies / minor_properties: the result columns read (the first two by
        default the catalog's redundancy and accuracy columns the claims read,
        :func:`acthash.properties.catalog.claim_columns`).
    """

    zero: float = 0.01
    one: float = 0.9
    rise: float = 0.01
    decay: float = 0.5
    gain: float = 0.02
    minor: float = 0.5
    chance_margin: float = 0.05
    redundancy: tuple[str, ...] = claim_columns("redundancy")
    accuracies: tuple[str, ...] = claim_columns("accuracy")
    minor_properties: tuple[str, ...] = ("redundancy_train", "redundancy_test", "knn_test")

    def __post_init__(self) -> None:
        for name in ("zero", "one", "rise", "decay", "gain", "chance_margin"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise InputError(f"claim criterion {name} must be a fraction in [0, 1], got {v}")
        if self.zero >= self.one:
            raise InputError(f"need zero ({self.zero}) < one ({self.one})")
        if self.minor <= 0:
            raise InputError(f"claim criterion minor must be > 0, got {self.minor}")
        for name in ("redundancy", "accuracies", "minor_properties"):
            v = getattr(self, name)
            if isinstance(v, str):
                v = tuple(c.strip() for c in v.split(",") if c.strip())
            if not v:
                raise InputError(f"claim criterion {name} needs at least one column")
            setattr(self, name, tuple(v))

    @classmethod
    def from_dict(cls, d: dict) -> ClaimCriteria:
        names = {f.name for f in fields(cls)}
        bad = sorted(set(d) - names)
        if bad:
            raise InputError(f"unknown claim criteria {bad}; valid: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        red = " and ".join(self.redundancy)
        acc = ", ".join(self.accuracies)
        return "\n".join([
            f"redundancy-width: {red} ≥ {self.one:g} at the smallest width and ≤ {self.zero:g} "
            "at the largest (final epoch)",
            f"redundancy-epoch: {self.redundancy[0]} at epoch 1 ≥ epoch 0 + {self.rise:g}, and "
            f"final ≤ {self.decay:g} × its peak after epoch 0, for every width neither saturated "
            f"at epoch 0 (≥ {self.one:g}) nor at the floor (≤ {self.zero:g} throughout)",
            f"redundancy-sample: {self.redundancy[0]} at the smallest sample ≤ {self.zero:g} "
            "and ≤ its value at the largest sample, for every width",
            f"accuracy-width/-time/-sample: {acc} at the high end of the factor ≥ low end + "
            f"{self.gain:g}, for every width",
            f"weight-decay-minor / label-noise-minor: range of {', '.join(self.minor_properties)}"
            f" over the factor's grid ≤ {self.minor:g} × its smallest range over width, "
            "training time and sample size",
            f"random-inputs: at the largest width {red} ≤ {self.zero:g} and {acc} ≤ "
            f"chance + {self.chance_margin:g} (chance: 1/classes; K-Means: Hungarian-matched "
            "random clusters)",
        ])


@dataclass(frozen=True)
class Claim:
    """One finding: ``check(part, main, criteria) -> (measured, verdict, reason)`` on the
    sweep part of its first role (``main``: the model-size, training-time and sample-size
    parts of the data set); ``criterion(criteria)``: the criterion in one line."""

    id: str
    finding: str
    needs: tuple[str, ...]  # roles (= preset names) the claim reads
    check: Callable = field(repr=False, compare=False)
    criterion: Callable = field(repr=False, compare=False)


# ---------------------------------------------------------------------------- loading


@dataclass
class _Part:
    """The rows of one sweep that serve one role on one data set."""

    role: str
    dataset: str
    sweep: str
    table: pd.DataFrame
    wall_s: float | None = None
    n_seeds: int = 1


@dataclass
class _Book:
    parts: dict = field(default_factory=dict)  # (dataset, role) -> _Part

    def add(self, part: _Part) -> None:
        """File a part; a second sweep of the same factor and data set (another recipe,
        say) is evaluated on its own, under ``"<dataset> (<sweep>)"``, never pooled."""
        if (part.dataset, part.role) in self.parts:
            part.dataset = f"{part.dataset} ({part.sweep})"
        self.parts[(part.dataset, part.role)] = part

    def get(self, dataset: str, role: str) -> _Part | None:
        return self.parts.get((dataset, role))

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(d for d, _ in self.parts))  # in the order given


def _base(name: str) -> str:
    return name.split(":", 1)[1] if str(name).startswith("random:") else str(name)


def _sweep_wall_time(sweep_dir: Path) -> float | None:
    """Sum of the cells' training+scoring times recorded in the model cache (seconds)."""
    total, found = 0.0, False
    for p in (sweep_dir / "cache").glob("*/*/cell.json"):
        try:
            total += float(json.loads(p.read_text()).get("elapsed_s", 0.0))
            found = True
        except (OSError, ValueError):
            continue
    return total if found else None


def _load(paths) -> _Book:
    from acthash.runs.results import load_results, load_sweep_meta

    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise InputError("give at least one sweep directory (acthash sweep --preset NAME)")
    book = _Book()
    for path in paths:
        if not path.exists():
            raise MissingFileError(f"no sweep at {path}; run `acthash sweep --preset NAME "
                                   f"--out {path}` first")
        df = load_results(path)
        if df.empty:
            raise InputError(f"{path} holds no finished cells yet; rerun its sweep")
        meta = load_sweep_meta(path)
        roles = sweep_roles(df, meta)
        if not roles:
            raise InputError(f"{path}: no factor varies in its results (width, epoch, sample "
                             "size, weight decay, label noise or random inputs); a claim "
                             "needs one of the presets " + ", ".join(_ROLES))
        wall = _sweep_wall_time(path) if path.is_dir() else None
        bases = (df["dataset"].map(_base) if "dataset" in df.columns
                 else pd.Series("?", index=df.index))
        label = meta.get("name") or path.name
        if label in _ROLES:  # a preset: name it by its folder, which tells sweeps apart
            label = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
        for ds in sorted(bases.unique()):
            sub = df[bases == ds]
            n_seeds = int(sub["seed"].nunique()) if "seed" in sub.columns else 1
            for role in roles:
                book.add(_Part(role, ds, label, sub, wall, n_seeds))
    return book


# ---------------------------------------------------------------------------- helpers


def _means(df: pd.DataFrame, by: list[str], cols) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and std over seeds of ``cols`` per ``by`` value, sorted by it."""
    cols = [c for c in cols if c in df.columns]
    g = df.groupby(by, dropna=False)[cols]
    return g.mean().sort_index(), g.std(ddof=1).fillna(0.0).sort_index()


def _listed(values, fmt: str = ".3f") -> str:
    """"K-NN 0.912, LR 0.873": each column's short name and value (a dict or Series)."""
    return ", ".join(f"{_SHORT.get(col, col)} {v:{fmt}}" for col, v in values.items())


def _pm(mean: float, std: float | None, n_seeds: int) -> str:
    return f"{mean:.3f}" if n_seeds < 2 or std is None else f"{mean:.3f}±{std:.3f}"


def _need(cols, df: pd.DataFrame, role: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"the {role} results lack columns {missing}; rerun the sweep with "
                         "this version of acthash or choose other criteria columns")


def _fmt_w(v) -> str:
    return f"w{int(v)}" if isinstance(v, (int, np.integer, float)) and float(v).is_integer() else str(v)


def _series_col(df: pd.DataFrame, factor: str) -> str | None:
    """The column that splits a factor's curves (width), when it varies."""
    for c in ("width", "depth"):
        if c != factor and varies(df, c):
            return c
    return None


def _curves(df: pd.DataFrame, factor: str, cols) -> list[tuple[object, pd.DataFrame, pd.DataFrame]]:
    """[(series value, mean table indexed by factor, std table)] per width."""
    s = _series_col(df, factor)
    groups = [(None, df)] if s is None else list(df.groupby(s, sort=True))
    return [(key, *_means(sub, [factor], cols)) for key, sub in groups]


def _ranges(df: pd.DataFrame, factor: str, cols) -> dict[str, float]:
    """Largest range (max − min of the seed means) over the factor, over all curves."""
    out: dict[str, float] = {c: 0.0 for c in cols if c in df.columns}
    for _, m, _ in _curves(df, factor, cols):
        for c in out:
            out[c] = max(out[c], float(m[c].max() - m[c].min()))
    return out


def _factor_frame(part: _Part) -> tuple[pd.DataFrame, str]:
    """The rows and the column of the part's factor (training time keeps every epoch)."""
    if part.role == "training-time":
        return part.table, "epoch"
    df = final_checkpoints(part.table)
    factor = _FACTOR_OF_ROLE[part.role]
    if factor == "n_train" and not varies(df, "n_train") and varies(df, "sample_size"):
        factor = "sample_size"
    return df, factor


def _too_few(part: _Part) -> str:
    """Why a (partial) sweep cannot testify yet: its factor has fewer than two values."""
    if part.role == "random-data":
        if not is_random(part.table).any():
            return f"no random:NAME cell has finished in {part.sweep}; {_RERUN}"
        return ""
    df, factor = _factor_frame(part)
    n = df[factor].nunique() if factor in df.columns else 0
    if n < 2:
        return f"only {n} value of {factor} has finished in {part.sweep}; {_RERUN}"
    return ""


def _row(claim: Claim, dataset: str, criterion: str, measured: str, verdict: str, reason: str,
         parts: list[_Part]) -> dict:
    seeds = min((p.n_seeds for p in parts), default=0)
    warning = ("one seed: no spread available; the verdict rests on a single run"
               if parts and seeds < 2 else "")
    walls = [p.wall_s for p in parts if p.wall_s is not None]
    return {"dataset": dataset, "claim": claim.id, "finding": claim.finding,
            "criterion": criterion, "measured": measured, "verdict": verdict,
            "reason": reason, "sweeps": ", ".join(p.sweep for p in parts),
            "n_seeds": seeds if parts else 0,
            "cell_time_s": round(sum(walls), 1) if walls else None, "warning": warning}


def _unmeasured(claim: Claim, dataset: str, criterion: str, missing: list[str]) -> dict:
    base = dataset.split(" (", 1)[0]  # "fashion-mnist (other/sweep)" -> fashion-mnist
    how = " or ".join(f"`acthash sweep --preset {m} --dataset {base}`" for m in missing)
    return _row(claim, dataset, criterion, "-", UNMEASURED,
                f"needs the {' or '.join(missing)} preset: {how}", [])


# ---------------------------------------------------------------------------- claims


def _redundancy_width(part: _Part, main: list[_Part], c: ClaimCriteria):
    df = final_checkpoints(part.table)
    cols = [*c.redundancy, "dead_units_train"]
    _need(c.redundancy, df, part.role)
    m, sd = _means(df, ["width"], cols)
    lo, hi = m.index[0], m.index[-1]
    meas = "; ".join(f"width {w}: " + _listed({r: _pm(m.loc[w, r], sd.loc[w, r], part.n_seeds)
                                              for r in c.redundancy}, "s") for w in (lo, hi))
    dead_hi = float(m.loc[hi, "dead_units_train"]) if "dead_units_train" in m.columns else None
    if dead_hi is not None:
        meas += f"; dead units at width {hi}: {dead_hi:.2f}"
    high_ok = all(m.loc[lo, r] >= c.one for r in c.redundancy)
    low_ok = all(m.loc[hi, r] <= c.zero for r in c.redundancy)
    if high_ok and low_ok:
        return meas, HOLDS, f"falls from ≥ {c.one:g} at width {lo} to ≤ {c.zero:g} at width {hi}"
    reasons = []
    if not low_ok:
        worst = max(c.redundancy, key=lambda r: m.loc[hi, r])
        why = f"plateaus at {m.loc[hi, worst]:.3f} ({worst}) at width {hi}"
        if dead_hi is not None and dead_hi > 0.1:
            why += (f" with {dead_hi:.0%} of its units dead on the training set: a training "
                    "failure (use the BatchNorm recipe), not the encoding")
        reasons.append(why)
    if not high_ok:
        worst = min(c.redundancy, key=lambda r: m.loc[lo, r])
        reasons.append(f"only {m.loc[lo, worst]:.3f} ({worst}) at the smallest width {lo}: "
                       "the grid does not reach the under-expressive end")
    return meas, FAILS, "; ".join(reasons)


def _redundancy_epoch(part: _Part, main: list[_Part], c: ClaimCriteria):
    df = part.table
    r = c.redundancy[0]
    _need([r], df, part.role)
    epochs = sorted(df["epoch"].unique())
    if 0 not in epochs or 1 not in epochs:
        return ("checkpoints " + ",".join(map(str, epochs)), UNMEASURED,
                "needs checkpoints at epochs 0 and 1 (the training-time preset has them)")
    bits, fails, used = [], [], 0
    for key, m, _ in _curves(df, "epoch", [r]):
        s = m[r]
        r0, r1, end = float(s.loc[0]), float(s.loc[1]), float(s.iloc[-1])
        peak = float(s[s.index >= 1].max())
        name = _fmt_w(key) if key is not None else "all"
        bits.append(f"{name}: {r0:.3f}→{r1:.3f}→{end:.3f} (peak {peak:.3f})")
        if r0 >= c.one:
            bits[-1] += " saturated"
            continue
        if float(s.max()) <= c.zero:
            bits[-1] += " at the floor"
            continue
        used += 1
        if r1 - r0 < c.rise:
            fails.append(f"{name} does not rise at epoch 1 ({r0:.3f}→{r1:.3f})")
        elif end > c.decay * peak:
            fails.append(f"{name} does not decay ({end:.3f} > {c.decay:g} × peak {peak:.3f})")
    meas = f"{r} epoch 0→1→{epochs[-1]}: " + "; ".join(bits)
    if used == 0:
        return meas, UNMEASURED, (f"every width is saturated at epoch 0 (≥ {c.one:g}) or "
                                  f"at the floor (≤ {c.zero:g} throughout); add widths between")
    if fails:
        return meas, FAILS, "; ".join(fails)
    return meas, HOLDS, (f"rises at epoch 1 and decays after, on all {used} widths where "
                         "redundancy moves")


def _redundancy_sample(part: _Part, main: list[_Part], c: ClaimCriteria):
    df, factor = _factor_frame(part)
    r = c.redundancy[0]
    _need([r], df, part.role)
    bits, fails = [], []
    for key, m, _ in _curves(df, factor, [r]):
        s = m[r]
        lo_n, hi_n = s.index[0], s.index[-1]
        name = _fmt_w(key) if key is not None else "all"
        bits.append(f"{name}: N={lo_n} {s.iloc[0]:.3f}, N={hi_n} {s.iloc[-1]:.3f}")
        if s.iloc[0] > c.zero:
            fails.append(f"{name} keeps {s.iloc[0]:.3f} at N={lo_n}")
        elif s.iloc[0] > s.iloc[-1] + 1e-12:
            fails.append(f"{name} is higher at N={lo_n} than at N={hi_n}")
    meas = f"{r}: " + "; ".join(bits)
    if fails:
        return meas, FAILS, "; ".join(fails)
    return meas, HOLDS, f"≤ {c.zero:g} at the smallest sample and no higher than at the largest"


def _accuracy_rises(part: _Part, main: list[_Part], c: ClaimCriteria):
    df, factor = _factor_frame(part)
    _need(c.accuracies, df, part.role)
    bits, fails, min_gain = [], [], np.inf
    for key, m, _ in _curves(df, factor, c.accuracies):
        lo, hi = m.index[0], m.index[-1]
        gains = {a: float(m.loc[hi, a] - m.loc[lo, a]) for a in c.accuracies}
        min_gain = min(min_gain, *gains.values())
        name = _fmt_w(key) if key is not None else f"{factor} {lo}→{hi}"
        text = _listed(gains, "+.3f")
        bits.append(text if key is None else f"{name}: {text}")
        bad = [f"{_SHORT.get(a, a)} {g:+.3f}" for a, g in gains.items() if g < c.gain]
        if bad:
            fails.append(f"{name}: {', '.join(bad)}")
    meas = f"gain over {factor} {m.index[0]}→{m.index[-1]}: " + "; ".join(bits)
    if fails:
        return meas, FAILS, "gain below +" + f"{c.gain:g} for " + "; ".join(fails)
    return meas, HOLDS, (f"every accuracy gains ≥ +{c.gain:g} on every curve (smallest "
                         f"{min_gain:+.3f})")


def _minor(part: _Part, main: list[_Part], c: ClaimCriteria):
    df, factor = _factor_frame(part)
    _need(c.minor_properties, df, part.role)
    mine = _ranges(df, factor, c.minor_properties)
    main_r: dict[str, tuple[float, str]] = {}
    for mp in main:
        mdf, mfac = _factor_frame(mp)
        for p, v in _ranges(mdf, mfac, c.minor_properties).items():
            if p not in main_r or v < main_r[p][0]:
                main_r[p] = (v, mp.role)
    meas = (f"range over {factor}: {_listed(mine)}; smallest main-factor range: "
            + ", ".join(f"{_SHORT.get(p, p)} {v:.3f} ({role})" for p, (v, role) in main_r.items()))
    fails = [f"{_SHORT.get(p, p)} moves {v:.3f} > {c.minor:g} × {main_r[p][0]:.3f} "
             f"({main_r[p][1]})" for p, v in mine.items()
             if p in main_r and v > c.minor * main_r[p][0] + 1e-12]
    if fails:
        return meas, FAILS, "; ".join(fails)
    worst = max(mine[p] / main_r[p][0] if main_r[p][0] > 0 else 0.0 for p in mine if p in main_r)
    return meas, HOLDS, (f"every property moves ≤ {c.minor:g} × its smallest main-factor "
                         f"range (largest ratio {worst:.2f})")


def _random_inputs(part: _Part, main: list[_Part], c: ClaimCriteria):
    df = final_checkpoints(part.table)
    _need([*c.redundancy, *c.accuracies], df, part.role)
    rnd, real = df[is_random(df)], df[~is_random(df)]
    if rnd.empty:
        return "-", UNMEASURED, "no random:NAME rows (the random-data preset has them)"
    w = rnd["width"].max() if "width" in rnd.columns else None
    at = rnd[rnd["width"] == w] if w is not None else rnd
    n_cls = int(at["n_classes"].iloc[0]) if "n_classes" in at.columns else None
    if n_cls is None:
        return "-", UNMEASURED, "the results lack n_classes; rerun the sweep"
    chance = 1.0 / n_cls
    n_test = int(at["n_test"].iloc[0]) if "n_test" in at.columns else 0
    # K-Means is scored after the best matching of clusters to classes: its chance is higher
    chances = {a: (matched_chance(n_test, n_cls) if a.startswith("kmeans") and n_test
                   else chance) for a in c.accuracies}
    m = at[[*c.redundancy, *c.accuracies]].mean()
    meas = (f"random inputs, width {w}: {_listed(m[list(c.redundancy)])}; "
            + ", ".join(f"{_SHORT.get(a, a)} {m[a]:.3f} (chance {chances[a]:.3f})"
                        for a in c.accuracies))
    if not real.empty and w is not None and (real["width"] == w).any():
        meas += f"; real inputs: {_listed(real[real['width'] == w][list(c.accuracies)].mean())}"
    fails = [f"{r} {m[r]:.3f} > {c.zero:g}" for r in c.redundancy if m[r] > c.zero]
    fails += [f"{a} {m[a]:.3f} > chance {chances[a]:.3f} + {c.chance_margin:g}"
              for a in c.accuracies if m[a] > chances[a] + c.chance_margin]
    if fails:
        return meas, FAILS, "; ".join(fails)
    top = max(c.accuracies, key=lambda a: m[a] - chances[a])
    return meas, HOLDS, (f"codes distinct (redundancy ≤ {max(m[r] for r in c.redundancy):.3f}) "
                         f"and categorization at chance (at most {m[top] - chances[top]:+.3f} "
                         f"above it, {_SHORT.get(top, top)})")


def _gain_text(c: ClaimCriteria) -> str:
    return f"high − low end ≥ +{c.gain:g} (each accuracy, each curve)"


def _minor_text(c: ClaimCriteria) -> str:
    return f"range ≤ {c.minor:g} × smallest main-factor range"


CLAIMS: tuple[Claim, ...] = (
    Claim("redundancy-width", "redundancy falls from ≈ 1 at the smallest widths to ≈ 0 "
          "(train and test) as width grows", ("model-size",), _redundancy_width,
          lambda c: f"{' & '.join(c.redundancy)} ≥ {c.one:g} at min width, ≤ {c.zero:g} at "
          "max width"),
    Claim("redundancy-epoch", "redundancy rises after the first epoch, then decays with "
          "training", ("training-time",), _redundancy_epoch,
          lambda c: f"{c.redundancy[0]}: epoch 1 ≥ epoch 0 + {c.rise:g}; final ≤ "
          f"{c.decay:g} × peak"),
    Claim("redundancy-sample", "redundancy falls towards 0 as the training sample shrinks",
          ("sample-size",), _redundancy_sample,
          lambda c: f"{c.redundancy[0]} ≤ {c.zero:g} at min N and ≤ value at max N"),
    Claim("accuracy-width", "K-Means, K-NN and logistic-regression accuracy rise with width",
          ("model-size",), _accuracy_rises, _gain_text),
    Claim("accuracy-time", "K-Means, K-NN and logistic-regression accuracy rise with "
          "training time", ("training-time",), _accuracy_rises, _gain_text),
    Claim("accuracy-sample", "K-Means, K-NN and logistic-regression accuracy rise with "
          "sample size", ("sample-size",), _accuracy_rises, _gain_text),
    Claim("weight-decay-minor", "weight decay moves the properties less than width, "
          "training time and sample size", ("regularization",), _minor, _minor_text),
    Claim("label-noise-minor", "label noise moves the properties less than width, training "
          "time and sample size", ("label-noise",), _minor, _minor_text),
    Claim("random-inputs", "random inputs: determinism holds (redundancy ≈ 0) while "
          "categorization falls to chance", ("random-data",), _random_inputs,
          lambda c: f"redundancy ≤ {c.zero:g}; accuracy ≤ chance + {c.chance_margin:g}"),
)


def evaluate_claims(sweeps, criteria: ClaimCriteria | dict | None = None) -> pd.DataFrame:
    """Evaluate every claim of :data:`CLAIMS` on the given sweep directories.

    sweeps: sweep directories (or results files), any mix of presets and data sets.
    criteria: :class:`ClaimCriteria` (or a dict of its fields); default thresholds if None.
    Returns one row per data set and claim with columns ``dataset, claim, finding,
    criterion, measured, verdict`` (one of :data:`VERDICTS`), ``reason, sweeps, n_seeds,
    cell_time_s`` (summed training+scoring seconds of the cells read from the model cache)
    and ``warning`` (non-empty for single-seed evidence).
    """
    c = (criteria if isinstance(criteria, ClaimCriteria)
         else ClaimCriteria.from_dict(criteria or {}))
    book = _load(sweeps)
    rows = []
    for ds in book.datasets():
        main = [p for p in (book.get(ds, r) for r in _MAIN_ROLES) if p is not None]
        for claim in CLAIMS:
            crit = claim.criterion(c)
            part = book.get(ds, claim.needs[0])
            if part is None:
                rows.append(_unmeasured(claim, ds, crit, list(claim.needs)))
                continue
            few = _too_few(part)
            if few:
                rows.append(_row(claim, ds, crit, "-", UNMEASURED, few, [part]))
                continue
            compares = claim.check is _minor  # against the main factors
            if compares and not main:
                rows.append(_row(claim, ds, crit, "-", UNMEASURED, "needs a main factor to "
                                 "compare with: the model-size, training-time or sample-size "
                                 "preset (`acthash sweep --preset model-size --dataset "
                                 f"{ds.split(' (', 1)[0]}`)", [part]))
                continue
            meas, verdict, reason = claim.check(part, main, c)
            note = checkpoint_note(part.table) if part.role != "training-time" else ""
            if note:
                meas += f" (at {note})"
            rows.append(_row(claim, ds, crit, meas, verdict, reason,
                             [part, *main] if compares else [part]))
    return pd.DataFrame(rows)
