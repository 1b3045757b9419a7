"""Light imports: the command line's help and `acthash data list`, the package root, the
result store, the configs and the registries load no torch. Each check runs in a fresh
interpreter and looks at ``sys.modules`` (what was imported, never how long it took)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _fresh_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin",
                               "COLUMNS": "200"})


def _cli_without_torch(argv: list[str]) -> subprocess.CompletedProcess:
    return _fresh_python(f"""
        import sys
        from acthash.cli import main
        sys.argv = {["acthash", *argv]!r}
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None), f"exit status {{e.code}}"
        heavy = [m for m in ("torch", "acthash.runs.experiment", "acthash.train")
                 if m in sys.modules]
        assert not heavy, heavy
        print("no torch")
    """)


def test_help_imports_no_torch():
    res = _cli_without_torch(["--help"])
    assert res.returncode == 0, res.stderr
    assert "Usage" in res.stdout and "study" in res.stdout and "no torch" in res.stdout


@pytest.mark.parametrize("command, shown", [
    (["study", "--help"], "retrieval"), (["run", "--help"], "--device"),
    (["study", "binary", "--help"], "--latent-dim"),
])
def test_command_help_imports_no_torch(command, shown):
    res = _cli_without_torch(command)
    assert res.returncode == 0, res.stderr
    assert shown in res.stdout and "no torch" in res.stdout


def test_data_list_imports_no_torch():
    res = _cli_without_torch(["data", "list"])
    assert res.returncode == 0, res.stderr
    assert "digits" in res.stdout and "manifolds" in res.stdout and "no torch" in res.stdout


@pytest.mark.parametrize("module", [
    "acthash", "acthash.runs.results", "acthash.runs.config", "acthash.studies.configs",
    "acthash._utils.config", "acthash.data", "acthash.models", "acthash.cli",
])
def test_module_imports_no_torch(module):
    res = _fresh_python(f"""
        import sys
        import {module}
        assert "torch" not in sys.modules, "torch imported"
        print("ok")
    """)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_configs_build_and_registries_list_without_torch():
    res = _fresh_python("""
        import sys
        from acthash.data import list_datasets
        from acthash.models import list_models
        from acthash.runs.config import RunConfig
        from acthash.studies import configs

        RunConfig()
        for name in ("RegionsConfig", "LSHConfig", "SpectrumConfig", "BinaryStudyConfig",
                     "RetrievalStudyConfig"):
            getattr(configs, name)().to_dict()
        assert "digits" in {d["name"] for d in list_datasets()}
        assert "mlp" in list_models()
        assert "torch" not in sys.modules, "torch imported"
        print("ok")
    """)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_configs_are_re_exported_from_their_old_homes():
    from acthash.runs import config, experiment
    from acthash.studies import binary, configs, lsh, regions, retrieval, spectrum

    assert experiment.RunConfig is config.RunConfig
    assert regions.RegionsConfig is configs.RegionsConfig
    assert lsh.LSHConfig is configs.LSHConfig
    assert spectrum.SpectrumConfig is configs.SpectrumConfig
    assert spectrum.COMPARISONS is configs.COMPARISONS
    assert binary.BinaryStudyConfig is configs.BinaryStudyConfig
    assert binary.VARIANTS is configs.VARIANTS
    assert retrieval.RetrievalStudyConfig is configs.RetrievalStudyConfig
    assert retrieval.ENCODER_NAMES is configs.ENCODER_NAMES


def test_model_registry_is_exported_like_the_dataset_registry():
    import acthash.data
    import acthash.models
    from acthash.models import registry

    assert {"register_dataset", "list_datasets", "load"} <= set(acthash.data.__all__)
    assert {"register_model", "list_models", "build_model"} <= set(acthash.models.__all__)
    assert registry.register is registry.register_model  # the former name still works


def _acthash_imports(path: Path) -> set[str]:
    """Modules of acthash that ``path`` imports at any level (absolute imports)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("acthash"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("acthash"))
    return out


def test_dataset_imports_go_one_way():
    """The loaders import the registry; the registry imports no loader (not even lazily)."""
    data = SRC / "acthash" / "data"
    assert not {m for m in _acthash_imports(data / "registry.py")
                if m.startswith(("acthash.data.loaders", "acthash.data.manifolds"))}
    assert "acthash.data.loaders" not in {m for m in _acthash_imports(data / "manifolds.py")}
    assert "acthash.data.registry" in _acthash_imports(data / "loaders.py")


def test_python_dash_m_runs_the_command_line():
    res = subprocess.run([sys.executable, "-m", "acthash.cli", "--help"], capture_output=True,
                         text=True, timeout=300,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0 and "Usage" in res.stdout, res.stderr
