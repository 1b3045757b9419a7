"""Training loop for in-memory datasets, with checkpoints at chosen epochs.

Batches are slices of a per-epoch permutation of whole tensors on the model's device (no
per-item DataLoader). A seed fixes the shuffles, so training on CPU is deterministic.
Epoch 0 is the initialization: ``checkpoints=[0, 1, 3]`` calls ``on_checkpoint`` before
any step and after epochs 1 and 3.
"""

from __future__ import annotations

import copy
import math
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from acthash._utils.budget import resolve_device  # noqa: F401  (re-exported)
from acthash._utils.config import (  # noqa: F401  (re-exported)
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
)
from acthash._utils.run import progress_bar
from acthash.errors import DivergenceError, InputError

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "seed_everything", "resolve_device",
           "make_optimizer", "make_schedule", "training_loss", "OPTIMIZERS", "SCHEDULES", "LOSSES"]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    history: pd.DataFrame  # one row per epoch: epoch, lr, train_loss, train_acc[, val_*]
    checkpoint_epochs: list[int]
    stopped_early: bool = False
    best_state: dict | None = None


def make_optimizer(params, name: str, lr: float, *, momentum: float = 0.0,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The optimizer ``name`` of :data:`OPTIMIZERS` ("adam", "adamw", "sgd") over ``params``;
    ``momentum`` is used by SGD only (0: plain gradient descent)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise InputError(f"unknown optimizer {name!r}; use one of {OPTIMIZERS}")


def make_schedule(lr: float, schedule: str, *, epochs: int = 1, step_size: int = 20,
                  gamma: float = 0.1, milestones: Sequence[int] = ()) -> Callable[[int], float]:
    """``epoch -> learning rate`` (epochs 1-based) of a schedule of :data:`SCHEDULES`:

    "none" : ``lr``; "step" : ``lr * gamma ** ((epoch - 1) // step_size)``;
    "multistep" : ``lr * gamma ** (number of milestones m with epoch > m)``;
    "cosine" : ``lr / 2 * (1 + cos(pi * (epoch - 1) / epochs))``.
    """
    if schedule == "none":
        return lambda epoch: lr
    if schedule == "step":
        return lambda epoch: lr * gamma ** ((epoch - 1) // step_size)
    if schedule == "multistep":
        marks = tuple(milestones)
        return lambda epoch: lr * gamma ** sum(1 for m in marks if epoch > m)
    if schedule == "cosine":
        return lambda epoch: 0.5 * lr * (1 + math.cos(math.pi * (epoch - 1) / max(epochs, 1)))
    raise InputError(f"unknown schedule {schedule!r}; use 'none', 'step', 'multistep' or "
                     "'cosine'")


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)


def _schedule(cfg: TrainConfig) -> Callable[[int], float]:
    return make_schedule(cfg.lr, cfg.schedule, epochs=cfg.epochs, step_size=cfg.step_size,
                         gamma=cfg.lr_gamma, milestones=cfg.milestones)


def _lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate used during epoch ``epoch`` (1-based)."""
    return _schedule(cfg)(epoch)


def training_loss(outputs: torch.Tensor, y: torch.Tensor, kind: str = "ce", *,
                  reduction: str = "mean") -> torch.Tensor:
    """The loss ``kind`` of :data:`LOSSES` of (B, C) ``outputs`` against (B,) class indices:
    "ce" cross-entropy in nats; "mse" the squared error to one-hot targets, averaged over
    the C classes (``reduction="mean"``: also over the batch; "sum": summed over it)."""
    if kind == "ce":
        return F.cross_entropy(outputs, y, reduction=reduction)
    if kind == "mse":
        target = F.one_hot(y, outputs.shape[1]).to(outputs.dtype)
        per_example = (outputs - target).pow(2).mean(dim=1)
        return per_example.mean() if reduction == "mean" else per_example.sum()
    raise InputError(f"unknown loss {kind!r}; use one of {', '.join(LOSSES)}")


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 4096, *,
             loss: str = "ce"):
    """(mean loss, accuracy) of ``model`` on (N, ...) inputs ``x`` and (N,) class indices
    ``y`` (``loss`` of :func:`training_loss`: cross-entropy in nats by default), in batches,
    in eval mode (the model is left in eval mode).

    Inputs are moved to the model's device batch by batch."""
    model.eval()
    p = next(model.parameters(), None)
    device = p.device if p is not None else x.device
    total, correct = 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(x), batch):
            xb, yb = x[lo : lo + batch].to(device), y[lo : lo + batch].to(device)
            out = model(xb)
            total += float(training_loss(out, yb, loss, reduction="sum"))
            correct += int((out.argmax(1) == yb).sum())
    return total / len(x), correct / len(x)


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig | None = None,
    *,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    on_checkpoint: Callable[[int, nn.Module], None] | None = None,
    progress: bool = False,
    # extra_loss(model, outputs, epoch) -> scalar tensor, added to each mini-batch's
    # cross-entropy (epoch 1-based); the history then also holds the per-example means of
    # the cross-entropy alone (train_ce) and of the extra term (train_extra).
    extra_loss: Callable[[nn.Module, torch.Tensor, int], torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``model`` on (x, y) in place with ``config.loss`` (cross-entropy by default,
    or "mse": squared error to one-hot targets).

    x : (N, ...) float tensor; y : (N,) int64 labels. Tensors are moved to the model's
    device once (``config.device``; "auto" = CUDA when available) and sliced per batch.
    on_checkpoint(epoch, model) is called at each epoch listed in ``config.checkpoints``
    (0 = before training), with the model in eval mode; it must not change the model.

    ``config.seed`` fixes the batch order and reseeds torch's global generator (used by
    dropout or RReLU), so on CPU the same model and seed give bit-identical weights.
    """
    cfg = config or TrainConfig()
    cfg.validate()
    if len(x) != len(y):
        raise InputError(f"{len(x)} inputs but {len(y)} labels; pass one label per input")
    if len(x) == 0:
        raise InputError("no training examples")
    if cfg.early_stopping and x_val is None:
        raise InputError("early stopping watches the validation loss: pass x_val/y_val "
                         "(acthash run: --val-split 0.2)")
    if (x_val is None) != (y_val is None):
        raise InputError("pass both x_val and y_val, or neither")
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model.to(device)
    x, y = x.to(device), y.to(device).long()
    if x_val is not None:
        x_val, y_val = x_val.to(device), y_val.to(device).long()
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    opt = _make_optimizer(model, cfg)
    lr_at = _schedule(cfg)
    checkpoints = sorted(set(int(c) for c in cfg.checkpoints))
    done: list[int] = []

    def checkpoint(epoch: int) -> None:
        if epoch in checkpoints:
            model.eval()
            if on_checkpoint is not None:
                on_checkpoint(epoch, model)
            done.append(epoch)

    checkpoint(0)
    rows = []
    best, best_state, waited, stopped = math.inf, None, 0, False
    epochs = progress_bar(range(1, cfg.epochs + 1), enabled=progress, desc="train",
                          unit="epoch")
    n = len(x)
    for epoch in epochs:
        lr = lr_at(epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        extra_total = torch.zeros((), device=device)
        for lo in range(0, n, cfg.batch_size):
            idx = perm[lo : lo + cfg.batch_size]
            if len(idx) < 2 and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                    for m in model.modules()):
                continue  # BatchNorm cannot train on a single example
            xb, yb = x[idx], y[idx]
            out = model(xb)
            loss = training_loss(out, yb, cfg.loss)
            if extra_loss is not None:
                extra = extra_loss(model, out, epoch)
                extra_total += extra.detach() * len(idx)
                loss = loss + extra
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total.add_(loss.detach(), alpha=len(idx))
            correct.add_((out.detach().argmax(1) == yb).sum())
        total, correct = float(total), int(correct)
        if not math.isfinite(total):
            raise DivergenceError(
                f"training diverged at epoch {epoch} (loss is {total}); lower the learning rate"
            )
        row = {"epoch": epoch, "lr": lr, "train_loss": total / n, "train_acc": correct / n}
        if extra_loss is not None:
            row["train_extra"] = float(extra_total) / n
            row["train_ce"] = row["train_loss"] - row["train_extra"]
        if x_val is not None:
            row["val_loss"], row["val_acc"] = evaluate(model, x_val, y_val, loss=cfg.loss)
        rows.append(row)
        checkpoint(epoch)
        if cfg.early_stopping and x_val is not None:
            if row["val_loss"] < best - 1e-12:
                best, waited = row["val_loss"], 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
                if waited >= cfg.early_stopping:
                    stopped = True
                    break
    if stopped and cfg.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    skipped = [c for c in checkpoints if c not in done]
    if skipped:
        warnings.warn(f"training stopped early at epoch {epoch}; checkpoints {skipped} were "
                      "not reached", stacklevel=2)
    model.eval()
    return TrainResult(pd.DataFrame(rows), done, stopped, best_state)
