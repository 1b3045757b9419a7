"""Sweep presets: the paper's factor studies, built with the original study's recipes.

He et al. (2021) did not train every data set the same way. Their scripts
(github.com/LeavesLei/activation-code) use three recipes, recorded in :data:`RECIPES`:

- ``mnist`` — the repository-root Keras scripts ``run_layer_width_train_mlp.py``,
  ``run_training_time_train_mlp.py`` and ``run_sample_size_train_mlp.py`` (MNIST, depth 1):
  ``create_mlp(..., bn=True)`` (Dense → BatchNormalization → ReLU), Adam lr 1e-2 ×0.1 every
  20 epochs, batch 64, 200 epochs, an L2 kernel penalty ``l2(1e-6)``, the last 20 % of the
  training set held out for validation, 10 repeats.
- ``cifar10`` — the same scripts with ``--dataset cifar10 --depth 5``: five BatchNorm'd
  hidden layers of ``num_neuron // 5`` units (10…200 per layer), same optimizer.
- ``svhn`` — ``SVHN/utils.py`` and ``SVHN/run_svhn_*_training_mlp.py`` (PyTorch): one hidden
  layer **without** BatchNorm, SGD momentum 0.9, weight decay 5e-4, lr 0.01 (the scripts
  set ``lr = 0.01``; ``utils.train``'s default of 0.1 is overridden) ×0.2 from the 42nd,
  62nd and 92nd epoch (``learning_rate`` tests the 0-based epoch ``> 40/60/90``), batch
  128, 100 epochs, no validation split, 5 repeats (five ``svhn_*_{1..5}.sh`` scripts).

Data sets the original does not cover use the nearest recipe under which the networks
train healthily (:data:`NEAREST`): digits and Fashion-MNIST use ``mnist`` (greyscale
10-class images; without BatchNorm, Adam at lr 1e-2 kills many hidden units on
Fashion-MNIST and the redundancy plateaus near 0.4 at widths 128–256, with BatchNorm it
reaches 0). IMDB (bag of words) and Adult, also in the original, have no acthash loader;
their scripts use no BatchNorm and Keras' default Adam (lr 1e-3), see docs/sweeps.md.

``scale="paper"`` is the original grid and recipe. ``scale="cpu"`` keeps the recipe and
shrinks the grid so that each preset runs in minutes on 2 cores; every change from the
original is listed in the sweep's ``provenance["deviations"]`` (written to
``sweep.json``) and summarised in its description.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from acthash.errors import ConfigError

if TYPE_CHECKING:  # sweep imports this module at its end
    from acthash.runs.sweep.config import SweepConfig

__all__ = ["PRESETS", "RECIPES", "NEAREST", "Recipe", "preset", "recipe_for"]

PRESETS = ("model-size", "training-time", "sample-size", "regularization", "label-noise",
           "random-data", "cnn")


@dataclass(frozen=True)
class Recipe:
    """How the original study trained and swept one data set (paper scale).

    run: RunConfig fields of the recipe (model and optimization). widths: model-size grid
    (units per hidden layer). time_widths / checkpoints: training-time grid. sample_widths /
    sample_sizes: sample-size grid (first N examples, repeated to a full epoch when
    ``tile_sample``). notes: details of the original that acthash does not copy exactly.
    """

    name: str
    source: str
    run: dict
    epochs: int
    repeats: int
    widths: tuple[int, ...]
    time_widths: tuple[int, ...]
    checkpoints: tuple[int, ...]
    sample_widths: tuple[int, ...]
    sample_sizes: tuple[int, ...]
    tile_sample: bool = True
    tile_rows: int | None = None  # rows a tiled sample fills per epoch (the original's)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        r = self.run
        bn = "BatchNorm after each Linear" if r.get("batchnorm") else "no BatchNorm"
        opt = r["optimizer"].upper() if r["optimizer"] == "sgd" else "Adam"
        if r.get("schedule") == "step":
            sched = f"x{r.get('lr_gamma', 0.1):g} every {r.get('step_size', 20)} epochs"
        elif r.get("schedule") == "multistep":
            sched = f"x{r['lr_gamma']:g} after epochs {'/'.join(map(str, r['milestones']))}"
        else:
            sched = "constant"
        val = f"{r['val_split']:.0%} validation split" if r.get("val_split") else "no validation split"
        return (f"{self.name} recipe: depth {r.get('depth', 1)}, {bn}; {opt} lr {r['lr']:g} "
                f"{sched}, batch {r['batch_size']}, weight decay {r['weight_decay']:g}, {val}")

    def to_dict(self) -> dict:
        return asdict(self)


_MNIST_RUN = {"depth": 1, "batchnorm": True, "optimizer": "adam", "lr": 1e-2,
              "schedule": "step", "step_size": 20, "lr_gamma": 0.1, "batch_size": 64,
              # Keras l2(1e-6) adds 1e-6·‖W‖² to the loss: gradient 2e-6·W
              "weight_decay": 2e-6, "val_split": 0.2}
_KERAS_NOTES = (
    "Keras kernel_regularizer l2(1e-6) penalises kernels only; acthash's weight_decay 2e-6 "
    "(the same gradient) also decays biases and BatchNorm parameters",
    "the original holds out the LAST 20 % of the training set; acthash a seeded random 20 %",
    "model-size and sample-size runs used EarlyStopping(monitor='loss', patience=10) on the "
    "training loss; acthash trains the full epochs (its early stopping watches validation loss)",
    "K-Means in the original: scikit-learn defaults of the time (n_init 10), random_state 9",
)

RECIPES: dict[str, Recipe] = {
    "mnist": Recipe(
        name="mnist",
        source="LeavesLei/activation-code: run_layer_width_train_mlp.py, "
               "run_training_time_train_mlp.py, run_sample_size_train_mlp.py (--dataset mnist "
               "--depth 1), activation_code_methods.create_mlp(bn=True)",
        run=dict(_MNIST_RUN), epochs=200, repeats=10,
        widths=(3, 7, 10, 15, 20, 23, 27, 30, 33, 37, 40, 43, 47, 50, 53, 57, 60, 65, 70, 75,
                80, 90, 100),
        time_widths=(40, 50, 60),
        checkpoints=(0, 1, 3, 6, 10, 20, 30, 40, 60, 80, 100, 120, 140, 160, 180, 200),
        sample_widths=(40, 50, 60),
        sample_sizes=(10, 30, 60, 100, 300, 600, 1000, 2000, 3000, 6000, 10000, 20000, 30000,
                      40000),
        tile_rows=48000,
        notes=_KERAS_NOTES + ("the sample of N examples is tiled to the 48 000 training rows "
                              "(expansion_factor = 48000 // N); acthash: tile_to",),
    ),
    "cifar10": Recipe(
        name="cifar10",
        source="LeavesLei/activation-code: run_layer_width_train_mlp.py, "
               "run_training_time_train_mlp.py, run_sample_size_train_mlp.py (--dataset "
               "cifar10 --depth 5); create_mlp gives each layer num_neuron // depth units",
        run={**_MNIST_RUN, "depth": 5}, epochs=200, repeats=10,
        widths=tuple(range(10, 201, 10)),  # num_neuron 50..1000 step 50, // 5
        time_widths=(10, 20, 40, 80),  # num_neuron 50, 100, 200, 400
        checkpoints=(0, 1, 3, 6, 10, 20, 30, 40, 60, 80, 100, 120, 140, 160, 180, 200),
        sample_widths=(10, 20, 40, 80),
        sample_sizes=(10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 40000),
        tile_rows=40000,
        notes=_KERAS_NOTES + ("the sample of N examples is tiled to the 40 000 training rows; "
                              "acthash: tile_to",),
    ),
    "svhn": Recipe(
        name="svhn",
        source="LeavesLei/activation-code: SVHN/utils.py (MLP, train, learning_rate), "
               "SVHN/run_svhn_{layer_width,training_time,sample_size}_training_mlp.py",
        run={"depth": 1, "batchnorm": False, "optimizer": "sgd", "momentum": 0.9, "lr": 0.01,
             "schedule": "multistep", "milestones": [41, 61, 91], "lr_gamma": 0.2,
             "batch_size": 128, "weight_decay": 5e-4, "val_split": 0.0},
        epochs=100, repeats=5,
        widths=(10, 15, 20, 23, 27, 30, 33, 37, 40, 43, 47, 50, 53, 57, 60, 65, 70, 75, 80, 90,
                100),
        time_widths=(30, 40, 50),
        checkpoints=(0, 1, 2, 3, 6, 10, 15, 30, 40, 60, 70, 90, 100),
        sample_widths=(30, 40, 50),
        sample_sizes=(100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000),
        tile_rows=50000,
        notes=("inputs normalised as (x - 0.5) / 1 per channel; acthash's svhn loader scales "
               "to [0, 1] (a constant shift, absorbed by the first layer's bias)",
               "the sample of N examples is tiled to 50 000 rows (50000 // N); acthash: tile_to",
               "the 0-based epoch test `epoch > 40` lowers the lr from the 42nd epoch: "
               "milestones 41/61/91 here"),
    ),
}

# data sets the original does not cover -> the nearest original recipe
NEAREST = {"digits": "mnist", "fashion-mnist": "mnist", "mnist1d": "mnist"}
_NEAREST_WHY = {
    "digits": "greyscale 10-class digit images, like MNIST",
    "fashion-mnist": "28x28 greyscale 10-class images, MNIST's format; with BatchNorm the "
                     "MLPs train without dead units at Adam lr 1e-2",
    "mnist1d": "a 10-class MNIST-like benchmark",
}

_N_TRAIN = {"digits": 1437, "mnist": 60000, "fashion-mnist": 60000, "cifar10": 50000,
            "svhn": 73257}
# a data set larger than digits at CPU scale: training dominates a cell's cost (30 epochs of
# Adam steps), so the training set is capped, the test set scored at every checkpoint too
_CPU_TRAIN_CAP = 2000
_CPU_TEST_CAP = 2000
_CPU_EPOCHS = 30


def recipe_for(dataset: str) -> tuple[Recipe, str]:
    """The original recipe a data set's presets follow, and why (one line)."""
    base = dataset.split(":", 1)[1] if dataset.startswith("random:") else dataset
    if base in RECIPES:
        return RECIPES[base], f"the original {base} scripts"
    if base in NEAREST:
        return RECIPES[NEAREST[base]], (f"not in the original study; nearest recipe "
                                        f"{NEAREST[base]} ({_NEAREST_WHY[base]})")
    return RECIPES["mnist"], "not in the original study; the MNIST recipe is the default"


def _n_after_split(n: int, val_split: float) -> int:
    return n - int(round(val_split * n)) if val_split else n


def preset(name: str, scale: str = "cpu", dataset: str | None = None,
           seeds: int | None = None) -> SweepConfig:
    """A sweep reproducing one of the paper's studies (He et al., 2021, science.md §1),
    trained with the original recipe of ``dataset`` (:func:`recipe_for`).

    scale="paper": the original grid, epochs and repeats (MNIST by default).
    scale="cpu": digits by default; the same recipe with 30 epochs (the step schedule keeps
    its x0.1 at epoch 21; SVHN's milestones are scaled to 30 epochs), smaller grids and 2
    seeds; a data set larger than digits trains on the first 2 000 examples left after the
    validation split and is scored on its first 2 000 test examples. ``seeds`` overrides the number of repeats. The sweep's
    ``provenance`` (in ``sweep.json``) names the recipe, its source and every deviation.
    """
    from acthash.runs.sweep.config import SweepConfig

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if scale not in ("cpu", "paper"):
        raise ConfigError(f"unknown scale {scale!r}; use 'cpu' or 'paper'")
    if seeds is not None and int(seeds) < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds}")
    if name == "cnn":
        return _cnn_preset(scale, dataset, seeds)
    paper = scale == "paper"
    ds = dataset or ("mnist" if paper else "digits")
    recipe, why = recipe_for(ds)
    run = dict(recipe.run)
    deviations: list[str] = []
    base_name = ds.split(":", 1)[1] if ds.startswith("random:") else ds
    n_full = _N_TRAIN.get(base_name)
    n_avail = _n_after_split(n_full, run.get("val_split", 0.0)) if n_full else None
    dataset_options: dict = {}
    if paper:
        epochs, n_seeds = recipe.epochs, recipe.repeats
        widths, time_widths, sample_widths = recipe.widths, recipe.time_widths, recipe.sample_widths
        checkpoints = list(recipe.checkpoints)
        sizes = [s for s in recipe.sample_sizes if n_avail is None or s <= n_avail]
        if n_avail is not None and len(sizes) < len(recipe.sample_sizes):
            deviations.append(f"sample sizes above the {n_avail} training rows of {ds} dropped")
        cap = None
        random_widths = recipe.widths
    else:
        large = n_avail is None or n_avail > _CPU_TRAIN_CAP
        epochs, n_seeds = _CPU_EPOCHS, 2
        widths = (2, 4, 8, 16, 32, 64, 128, 256)
        time_widths = (16, 64, 256)
        sample_widths = (16, 64, 256)
        random_widths = (8, 32, 128, 256)
        checkpoints = [0, 1, 2, 3, 5, 10, 20, 30]
        cap = _CPU_TRAIN_CAP if large else None
        top = cap or n_avail
        sizes = [s for s in (10, 100, 1000) if s < top] + [top]
        deviations.append(f"{epochs} epochs instead of {recipe.epochs}")
        if run.get("schedule") == "multistep":
            run["milestones"] = [max(1, round(m * epochs / recipe.epochs))
                                 for m in run["milestones"]]
            deviations.append(f"lr milestones scaled to {epochs} epochs: "
                              f"{'/'.join(map(str, run['milestones']))}")
        deviations.append(f"{n_seeds} seeds instead of {recipe.repeats}")
        deviations.append("grids: widths " + ",".join(map(str, widths)) + " (model size), "
                          + ",".join(map(str, time_widths)) + " (training time, sample size), "
                          "checkpoints " + ",".join(map(str, checkpoints)))
        deviations.append("K-Means n_init 3 instead of 10")
        if cap:
            deviations.append(f"trained on {cap} of the {n_avail or 'available'} training "
                              f"examples (first N after the validation split)")
            dataset_options["n_test"] = _CPU_TEST_CAP
            deviations.append(f"scored on the first {_CPU_TEST_CAP} test examples")
    if paper:
        deviations.append("none in grid, epochs or repeats (paper scale)")
    deviations.extend(recipe.notes)
    base = {"dataset": ds, "epochs": epochs, "checkpoints": [epochs], "save_codes": False,
            **run}
    if dataset_options:
        base["dataset_options"] = dataset_options
    if not paper:
        base["kmeans_n_init"] = 3
        if cap:
            base["sample_size"] = cap
    seed_list = list(range(seeds if seeds is not None else n_seeds))
    if seeds is not None and seeds != n_seeds:
        deviations.append(f"{seeds} seed(s) requested")
    desc = {
        "model-size": "Encoding properties versus the width of the MLP.",
        "training-time": "Encoding properties at checkpoints during training, for several widths.",
        "sample-size": "Encoding properties versus the number of training examples (first N).",
        "regularization": "Encoding properties versus L2 weight decay.",
        "label-noise": "Encoding properties versus the fraction of wrong training labels.",
        "random-data": "Real versus uniformly random inputs, across widths.",
    }[name]
    b = dict(base)
    if name == "model-size":
        grid, factor, hue = {"width": list(widths)}, "width", None
    elif name == "training-time":
        b["checkpoints"] = checkpoints
        b["epochs"] = max(checkpoints)
        grid, factor, hue = {"width": list(time_widths)}, "epoch", "width"
    elif name == "sample-size":
        b.pop("sample_size", None)
        if recipe.tile_sample:
            rows = [r for r in (cap, n_avail, recipe.tile_rows if paper else None) if r]
            b["tile_to"] = min(rows) if rows else max(sizes)
        grid = {"width": list(sample_widths), "sample_size": sizes}
        factor, hue = "sample_size", "width"
    elif name == "regularization":
        wds = [0.0, 1e-5, 1e-3, 1e-2] if not paper else [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
        b.pop("weight_decay", None)
        grid, factor, hue = {"width": [16, 64], "weight_decay": wds}, "weight_decay", "width"
        deviations.append("the original repository has no weight-decay sweep script; grid "
                          + ", ".join(f"{w:g}" for w in wds) + " chosen here")
    elif name == "label-noise":
        noise = [0.0, 0.2, 0.5, 0.8, 1.0] if not paper else [0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0]
        grid = {"width": [16, 64], "label_noise": noise}
        factor, hue = "label_noise", "width"
        deviations.append("the original's create_noise_samples shuffled nothing "
                          "(random.shuffle returns None); acthash moves exactly "
                          "round(F·N) labels to a different class")
    else:  # random-data
        grid = {"dataset": [ds, f"random:{ds}"], "width": list(random_widths)}
        factor, hue = "width", "dataset"
        deviations.append("the original's random-input scripts feed uniform noise to models "
                          "trained on real data; this preset trains and scores on random "
                          "inputs with the real labels")
    provenance = {"recipe": recipe.name, "recipe_source": recipe.source, "why": why,
                  "recipe_summary": recipe.describe(), "scale": scale,
                  "deviations": deviations}
    short = "; ".join(d for d in deviations[:4])
    return SweepConfig(name=name, base=b, grid=grid, seeds=seed_list, factor=factor, hue=hue,
                       description=f"{desc} {recipe.describe()} ({why}). {scale} scale"
                                   + (f": {short}." if not paper else "."),
                       provenance=provenance)


def _cnn_preset(scale: str, dataset: str | None, seeds: int | None) -> SweepConfig:
    """Encoding properties of CNNs (a small VGG-11 and a ResNet-20) at checkpoints.

    scale="cpu": Fashion-MNIST, the first 2 000 training and 2 000 test images, channel
    multiplier 0.25 (ResNet-20: 36 064 bits per code; VGG-11: 27 648), Adam lr 1e-3,
    3 epochs with checkpoints 0, 1, 3, one seed; the properties of codes this long use the
    streamed K-Means / logistic regression (acthash.ops.kmeans, acthash.ops.logreg).
    scale="paper": CIFAR-10, full widths, Adam lr 1e-2 x0.1 every 20 epochs, 100 epochs,
    checkpoints 0, 1, 3, 10, 30, 100, five seeds.
    """
    from acthash.runs.sweep.config import SweepConfig

    paper = scale == "paper"
    ds = dataset or ("cifar10" if paper else "fashion-mnist")
    if paper:
        base = {"dataset": ds, "epochs": 100, "lr": 1e-2, "schedule": "step", "step_size": 20,
                "batch_size": 128, "checkpoints": [0, 1, 3, 10, 30, 100], "save_codes": False,
                "model_options": {"width_mult": 1.0}}
        n_seeds = 5
        deviations = ["100 epochs (the original CNN runs: 200)"]
    else:
        base = {"dataset": ds, "epochs": 3, "lr": 1e-3, "batch_size": 64,
                "checkpoints": [0, 1, 3], "sample_size": 2000, "kmeans_n_init": 3,
                "save_codes": False, "model_options": {"width_mult": 0.25}}
        if ds in ("fashion-mnist", "mnist", "cifar10", "svhn"):
            base["dataset_options"] = {"n_test": 2000}
        n_seeds = 1
        deviations = ["3 epochs", "2 000 training and 2 000 test examples",
                      "channel multiplier 0.25", "one seed", "Adam lr 1e-3"]
    return SweepConfig(
        name="cnn", base=base, grid={"model": ["vgg11", "resnet20"]},
        seeds=list(range(seeds if seeds is not None else n_seeds)), factor="epoch", hue="model",
        description="Encoding properties of a VGG-11 and a ResNet-20 at checkpoints during "
        f"training ({scale} scale).",
        provenance={"recipe": "cnn", "scale": scale, "deviations": deviations})
