"""Training a classifier (any of :mod:`synthaug.nets.classifiers`): :func:`train_classifier` (a step budget, early
stopping and model selection on validation, optional EMA and a synthetic loss weight), the classical-augmentation
batch transforms it takes (:func:`classical_augment`), and the metrics it selects on (:func:`evaluate`, scikit-learn).

It serves every floor that trains a classifier: the recipes' helper classifiers (pseudo-labeller, task classifier
f_S) here in :mod:`synthaug.train`, and the downstream arms and feature encoders of :mod:`synthaug.eval`, which
re-exports these names from :mod:`synthaug.eval.classifier`.

Images are float32 NCHW in [-1, 1]. ``transform`` arguments work on whole training batches (see
:func:`classical_augment` and :func:`per_image`).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn import metrics as skm
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, Dataset

from ..checks import check_choice, check_int, check_number
from ..nets.classifiers import build_classifier
from ..utils import ema_with_warmup, get_device, keep_freed_memory, progress_bar, quick_steps, seed_everything

__all__ = [
    "CLASSICAL_KINDS",
    "SELECT_ON",
    "classical_augment",
    "per_image",
    "train_classifier",
    "predict_proba",
    "metrics_from_proba",
    "evaluate",
    "weighted_cross_entropy",
]

SELECT_ON = ("auc", "accuracy", "balanced_accuracy", "loss")
CLASSICAL_KINDS = ("flips_shifts", "randaugment", "digits", "colour", "augmix")


# --- classical augmentation -----------------------------------------------------------------------------
def per_image(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Lift a per-image transform (CHW -> CHW) to a batch transform (NCHW -> NCHW), drawing new random
    parameters for every image. A CHW input is passed straight through ``fn``."""

    def apply(x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            return fn(x)
        return torch.stack([fn(img) for img in x])

    apply.__name__ = getattr(fn, "__name__", type(fn).__name__)
    return apply


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def _from_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1.0


def _colour_shift(img: torch.Tensor) -> torch.Tensor:
    """Strong colour jitter, random invert and a random channel order on one uint8 CHW image."""
    from torchvision.transforms import v2

    rgb = img.shape[0] == 3
    jitter = v2.ColorJitter(0.5, 0.5, 0.8 if rgb else None, 0.5 if rgb else None)
    ops = [jitter, v2.RandomInvert(0.5)] + ([v2.RandomChannelPermutation()] if rgb else [])
    return v2.Compose(ops)(img)


def classical_augment(kind: str = "flips_shifts", *, hflip: bool = True, vflip: bool = False,
                      max_shift: float = 0.1, num_ops: int = 2, magnitude: int = 9) -> Callable:
    """A batch transform (float NCHW or CHW in [-1, 1] -> same) for the classical-augmentation baselines.

    * ``"flips_shifts"``: random horizontal (and optionally vertical) flips, then a random shift of up to
      ``max_shift`` of the side (reflect-padded random crop, so no artificial borders appear).
    * ``"randaugment"``: torchvision ``RandAugment(num_ops, magnitude)`` on uint8 (the images are
      quantised to 0..255 and back) after the optional flips.
    * ``"digits"``: for handwriting (no flips whatever ``hflip`` says): random affine (rotation up to 10
      degrees, scale 0.9-1.1, shift up to ``max_shift``), then stroke-width jitter (a 3x3 grey dilation or
      erosion, each with probability 1/3; strokes are the bright pixels).
    * ``"colour"``: for a colour / texture shift: strong ``ColorJitter`` (brightness, contrast 0.5, saturation
      0.8, hue 0.5), ``RandomInvert`` (p 0.5) and a random permutation of the channels (after the optional flips;
      on 1-channel images only brightness, contrast and invert apply).
    * ``"augmix"``: torchvision ``AugMix`` (severity 3, width 3) on uint8 after the optional flips.

    Random parameters are drawn per image from torch's global RNG (seeded by :func:`train_classifier`).
    """
    from torchvision.transforms import v2

    if kind not in CLASSICAL_KINDS:
        raise ValueError(f"kind: expected one of {list(CLASSICAL_KINDS)}, found {kind!r}")
    if not 0.0 <= max_shift < 0.5:
        raise ValueError(f"max_shift: expected a fraction in [0, 0.5), found {max_shift!r}")
    flips = ([v2.RandomHorizontalFlip()] if hflip else []) + ([v2.RandomVerticalFlip()] if vflip else [])
    if kind == "flips_shifts":
        def shift(img: torch.Tensor) -> torch.Tensor:
            h, w = img.shape[-2:]
            pad = int(round(max_shift * max(h, w)))
            if pad == 0:
                return img
            return v2.RandomCrop((h, w), padding=pad, padding_mode="reflect")(img)

        pipe = v2.Compose(flips + [shift])
        fn = pipe
    elif kind == "digits":
        affine = v2.RandomAffine(degrees=10, translate=(max_shift, max_shift), scale=(0.9, 1.1), fill=-1.0)

        def fn(img: torch.Tensor) -> torch.Tensor:
            img = affine(img)
            r = float(torch.rand(()))
            if r < 1 / 3:
                img = F.max_pool2d(img[None], 3, 1, 1)[0]
            elif r < 2 / 3:
                img = -F.max_pool2d(-img[None], 3, 1, 1)[0]
            return img
    else:
        if kind == "randaugment":
            ops = [v2.RandAugment(num_ops=num_ops, magnitude=magnitude)]
        elif kind == "augmix":
            ops = [v2.AugMix(severity=3, mixture_width=3)]
        else:  # colour; saturation, hue and channel order mean nothing for one channel (checked per image)
            ops = [_colour_shift]
        ra = v2.Compose(flips + ops)

        def fn(img: torch.Tensor) -> torch.Tensor:
            return _from_uint8(ra(_to_uint8(img)))

    out = per_image(fn)
    out.__name__ = kind
    return out


# --- data helpers ---------------------------------------------------------------------------------------
def _loader(ds: Dataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(int(seed)) if shuffle else None
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=0, drop_last=False)


def _split_batch(batch, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    if not isinstance(batch, (list, tuple)) or len(batch) not in (2, 3):
        raise TypeError(f"{name}: expected items (image, label) or (image, label, is_synthetic), "
                        f"found {type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}")
    x, y = batch[0], batch[1]
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4:
        raise TypeError(f"{name}: expected float images (C, H, W) per item, found "
                        f"{type(x).__name__} {getattr(x, 'dtype', '')} of batch shape {tuple(getattr(x, 'shape', ()))}")
    return x, torch.as_tensor(y).long().flatten(), (batch[2] if len(batch) == 3 else None)


def _first_item(ds: Dataset, name: str):
    if len(ds) == 0:
        raise ValueError(f"{name}: expected a non-empty dataset, found 0 items")
    item = ds[0]
    if not isinstance(item, (list, tuple)) or len(item) not in (2, 3):
        raise TypeError(f"{name}: expected items (image, label) or (image, label, is_synthetic), "
                        f"found {type(item).__name__}")
    img = item[0]
    if not isinstance(img, torch.Tensor) or img.ndim != 3 or not img.is_floating_point():
        raise TypeError(f"{name}: expected float image tensors (C, H, W) in [-1, 1], found "
                        f"{type(img).__name__} with shape {tuple(getattr(img, 'shape', ()))}")
    return item


def _labels_of(ds: Dataset) -> torch.Tensor:
    if hasattr(ds, "labels") and isinstance(ds.labels, torch.Tensor):
        return ds.labels.long().flatten()
    return torch.cat([_split_batch(b, "dataset")[1] for b in _loader(ds, 512, False)])


def _count_synthetic(ds: Dataset) -> int:
    """Items flagged ``is_synthetic``: from a MixedDataset's ``source``, a 3-tensor TensorDataset, or a pass."""
    if isinstance(getattr(ds, "source", None), torch.Tensor) and getattr(ds, "return_source", True):
        return int(ds.source.sum())
    tensors = getattr(ds, "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) == 3:
        return int(tensors[2].sum())
    first = ds[0]
    if not isinstance(first, (tuple, list)) or len(first) < 3:
        return 0
    return sum(int(torch.as_tensor(b[2]).sum()) for b in _loader(ds, 512, False))


def _num_classes(train_ds: Dataset, val_ds: Dataset | None) -> int:
    for ds in (train_ds, val_ds):
        if ds is not None and isinstance(getattr(ds, "num_classes", None), int):
            return int(ds.num_classes)
    top = int(_labels_of(train_ds).max())
    if val_ds is not None:
        top = max(top, int(_labels_of(val_ds).max()))
    return top + 1


# --- prediction and metrics ------------------------------------------------------------------------------
@torch.no_grad()
def predict_proba(model: nn.Module, ds: Dataset, device=None, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities ``(N, K)`` and true labels ``(N,)`` of ``model`` on ``ds`` (eval mode)."""
    device = get_device(device)
    was_training = model.training
    model.eval().to(device)
    probs, labels = [], []
    for batch in _loader(ds, batch_size, False):
        x, y, _ = _split_batch(batch, "ds")
        probs.append(torch.softmax(model(x.to(device)).double(), dim=1).cpu())
        labels.append(y)
    model.train(was_training)
    return torch.cat(probs).double().numpy(), torch.cat(labels).numpy()


def metrics_from_proba(y_true, proba) -> dict:
    """accuracy, balanced_accuracy, auc, loss (cross-entropy), per_class_recall and n (scikit-learn).

    AUC: binary -> ROC AUC of class 1; multi-class -> one-vs-rest macro average. It is NaN (with a warning)
    when ``y_true`` lacks a class, since AUC is then undefined. Recall of a class absent from ``y_true`` is NaN.
    """
    y = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.shape[0] or p.shape[1] < 2:
        raise ValueError(f"proba: expected shape (N={len(y)}, K>=2), found {p.shape}")
    k = p.shape[1]
    labels = list(range(k))
    pred = p.argmax(1)
    present = np.unique(y)
    if len(present) < k:
        warnings.warn(f"y_true: expected all {k} classes for AUC, found only {present.tolist()}; auc is NaN",
                      stacklevel=2)
        auc = float("nan")
    elif k == 2:
        auc = float(skm.roc_auc_score(y, p[:, 1]))
    else:
        auc = float(skm.roc_auc_score(y, p / p.sum(1, keepdims=True), multi_class="ovr", average="macro",
                                      labels=labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bal = float(skm.balanced_accuracy_score(y, pred))
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": bal,
        "auc": auc,
        "loss": float(skm.log_loss(y, p, labels=labels)),
        "per_class_recall": [float(r) for r in skm.recall_score(y, pred, labels=labels, average=None,
                                                                 zero_division=np.nan)],
        "n": int(len(y)),
    }


def evaluate(model: nn.Module, ds: Dataset, device=None, batch_size: int = 256) -> dict:
    """Metrics of ``model`` on ``ds``: see :func:`metrics_from_proba`."""
    _first_item(ds, "ds")
    proba, y = predict_proba(model, ds, device, batch_size)
    return metrics_from_proba(y, proba)


# --- loss ---------------------------------------------------------------------------------------------
def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, is_synthetic: torch.Tensor,
                           synthetic_weight: float) -> torch.Tensor:
    """Cross-entropy where synthetic items weigh ``synthetic_weight`` and real ones 1 (a weighted mean), for a
    plain torch loop over ``MixedDataset(..., return_source=True)`` batches ``(image, label, is_synthetic)``."""
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    flags = torch.as_tensor(is_synthetic, device=logits.device).bool().reshape(-1)
    w = torch.where(flags, torch.full_like(losses, float(synthetic_weight)), torch.ones_like(losses))
    return (losses * w).sum() / w.sum().clamp_min(1e-12)


# --- training -------------------------------------------------------------------------------------------
def _better(value: float, best: float | None, select_on: str) -> bool:
    if math.isnan(value):
        return best is None
    if best is None or math.isnan(best):
        return True
    return value < best if select_on == "loss" else value > best


def train_classifier(train_ds: Dataset, val_ds: Dataset | None, *, arch: str = "small_cnn",
                     max_steps: int = 2000, eval_every: int | None = None, patience: int | None = 20,
                     batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 1e-4,
                     transform: Callable | None = None, seed: int = 0, device=None, select_on: str = "auc",
                     width: int = 32, num_classes: int | None = None, synthetic_weight: float = 1.0,
                     ema_decay: float | None = None, init_state: dict | None = None,
                     progress: bool | str | None = False) -> tuple[nn.Module, dict]:
    """Train a classifier for up to ``max_steps`` optimiser steps, stopping early on validation, and keep the
    weights of the evaluation with the best validation ``select_on``.

    ``train_ds`` yields ``(image, label)`` or ``(image, label, is_synthetic)`` with float CHW images in
    [-1, 1]. ``transform`` is applied to each training batch (float NCHW in [-1, 1] -> same), e.g.
    :func:`classical_augment`. AdamW with a cosine learning-rate schedule over ``max_steps``. The model is
    scored on ``val_ds`` every ``eval_every`` steps (default: one pass over the training set, at least 10
    steps) and at the last step; training stops once ``patience`` evaluations in a row did not improve
    (``None``: run the whole budget). Selection uses ``val_ds`` only (higher auc/accuracy/balanced_accuracy,
    lower loss; ties keep the earlier step); with ``val_ds=None`` the last step is kept. Items flagged
    ``is_synthetic`` weigh ``synthetic_weight`` in the loss. With ``ema_decay`` (e.g. 0.99) an exponential
    moving average of the weights (with a warm-up, :func:`~synthaug.utils.ema_with_warmup`) is what gets
    evaluated, selected and returned. ``init_state``: a state dict of the same architecture to start from
    (fine-tuning). Deterministic under ``seed`` on CPU. ``progress``: a bar over the steps with the time left (at
    most: early stopping may end sooner); a str is its label; None follows :func:`synthaug.utils.progress_default`.

    Returns ``(model, info)``; ``info`` holds ``best_step``, ``best_epoch`` (1-based, epochs of the training
    set), ``best_val``, ``steps_run``, ``stopped_early``, ``best_in_last_10pct`` (the selected step is in the
    last 10% of ``max_steps``: a sign the budget is too short), ``history`` (per evaluation: step, train_loss
    and validation metrics), ``n_train``, ``n_synthetic``, ``seconds``.
    """
    check_choice("select_on", select_on, SELECT_ON)
    max_steps = quick_steps(check_int("max_steps", max_steps, 1))  # SYNTHAUG_QUICK: a smoke test's cap
    for name, v in (("max_steps", max_steps), ("batch_size", batch_size), ("eval_every", eval_every or 1),
                    ("patience", patience or 1)):
        check_int(name, v, 1)
    check_number("ema_decay", ema_decay, 0.0, 1.0, low_open=True, high_open=True, optional=True)
    check_number("synthetic_weight", synthetic_weight, 0.0)
    if transform is not None and not callable(transform):
        raise TypeError(f"transform: expected a callable on float batches, found {type(transform).__name__}")
    t0 = time.perf_counter()
    img0 = _first_item(train_ds, "train_ds")[0]
    if val_ds is not None:
        vimg = _first_item(val_ds, "val_ds")[0]
        if vimg.shape != img0.shape:
            raise ValueError(f"val_ds: expected images of shape {tuple(img0.shape)} like train_ds, "
                             f"found {tuple(vimg.shape)}")
        if select_on == "auc" and len(torch.unique(_labels_of(val_ds))) < 2:
            raise ValueError("val_ds: expected at least two classes to select on auc, found one")
    k = int(num_classes) if num_classes is not None else _num_classes(train_ds, val_ds)
    device = get_device(device)
    seed_everything(seed)
    # channels_last on CPU: 1.1-1.5x the steps per CPU-second of every built-in classifier, AVX2 and AVX-512 alike
    # (benchmarks/bench_cpu_defaults.py); the returned model is contiguous again
    fmt = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    if device.type == "cpu":
        keep_freed_memory()
    model = build_classifier(arch, img0.shape[0], k, int(img0.shape[-1]), width=width).to(device, memory_format=fmt)
    if init_state is not None:
        model.load_state_dict(init_state)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(max_steps))
    ema = (AveragedModel(model, multi_avg_fn=ema_with_warmup(ema_decay), use_buffers=True)
           if ema_decay is not None else None)
    scored = ema.module if ema is not None else model
    loader = _loader(train_ds, batch_size, True, seed)
    per_epoch = len(loader)
    every = int(eval_every) if eval_every else max(10, per_epoch)
    history, best, best_state, best_step, since_best = [], None, None, 0, 0
    n_train, n_syn = len(train_ds), _count_synthetic(train_ds)
    step, total, count, epoch, stopped = 0, 0.0, 0, 0, False
    label = progress if isinstance(progress, str) else f"train {arch}"
    bar = progress_bar(int(max_steps), label, unit="step", enabled=None if progress is None else bool(progress),
                       leave=False)
    model.train()
    while step < max_steps and not stopped:
        epoch += 1
        for batch in loader:
            x, y, syn = _split_batch(batch, "train_ds")
            if transform is not None:
                x = transform(x)
            x, y = x.to(device).contiguous(memory_format=fmt), y.to(device)
            logits = model(x)
            if syn is not None and synthetic_weight != 1.0:
                loss = weighted_cross_entropy(logits, y, syn, synthetic_weight)
            else:
                loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            total += loss.item() * len(y)
            count += len(y)
            bar.update(1)
            if step % every == 0 or step == max_steps:
                row = {"step": step, "epoch": round(step / per_epoch, 2), "train_loss": total / max(count, 1)}
                total, count = 0.0, 0
                if val_ds is not None:
                    m = evaluate(scored, val_ds, device)
                    model.train()
                    row.update({f"val_{key}": m[key] for key in ("auc", "accuracy", "balanced_accuracy", "loss")})
                    if _better(m[select_on], best, select_on):
                        best, best_step, since_best = m[select_on], step, 0
                        best_state = copy.deepcopy({n: t.detach().cpu() for n, t in scored.state_dict().items()})
                    else:
                        since_best += 1
                        stopped = patience is not None and since_best >= patience and step < max_steps
                else:
                    best_step = step
                history.append(row)
            if step >= max_steps or stopped:
                break
    bar.close()
    model = scored
    if best_state is not None:
        model.load_state_dict(best_state)
    model = model.to(memory_format=torch.contiguous_format)
    model.eval()
    info = {"arch": arch, "max_steps": int(max_steps), "eval_every": every, "patience": patience,
            "select_on": select_on, "best_step": best_step, "best_epoch": max(1, math.ceil(best_step / per_epoch)),
            "best_val": best, "steps_run": step, "stopped_early": bool(stopped),
            "best_in_last_10pct": bool(best_step > 0.9 * max_steps), "history": history, "n_train": n_train,
            "n_synthetic": n_syn, "steps_per_epoch": per_epoch, "synthetic_weight": float(synthetic_weight),
            "ema_decay": ema_decay, "num_classes": k, "seed": seed, "device": str(device),
            "seconds": round(time.perf_counter() - t0, 3)}
    return model, info
