"""The option conventions shared by every command: list parsing, ``KEY=VALUE`` options,
the shared option types, and the builder of a command's config from its parameters."""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import typer

from acthash.errors import ConfigError


def _parse_ints(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _parse_floats(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        return [float(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}") from None


def _parse_switches(text: str | None) -> list[bool]:
    """``"off,on"`` -> [False, True] (also true/false, yes/no, 1/0)."""
    words = {"off": False, "false": False, "no": False, "0": False,
             "on": True, "true": True, "yes": True, "1": True}
    out = []
    for t in _parse_names(text):
        if t.lower() not in words:
            raise typer.BadParameter(f"expected on/off values, comma-separated, got {t!r}")
        out.append(words[t.lower()])
    return out


def _factor_values(*, seed: str, batchnorm: str, label_noise: str) -> dict:
    """The factor options of a study (``--seed``, ``--batchnorm``, ``--label-noise``, each
    comma-separated) as config fields; an empty option keeps one default value."""
    return {"seed": _parse_ints(seed) or [0], "batchnorm": _parse_switches(batchnorm) or [False],
            "label_noise": _parse_floats(label_noise) or [0.0]}


def _switches_text(values) -> str:
    return ",".join("on" if v else "off" for v in values)


def _parse_names(text: str | None) -> list[str]:
    return [t for t in (text or "").replace(" ", "").split(",") if t]


def _csv(values) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def parse_key_values(items: list[str]) -> dict:
    """``["n_test=2000", "normalize=standardize"]`` -> {"n_test": 2000, ...} (YAML scalars)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value) if value else None
    return out


def _dataset_options(data_dir: Path | None, items: list[str], **extra) -> dict:
    opts = parse_key_values(items)
    if data_dir:
        opts["root"] = str(data_dir)
    opts.update({k: v for k, v in extra.items() if v is not None})
    return opts


def _model_options(width_mult: float | None, items: list[str]) -> dict:
    opts = parse_key_values(items)
    if width_mult is not None:
        opts["width_mult"] = width_mult
    return opts


#: options that steer the command rather than set a config field
CLI_ONLY = {"data_dir", "dataset_option", "model_option", "width_mult", "label_column", "out",
            "runs_root", "progress", "format", "force"}


def _context():
    """The running command's click context (Typer ships its own copy of click), or None."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # a Typer that uses the click package
        from click import get_current_context
    return get_current_context(silent=True)


def _user_set(name: str) -> bool:
    """True when the running command's option ``name`` was given on the command line (or
    the environment), False when it holds its default; True outside a command."""
    ctx = _context()
    if ctx is None:
        return True
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _config(cls, params: dict, **derived):
    """``cls`` from the command's parameters that are its fields (plus ``derived`` ones).

    An option left at its default is not passed, so the config knows which fields the user
    set (:meth:`~acthash._utils.config.ConfigDict.is_set`): ``--width 100`` with a model
    that takes no width is refused, although 100 is the default."""
    names = cls.field_names()
    unknown = sorted(set(params) - names - CLI_ONLY - set(derived))
    if unknown:  # a programming error: an option that maps to no field
        raise ConfigError(f"options {unknown} are not fields of {cls.__name__}")
    defaults = vars(_defaults(cls))
    values = {k: v for k, v in params.items() if k in names
              and (_user_set(k) or k not in defaults or defaults[k] != v)}
    values.update(derived)
    return cls(**values)


def _defaults(cls) -> SimpleNamespace:
    """The field defaults of config class ``cls``, read from the dataclass without building
    (and validating) an instance, so defining the commands imports none of the modules a
    config's checks need."""
    values = {}
    for f in fields(cls):
        if f.default is not MISSING:
            values[f.name] = f.default
        elif f.default_factory is not MISSING:
            values[f.name] = f.default_factory()
    return SimpleNamespace(**values)


# ---------------------------------------------------------------------------- shared options
# Defaults come from the config blocks, so the CLI, the Python API and YAML cannot drift.

Dataset = Annotated[str, typer.Option(help="Dataset name (see `acthash data list`).")]
DataDir = Annotated[Path | None, typer.Option(
    help="Directory holding the dataset's files (sets the dataset option root).")]
DatasetOption = Annotated[list[str], typer.Option(
    "--dataset-option", "-O",
    help="Dataset option KEY=VALUE, repeatable (e.g. -O n_test=2000 -O normalize=standardize).")]
Model = Annotated[str, typer.Option(help="Model name (mlp, vgg11, resnet20, ...), or "
                                    "package.module:function.")]
Width = Annotated[int, typer.Option(help="Hidden units per layer (MLP).")]
Depth = Annotated[int, typer.Option(help="Hidden layers (MLP) or depth (resnet).")]
Batchnorm = Annotated[bool, typer.Option(help="BatchNorm after each hidden Linear (MLP).")]
Activation = Annotated[str, typer.Option(
    help="relu, leaky_relu, prelu, rrelu, relu6 or hardtanh.")]
WidthMult = Annotated[float | None, typer.Option(
    help="Channel multiplier of vgg*/resnet* models (1.0 = the standard widths).")]
ModelOption = Annotated[list[str], typer.Option(
    "--model-option", "-M", help="Model option KEY=VALUE, repeatable (e.g. -M width_mult=0.5).")]
Epochs = Annotated[int, typer.Option(help="Training epochs.")]
Lr = Annotated[float, typer.Option(help="Learning rate.")]
BatchSize = Annotated[int, typer.Option(help="Mini-batch size.")]
Optimizer = Annotated[str, typer.Option(help="adam, adamw or sgd (with --momentum).")]
#: the factors of a study: one model per value (comma-separated)
SeedFactor = Annotated[str, typer.Option(help="Seeds, comma-separated (one model each).")]
BatchnormFactor = Annotated[str, typer.Option(
    help="BatchNorm after each hidden Linear: off, on, or off,on (one model each).")]
LabelNoiseFactor = Annotated[str, typer.Option(
    help="Shares of training labels moved to another class, comma-separated (one model "
    "each).")]
Momentum = Annotated[float, typer.Option(help="SGD momentum.")]
WeightDecay = Annotated[float, typer.Option(help="L2 weight decay.")]
Schedule = Annotated[str, typer.Option(
    help="none, step (x0.1 every --step-size epochs) or cosine.")]
StepSize = Annotated[int, typer.Option(help="Epochs between the step schedule's decays.")]
EarlyStopping = Annotated[int | None, typer.Option(
    help="Patience (epochs) on the validation loss.")]
Checkpoints = Annotated[str, typer.Option(
    help="Epochs to measure at, comma-separated, e.g. 0,1,3,10 (0 = initialization).")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, ...")]
Out = Annotated[Path | None, typer.Option(help="Output directory (default: a new one under "
                                          "--runs-root).")]
RunsRoot = Annotated[Path, typer.Option(help="Where new run directories go.")]
Force = Annotated[bool, typer.Option(
    "--force", help="Replace the run already in --out (it is emptied first; only an acthash "
    "run directory is). Without it an existing, non-empty --out is refused.")]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]


def _check_format(value: str) -> str:
    from acthash.cli._tables import FORMATS

    if value not in FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(FORMATS)}")
    return value


Format = Annotated[str, typer.Option(
    "--format", callback=_check_format,
    help="table (for people), or csv, json, markdown: the plain table on stdout, for "
    "scripts (notes go to stderr).")]


# the measurement options of `run`, `measure` and `properties` (RunConfig's CodeFields and
# PropertyFields), declared once
K = Annotated[int, typer.Option(help="Neighbours of the Hamming k-NN.")]
Layers = Annotated[str | None, typer.Option(
    help="Regular expression selecting the captured layers.")]
DropConstant = Annotated[bool, typer.Option(
    help="Drop constant units (over the training set; the original convention: over "
    "train and test).")]
Codes = Annotated[str, typer.Option(
    help="binary (neural codes), aggregate (per-channel sums of convolutional layers, "
    "Euclidean k-NN) or both.")]
Convention = Annotated[str, typer.Option(
    help="acthash, or original: the original study's scripts (sklearn k-NN ties, union "
    "constant mask, K-Means seed 9 float64 fixed K, liblinear, test-only scores).")]
Ties = Annotated[str | None, typer.Option(
    help="k-NN tie rule: share (order-independent) or sklearn [default: the convention's].")]
KmeansNSeeds = Annotated[int | None, typer.Option(
    help="K-Means seeds, reported as mean ± std [default: 5; original: 1].")]
KmeansNInit = Annotated[int, typer.Option(help="K-Means restarts per seed (best inertia kept).")]
LogregSolver = Annotated[str | None, typer.Option(
    help="Logistic-regression solver: lbfgs, liblinear, ... [default: the convention's].")]
PropertyBackend = Annotated[str, typer.Option(
    help="K-Means/logreg/k-NN backend: auto, sklearn, numba (streamed, CPU), torch "
    "(streamed, CPU or CUDA).")]
MemoryBudget = Annotated[str | None, typer.Option(
    help="Working memory of the streamed properties, e.g. 2GB (default 1GiB); codes "
    "larger than it are captured straight to disk.")]
CodesToDisk = Annotated[bool | None, typer.Option(
    help="Capture the codes straight to a memory-mapped .ahc [default: when they exceed "
    "--memory-budget].")]
LogregStrategy = Annotated[str, typer.Option(
    help="Logistic regression: ovo (the original), ovr or multinomial.")]
SaveCodes = Annotated[bool, typer.Option(
    help="Store the packed codes in the run directory.")]


# ---------------------------------------------------------------------------- former spellings


def Deprecated(old_flag: str, new_flag: str):  # noqa: N802 - reads like the option types
    """A hidden option keeping a former spelling for one release: ``old_: Annotated[str |
    None, Deprecated("--real-dataset", "--dataset")] = None``; :func:`_take_deprecated`
    moves its value to the new option with a warning."""
    return typer.Option(old_flag, hidden=True, help=f"Deprecated: use {new_flag}.")


def _take_deprecated(params: dict, renames: dict[str, str]) -> dict:
    """Move each given former spelling (parameter ``alias`` -> ``new``) onto the new
    parameter with a warning on stderr; both given is a usage error. Pops every alias."""
    ctx = _context()
    flags = {p.name: p.opts[0] for p in ctx.command.params} if ctx is not None else {}
    for alias, new in renames.items():
        value = params.pop(alias, None)
        if value is None or value == [] or value == ():
            continue
        old_flag, new_flag = flags.get(alias, alias), flags.get(new, new)
        if _user_set(new):
            raise typer.BadParameter(f"{old_flag} is the former name of {new_flag}; give only "
                                     f"{new_flag}")
        typer.echo(f"warning: {old_flag} is deprecated and will be removed; use {new_flag}",
                   err=True)
        params[new] = value
    return params
