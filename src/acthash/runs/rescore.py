"""Re-scoring saved codes with other property options (``acthash properties``).

``rescore(RUN_DIR)`` measures every pair ``codes/<prefix>train.ahc`` / ``<prefix>test.ahc``
of a run directory (a run's ``epoch_XXXX_`` pairs, one row per epoch; a measured model's
``train.ahc``/``test.ahc``); ``rescore(TRAIN.ahc, TEST.ahc)`` one pair of files. Labels come
from the codes files. The options are those of a run (:class:`PropertiesConfig`: ``k``,
``convention``, ``ties``, ``kmeans_n_seeds``, ``logreg_solver``, ...); an option not given
takes its default (not the run's), except ``seed`` and ``dataset``, which default to the run
directory's ``config.json``.

The table is written into the run directory (for two files: the run directory holding
their ``codes/`` folder, else the train file's folder; or ``out_dir``), never over an
existing one: ``properties-<key>.parquet`` and ``.csv`` with ``properties-<key>.json`` (the
options, resolved, and the codes scored), ``<key>`` a short SHA-256 of the options and the
codes files. Options already scored (the same key) are *reused*: the stored table is read back
and nothing is recomputed (``PropertiesResult.reused``); delete the three files to recompute.
The network's own loss and accuracy need the model, so they are not part of a re-score.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

import pandas as pd

from acthash._utils.budget import resolve_device
from acthash._utils.io import write_json, write_table
from acthash._utils.run import check_complete
from acthash.core.codes import NeuralCodes
from acthash.errors import CorruptFileError, InputError, MissingFileError
from acthash.properties import dead_unit_fractions, encoding_properties
from acthash.runs.config import PropertiesConfig
from acthash.runs.experiment import property_options

__all__ = ["PropertiesConfig", "PropertiesResult", "rescore", "code_pairs", "options_key"]

_PAIR = re.compile(r"^(?P<prefix>.*?)train\.ahc$")
_EPOCH = re.compile(r"^epoch_(\d+)_$")
_NOT_IN_KEY = ("device",)  # changes where the properties run, not what they are


@dataclass
class PropertiesResult:
    metrics: pd.DataFrame  # one row per pair of codes files
    path: Path | None  # the properties-<key>.parquet written or reused (None: not written)
    key: str
    options: dict  # the PropertiesConfig fields used (seed and dataset resolved)
    reused: bool


def code_pairs(run_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """``(prefix, train.ahc, test.ahc)`` of every pair in ``run_dir/codes``, sorted."""
    codes = Path(run_dir) / "codes"
    pairs = []
    for train in sorted(codes.glob("*train.ahc")):
        m = _PAIR.match(train.name)
        test = codes / f"{m['prefix']}test.ahc"
        if test.is_file():
            pairs.append((m["prefix"], train, test))
    if not pairs:
        raise MissingFileError(f"no saved codes in {codes} (pairs <prefix>train.ahc / "
                               "<prefix>test.ahc); run with --save-codes, or pass the two "
                               ".ahc files")
    return pairs


def options_key(options: dict, sources: list) -> str:
    """12 hex digits of the SHA-256 of the options (without ``device``) and the codes files."""
    d = {k: v for k, v in options.items() if k not in _NOT_IN_KEY}
    text = json.dumps({"options": d, "codes": sources}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _run_config(run_dir: Path | None) -> dict:
    path = None if run_dir is None else run_dir / "config.json"
    if path is None or not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CorruptFileError(f"{path} is not valid JSON ({e}); restore the file") from e


def _labelled(path: Path) -> NeuralCodes:
    codes = NeuralCodes.load(path, mmap=True)
    if codes.labels is None:
        raise InputError(f"{path} stores no labels; re-scoring needs labelled codes (capture "
                         "with labels=...)")
    return codes


def _score(train: NeuralCodes, test: NeuralCodes, options) -> dict:
    rec = encoding_properties(train, None, test, None, options=options)
    rec.update(dead_unit_fractions(train, "dead_units_train"))
    return rec


def rescore(source, test=None, *, config: PropertiesConfig | None = None,
            out_dir: str | Path | None = None, write: bool = True,
            **options) -> PropertiesResult:
    """The encoding properties of saved codes under other options (module docstring).

    source : a run directory, or the training codes (a ``.ahc`` path or
        :class:`~acthash.core.codes.NeuralCodes`) with ``test`` the test codes.
    options : :class:`PropertiesConfig` fields (``k=5``, ``convention="original"``,
        ``ties="sklearn"``, ``kmeans_n_seeds=1``, ``logreg_solver="liblinear"``, ``seed``,
        ``dataset``, ``device``, ...), or a whole ``config``.
    out_dir : where the table goes (default: the run directory, or the train file's
        folder); codes given as NeuralCodes are written only with an ``out_dir``.
    """
    if config is not None and options:
        raise InputError("pass either config or its fields as keywords, not both")
    cfg = config if config is not None else PropertiesConfig(**options)
    run_dir = None
    if test is None:
        if not isinstance(source, (str, Path)) or not Path(source).is_dir():
            raise InputError(f"{source} is not a run directory; pass a run directory, or the "
                             "train and test .ahc files")
        run_dir = Path(source)
        check_complete(run_dir)
        pairs = [(prefix, tr, te) for prefix, tr, te in code_pairs(run_dir)]
        sources = [[tr.name, te.name] for _, tr, te in pairs]
    else:
        pairs, sources = [], []
        for codes in (source, test):
            if isinstance(codes, NeuralCodes):
                sources.append(None)
            elif isinstance(codes, (str, Path)):
                if not Path(codes).is_file():
                    raise MissingFileError(f"no codes file at {codes}")
                sources.append(str(Path(codes).resolve()))
            else:
                raise InputError(f"codes must be a .ahc path or NeuralCodes, got "
                                 f"{type(codes).__name__}")
        pairs = [("", source, test)]
        if isinstance(source, (str, Path)):
            parent = Path(source).resolve().parent
            if parent.name == "codes" and (parent.parent / "config.json").is_file():
                run_dir = parent.parent  # files of a run directory: the table goes there
        write = write and (out_dir is not None or sources[0] is not None)
    recorded = _run_config(run_dir)
    cfg = replace(cfg, seed=cfg.seed if cfg.seed is not None else int(recorded.get("seed", 0)),
                  dataset=cfg.dataset if cfg.dataset is not None else recorded.get("dataset"))
    used = cfg.to_dict()
    key = options_key(used, sources)
    folder = Path(out_dir) if out_dir is not None else (
        run_dir if run_dir is not None else Path(pairs[0][1]).resolve().parent)
    table = folder / f"properties-{key}.parquet"
    meta = folder / f"properties-{key}.json"
    if write and table.is_file() and meta.is_file():
        stored = json.loads(meta.read_text())
        same = ({k: v for k, v in stored.get("options", {}).items() if k not in _NOT_IN_KEY}
                == {k: v for k, v in used.items() if k not in _NOT_IN_KEY})
        if not same:
            raise CorruptFileError(f"{meta} records other options than its key {key}; remove "
                                   f"properties-{key}.* and rescore")
        return PropertiesResult(pd.read_parquet(table), table, key, used, True)

    device = resolve_device(cfg.device)
    popts = property_options(cfg, device if device.type != "cpu" else None)
    old = pd.read_parquet(run_dir / "metrics.parquet") if (
        run_dir is not None and (run_dir / "metrics.parquet").is_file()) else None
    rows = []
    for prefix, tr, te in pairs:
        row: dict = {}
        epoch = _EPOCH.match(prefix)
        if epoch:
            row["epoch"] = int(epoch[1])
        elif old is not None and len(old) == 1 and "checkpoint" in old.columns:
            row.update({c: old[c].iloc[0] for c in ("checkpoint", "checkpoint_epoch")
                        if c in old.columns})
        if test is not None:
            row["train_codes"] = Path(tr).name if not isinstance(tr, NeuralCodes) else None
            row["test_codes"] = Path(te).name if not isinstance(te, NeuralCodes) else None
        train_codes = tr if isinstance(tr, NeuralCodes) else _labelled(Path(tr))
        test_codes = te if isinstance(te, NeuralCodes) else _labelled(Path(te))
        row.update(_score(train_codes, test_codes, popts))
        rows.append(row)
    metrics = pd.DataFrame(rows)
    for name in ("dataset", "seed"):
        metrics[name] = used[name]
    if not write:
        return PropertiesResult(metrics, None, key, used, False)
    resolved = {f.name: getattr(popts, f.name) for f in fields(popts) if f.init}
    write_table(table, metrics)
    write_table(table.with_suffix(".csv"), metrics)
    write_json(meta, {"options": used, "resolved": resolved, "codes": sources,
                      "table": table.name})
    return PropertiesResult(metrics, table, key, used, False)
