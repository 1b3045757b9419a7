"""The package face and the seams between modules: one API surface, one error hierarchy and
CLI boundary, one CLI convention, shared scaffolding, presentation independent of the
training stack, a locked sweep directory, and fast bit validation."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import acthash
from acthash import errors
from acthash.cli import CLI_ONLY, app
from acthash.cli._options import _defaults

SRC = str(Path(__file__).resolve().parents[1] / "src")
runner = CliRunner()


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
                          timeout=300)


# ---------------------------------------------------------------------------- package face


def test_import_acthash_gives_the_documented_api():
    for name in acthash.__all__:
        assert hasattr(acthash, name), name
    for sub in ("data", "models", "train", "errors", "binary", "spectrum", "geometry", "retrieval",
                "lsh", "ops", "core", "properties", "runs", "presentation", "studies"):
        assert sub in acthash.__all__
    assert callable(acthash.data.load) and callable(acthash.train.train)
    assert acthash.models.MLP is not None
    assert acthash.__version__ == importlib.metadata.version("acthash")


def test_every_user_error_derives_from_the_base_and_a_builtin():
    classes = [getattr(errors, n) for n in errors.__all__
               if not n.startswith("EXIT_") and not n.endswith("Warning")]
    for cls in classes:
        assert issubclass(cls, errors.ActhashError), cls
    assert issubclass(errors.InputError, ValueError)
    assert issubclass(errors.MissingFileError, FileNotFoundError)
    assert issubclass(errors.DivergenceError, FloatingPointError)
    assert errors.EXIT_USER_ERROR not in (0, 1, 2)
    assert errors.EXIT_INTERRUPTED == 128 + 2  # as a shell reports SIGINT


def test_library_raises_no_bare_builtin_errors():
    """Every raise in the library uses an ActhashError subclass (so the CLI boundary sees it)."""
    import re

    bare = re.compile(r"raise (ValueError|TypeError|FileNotFoundError|RuntimeError|"
                      r"ImportError|FloatingPointError)\(")
    hits = []
    for path in Path(SRC, "acthash").rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if bare.search(line):
                hits.append(f"{path.name}:{i}: {line.strip()}")
    assert not hits, hits


def test_plotting_never_switches_the_backend_and_skips_the_training_stack():
    res = _fresh_python("""
        import sys
        import matplotlib
        matplotlib.use("pdf")
        import acthash.presentation.plots, acthash.presentation.phase, acthash.presentation.report, acthash.runs.results
        import acthash.studies.lsh_plots, acthash.studies.spectrum_plots
        assert matplotlib.get_backend() == "pdf", matplotlib.get_backend()
        heavy = [m for m in ("acthash.runs.sweep", "acthash.runs.experiment") if m in sys.modules]
        assert not heavy, heavy
        print("ok")
    """)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_figure_functions_draw_into_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from acthash.presentation.plots import QUANTITIES, plot_factor

    df = pd.DataFrame({"width": [4, 8, 4, 8], "seed": [0, 0, 1, 1], "k": 5,
                       **{f"{q}_{s}": [0.1, 0.2, 0.3, 0.4] for q, _ in QUANTITIES
                          for s in ("train", "test")}})
    fig, axes = plt.subplots(1, len(QUANTITIES))
    assert plot_factor(df, "width", axes=axes) is fig
    assert any("5-NN" in ax.get_title() for ax in axes)
    assert all(len(ax.lines) == 2 for ax in axes)  # train and test series
    plt.close(fig)


# ---------------------------------------------------------------------------- scaffolding


def test_run_directory_names_are_one_sanitised_component(tmp_path):
    from acthash._utils.run import new_run_dir, safe_name

    assert safe_name("csv:/data/my table.csv") == "csv_data_my_table.csv"
    a = new_run_dir(tmp_path, "regions", "csv:/x/y.csv", "s0")
    assert a.parent == tmp_path and "/" not in a.name and ":" not in a.name
    a.mkdir()
    b = new_run_dir(tmp_path, "regions", "csv:/x/y.csv", "s0")
    assert b != a and b.parent == tmp_path  # same second: a suffix, never a clash


def test_save_figure_writes_png_and_svg_atomically(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from acthash._utils.run import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    paths = save_figure(fig, tmp_path / "f" / "curve.png")
    assert [p.name for p in paths] == ["curve.png", "curve.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:500]
    assert not list((tmp_path / "f").glob(".*tmp"))


# ---------------------------------------------------------------------------- config contract


def test_configs_reject_unknown_keys_and_bad_values():
    from acthash.runs.experiment import RunConfig
    from acthash.studies.lsh import LSHConfig
    from acthash.studies.regions import RegionsConfig
    from acthash.studies.spectrum import SpectrumConfig
    from acthash.train import TrainConfig

    for cls in (RunConfig, TrainConfig, RegionsConfig, LSHConfig, SpectrumConfig):
        with pytest.raises(errors.ConfigError, match="unknown .*keys"):
            cls.from_dict({"no_such_field": 1})
        d = cls().to_dict()
        assert cls.from_dict(json.loads(json.dumps(d))).to_dict() == d  # JSON round trip
    with pytest.raises(errors.ConfigError, match="optimizer"):
        RunConfig(optimizer="rmsprop")
    with pytest.raises(errors.ConfigError, match="lr"):
        dataclasses.replace(RegionsConfig(), lr=0.0)  # validated on replace too
    # the training block is declared once: the run and the regions study share its fields
    from acthash._utils.config import TrainFields

    shared = {f.name for f in dataclasses.fields(TrainFields)}
    assert shared <= RunConfig.field_names() and shared <= RegionsConfig.field_names()


def test_unknown_model_options_are_rejected():
    from acthash.models import build_model
    from acthash.runs.experiment import RunConfig

    with pytest.raises(errors.ConfigError, match="resnet20.*width"):
        RunConfig(model="resnet20", width=50).model_kwargs()
    assert "width" not in RunConfig(model="resnet20").model_kwargs()  # not set: left out
    with pytest.raises(errors.ConfigError, match="resnet20.*width"):  # set, at the default
        RunConfig(model="resnet20", width=100).model_kwargs()
    with pytest.raises(errors.ConfigError, match="resnet20.*depth"):
        RunConfig.from_dict({"model": "resnet20", "depth": 1}).model_kwargs()
    # a saved config (every field) reads back: there a field is set when not at its default
    saved = RunConfig.from_dict(RunConfig(model="resnet20").to_dict())
    assert "width" not in saved.model_kwargs()
    assert "width" not in dataclasses.replace(RunConfig(model="resnet20"), seed=3).model_kwargs()
    with pytest.raises(errors.InputError, match="no option"):
        build_model("vgg11", (3, 32, 32), 10, batchnorm=False)


def test_spectrum_loader_rejects_unknown_config_keys(tmp_path):
    from acthash.studies.spectrum import SpectrumConfig, load_spectrum_study

    (tmp_path / "records.parquet").write_bytes(b"")
    conf = {**SpectrumConfig().to_dict(), "study": "spectrum", "variants": [],
            "not_a_field": 3}
    (tmp_path / "config.json").write_text(json.dumps(conf))
    with pytest.raises(errors.ConfigError, match="not_a_field"):
        load_spectrum_study(tmp_path)


# ---------------------------------------------------------------------------- CLI


def _command(path: list[str]):
    import typer.main

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


@pytest.mark.parametrize("path, cls, composite", [
    (["run"], "acthash.runs.experiment:RunConfig", set()),
    (["layers"], "acthash.runs.experiment:RunConfig", set()),
    (["measure"], "acthash.runs.config:MeasureConfig", set()),
    (["properties"], "acthash.runs.config:PropertiesConfig", {"sources"}),
    (["study", "regions"], "acthash.studies.regions:RegionsConfig", set()),
    (["study", "lsh"], "acthash.studies.lsh:LSHConfig", set()),
    (["study", "spectrum"], "acthash.studies.spectrum:SpectrumConfig", set()),
    (["study", "binary"], "acthash.studies.binary:BinaryStudyConfig", {"width", "depth"}),
    (["study", "retrieval"], "acthash.studies.retrieval:RetrievalStudyConfig", set()),
    (["study", "planes"], "acthash.studies.configs:PlanesConfig", set()),
    (["study", "local-complexity"], "acthash.studies.configs:LocalComplexityConfig", set()),
    (["study", "ood"], "acthash.studies.configs:OODStudyConfig", set()),
])
def test_cli_options_are_config_fields(path, cls, composite):
    """Every option sets the config field of its name (``composite``: documented parts of a
    dict field, e.g. the binary study's --width/--depth of model_options); hidden options
    are only the former spellings, kept one release."""
    import importlib

    mod, _, name = cls.partition(":")
    config = getattr(importlib.import_module(mod), name)
    fields = config.field_names()
    cmd = _command(path)
    params = {p.name for p in cmd.params if not getattr(p, "hidden", False)}
    assert params - fields - CLI_ONLY - composite == set(), path
    if path == ["properties"]:  # reads saved codes only: no data directory, no model
        assert {"dataset", "seed", "device"} <= params, path
    else:
        # a dataset and a model are used: --dataset, --data-dir, -O, --device, --seed
        assert {"dataset", "data_dir", "dataset_option", "device"} <= params, path
        if path != ["layers"]:
            assert "seed" in params, path
    by_name = {p.name: p for p in cmd.params}
    assert by_name["device"].default == "auto", path  # the same default everywhere
    for p in cmd.params:
        if getattr(p, "hidden", False):
            assert p.help.startswith("Deprecated: use --"), (path, p.name)
            assert p.name.endswith("_"), (path, p.name)
        elif p.param_type_name == "option":  # arguments (properties' sources) have no flag
            assert p.opts[0] == "--" + p.name.replace("_", "-"), (path, p.name)
    # Python defaults equal CLI defaults, field by field
    defaults = vars(_defaults(config))
    for p in cmd.params:
        if p.name in defaults and not getattr(p, "hidden", False) and not isinstance(
                defaults[p.name], (list, tuple, dict)) and defaults[p.name] is not None:
            assert p.default == defaults[p.name], (path, p.name, p.default, defaults[p.name])


#: one name per thing, in every command; the former spellings are hidden aliases
_FORMER = {"datasets", "real_dataset", "task", "widths", "seeds", "backbone", "lr_schedule",
           "lr_step_size", "steps", "gamma"}


@pytest.mark.parametrize("path", [["run"], ["layers"], ["measure"], ["sweep"], ["study", "regions"],
                                  ["study", "lsh"], ["study", "spectrum"], ["study", "binary"],
                                  ["study", "retrieval"], ["study", "planes"],
                                  ["study", "local-complexity"], ["study", "ood"]])
def test_every_command_uses_the_shared_option_names(path):
    cmd = _command(path)
    visible = {p.name for p in cmd.params if not getattr(p, "hidden", False)}
    assert not visible & _FORMER, (path, visible & _FORMER)
    assert "dataset" in visible, path
    hidden = {p.name.rstrip("_") for p in cmd.params if getattr(p, "hidden", False)}
    assert hidden <= _FORMER, path
    training = {"run", "regions", "binary"} & set(path)
    if training:  # a schedule of the learning rate is named the same way
        assert {"schedule", "step_size"} <= visible, path


def test_companion_studies_live_under_study():
    top = set(_command([]).commands)
    assert "regions" not in top and {"regions", "lsh", "spectrum", "binary", "retrieval"} <= set(
        _command(["study"]).commands)


def test_user_errors_print_one_line_and_exit_with_the_user_error_status(tmp_path):
    res = runner.invoke(app, ["run", "--dataset", "nope", "--no-progress",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == errors.EXIT_USER_ERROR
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown dataset 'nope'")
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["run", "--model", "resnet20", "--width", "12"])
    assert res.exit_code == errors.EXIT_USER_ERROR and "--width" in res.output
    res = runner.invoke(app, ["plot", str(tmp_path / "missing")])
    assert res.exit_code == errors.EXIT_USER_ERROR and "no results" in res.output
    res = runner.invoke(app, ["run", "--no-such-option"])  # a usage error stays 2
    assert res.exit_code == 2


def test_k_flows_into_every_label(tmp_path):
    res = runner.invoke(app, ["run", "--k", "5", "--width", "8", "--epochs", "1",
                              "--checkpoints", "1", "--kmeans-n-init", "1",
                              "--logreg-strategy", "ovr", "--no-save-codes", "--no-progress",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "5-NN acc." in res.output and "9-NN" not in res.output
    metrics = pd.read_parquet(tmp_path / "r" / "metrics.parquet")
    assert (metrics["k"] == 5).all()
    labels = list(acthash.properties_table(metrics.iloc[0].to_dict()).index)
    assert any(lb.startswith("5-NN") for lb in labels) and not any("9-NN" in lb for lb in labels)


# ---------------------------------------------------------------------------- bits, sweeps


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int64, np.float32, np.float64, bool])
def test_from_bits_packs_like_numpy_and_validates(dtype):
    rng = np.random.default_rng(3)
    bits = rng.random((37, 77)) > 0.5
    codes = acthash.NeuralCodes.from_bits(bits.astype(dtype))
    assert np.array_equal(codes.packed, np.packbits(bits, axis=1))
    assert np.array_equal(codes.unpack(), bits.astype(np.uint8))


@pytest.mark.parametrize("bad", [[[0, 2]], [[0, -1]], [[0.5, 1.0]], [[0.0, np.nan]]])
def test_from_bits_rejects_values_other_than_0_and_1(bad):
    with pytest.raises(errors.InputError, match="only 0 and 1"):
        acthash.NeuralCodes.from_bits(np.asarray(bad))


TINY = {"name": "tiny", "factor": "width",
        "base": {"dataset": "digits", "epochs": 1, "checkpoints": [1], "kmeans_n_init": 1,
                 "logreg_strategy": "ovr", "save_codes": False, "sample_size": 300},
        "grid": {"width": [4, 8]}, "seeds": [0]}


def test_a_locked_sweep_directory_is_not_computed_twice(tmp_path):
    from acthash.runs.sweep import run_sweep, sweep_lock

    with sweep_lock(tmp_path):
        with pytest.raises(errors.SweepLockedError, match=r"pid \d+"):
            run_sweep(TINY, tmp_path, progress=False)
    assert not (tmp_path / "parts").exists()  # nothing ran while the lock was held
    res = run_sweep(TINY, tmp_path, progress=False)  # released: runs
    assert len(res.computed) == 2


def test_results_are_consolidated_once_and_readable_while_running(tmp_path, monkeypatch):
    from acthash.runs.results import ResultStore, load_results
    from acthash.runs.sweep import run_sweep

    calls = []
    original = ResultStore.consolidate

    def counting(self, order=None):
        calls.append(1)
        return original(self, order)

    monkeypatch.setattr(ResultStore, "consolidate", counting)
    res = run_sweep(TINY, tmp_path, progress=False)
    assert len(calls) == 1
    # a killed sweep leaves parts but a stale table: readers use the parts
    (tmp_path / "results.parquet").unlink()
    assert load_results(tmp_path).equals(res.table)


def test_phase_thresholds_come_from_the_sweep_file(tmp_path):
    from acthash.presentation.phase import PhaseThresholds

    (tmp_path / "sweep.json").write_text(json.dumps({"phase": {"under": 0.3}}))
    t = PhaseThresholds.for_results(tmp_path)
    assert t.under == 0.3 and t.sufficient == PhaseThresholds().sufficient
    assert PhaseThresholds.for_results([tmp_path], under=0.2).under == 0.2  # CLI wins
    (tmp_path / "sweep.json").write_text(json.dumps({"phase": {"nope": 1}}))
    with pytest.raises(errors.ConfigError, match="nope"):
        PhaseThresholds.for_results(tmp_path)


# ---------------------------------------------------------------------------- layering


def _import_graph():
    """Every ``acthash`` import in the package, module level or inside a function:
    ``{module: [(imported module, imported name or None), ...]}``."""
    import ast

    root = Path(SRC, "acthash")
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph.setdefault(name, [])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                if not base.startswith("acthash"):
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    edges.append((sub, None) if sub in modules else (base, alias.name))
            elif isinstance(node, ast.Import):
                edges += [(a.name, None) for a in node.names if a.name.startswith("acthash.")]
    return modules, graph


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycle_inside_the_package():
    """Function-level imports count too: a cycle dodged by a late import is still a cycle."""
    modules, graph = _import_graph()
    succ = {m: sorted({t for t, _ in graph[m] if t in modules and t != m}) for m in modules}
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for m in sorted(modules):
        if m not in index:
            visit(m)
    assert not cycles, cycles


def test_no_private_name_is_imported_across_folders():
    _, graph = _import_graph()
    hits = [f"{m} imports {name} from {target}" for m, edges in graph.items()
            for target, name in edges
            if name and name.startswith("_") and not name.startswith("__")
            and _folder(m) != _folder(target)]
    assert not hits, hits


def test_no_module_over_600_lines():
    """One module, one job: a file that outgrows 600 lines is split by concern."""
    long = {str(p.relative_to(SRC)): n for p in Path(SRC, "acthash").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long
