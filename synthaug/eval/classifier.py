"""Downstream classifiers: a small CNN and a 28 px ResNet-18, training with validation model selection,
test-set metrics (scikit-learn) and ready classical-augmentation baselines.

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
from torch.utils.data import DataLoader, Dataset

from ..utils import get_device, seed_everything

__all__ = [
    "SmallCNN",
    "resnet18_small",
    "build_classifier",
    "ARCHS",
    "classical_augment",
    "per_image",
    "train_classifier",
    "predict_proba",
    "metrics_from_proba",
    "evaluate",
]

SELECT_ON = ("auc", "accuracy", "balanced_accuracy", "loss")


# --- networks -------------------------------------------------------------------------------------------
def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Conv-BN-ReLU stages with 2x2 max-pooling, then global average pooling and a linear head.

    One conv-BN-ReLU per resolution (two at the coarsest), widths ``width, 2*width, 4*width, ...``; the
    number of pooling stages follows ``image_size`` (2 for 28 px, 3 for 64 px). ``features(x)`` returns
    the pooled penultimate features (``num_features = 4 * width`` at 28 px), used by the FID/KID encoder.
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 32):
        super().__init__()
        for name, v, lo in (("in_channels", in_channels, 1), ("num_classes", num_classes, 2),
                            ("image_size", image_size, 8), ("width", width, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name}: expected an int >= {lo}, found {v!r}")
        self.in_channels, self.num_classes, self.image_size = int(in_channels), int(num_classes), int(image_size)
        n_pool = max(1, min(4, int(math.log2(image_size / 6))))
        widths = [width * 2 ** i for i in range(n_pool + 1)]
        layers: list[nn.Module] = [_conv_bn_relu(in_channels, widths[0])]
        for i in range(n_pool):
            layers += [nn.MaxPool2d(2), _conv_bn_relu(widths[i], widths[i + 1])]
        layers.append(_conv_bn_relu(widths[-1], widths[-1]))
        self.body = nn.Sequential(*layers)
        self.num_features = widths[-1]
        self.head = nn.Linear(self.num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(N, num_features)``."""
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resnet18_small(in_channels: int, num_classes: int) -> nn.Module:
    """torchvision ResNet-18 (``weights=None``) with a 28 px stem: 3x3 conv, stride 1, no max-pool."""
    from torchvision.models import resnet18

    for name, v, lo in (("in_channels", in_channels, 1), ("num_classes", num_classes, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}: expected an int >= {lo}, found {v!r}")
    net = resnet18(weights=None, num_classes=int(num_classes))
    net.conv1 = nn.Conv2d(int(in_channels), 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.num_features = net.fc.in_features
    return net


ARCHS = ("small_cnn", "resnet18_small")


def build_classifier(arch: str, in_channels: int, num_classes: int, image_size: int, width: int = 32) -> nn.Module:
    """A fresh classifier by name: ``"small_cnn"`` or ``"resnet18_small"`` (``width`` is for small_cnn)."""
    if arch == "small_cnn":
        return SmallCNN(in_channels, num_classes, image_size, width=width)
    if arch == "resnet18_small":
        return resnet18_small(in_channels, num_classes)
    raise ValueError(f"arch: expected one of {list(ARCHS)}, found {arch!r}")


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


def classical_augment(kind: str = "flips_shifts", *, hflip: bool = True, vflip: bool = False,
                      max_shift: float = 0.1, num_ops: int = 2, magnitude: int = 9) -> Callable:
    """A batch transform (float NCHW or CHW in [-1, 1] -> same) for the classical-augmentation baselines.

    * ``"flips_shifts"``: random horizontal (and optionally vertical) flips, then a random shift of up to
      ``max_shift`` of the side (reflect-padded random crop, so no artificial borders appear).
    * ``"randaugment"``: torchvision ``RandAugment(num_ops, magnitude)`` on uint8 (the images are
      quantised to 0..255 and back) after the optional flips.

    Random parameters are drawn per image from torch's global RNG (seeded by :func:`train_classifier`).
    """
    from torchvision.transforms import v2

    if kind not in ("flips_shifts", "randaugment"):
        raise ValueError(f"kind: expected 'flips_shifts' or 'randaugment', found {kind!r}")
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
    else:
        ra = v2.Compose(flips + [v2.RandAugment(num_ops=num_ops, magnitude=magnitude)])

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


# --- training -------------------------------------------------------------------------------------------
def _better(value: float, best: float | None, select_on: str) -> bool:
    if math.isnan(value):
        return best is None
    if best is None or math.isnan(best):
        return True
    return value < best if select_on == "loss" else value > best


def train_classifier(train_ds: Dataset, val_ds: Dataset | None, *, arch: str = "small_cnn", epochs: int = 30,
                     batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 1e-4,
                     transform: Callable | None = None, seed: int = 0, device=None, select_on: str = "auc",
                     width: int = 32, num_classes: int | None = None,
                     progress: bool = False) -> tuple[nn.Module, dict]:
    """Train a classifier and keep the weights of the epoch with the best validation ``select_on``.

    ``train_ds`` yields ``(image, label)`` or ``(image, label, is_synthetic)`` with float CHW images in
    [-1, 1]. ``transform`` is applied to each training batch (float NCHW in [-1, 1] -> same), e.g.
    :func:`classical_augment`. AdamW with a cosine learning-rate schedule. Only ``val_ds`` is used for
    selection (higher auc/accuracy/balanced_accuracy, lower loss; ties keep the earlier epoch); with
    ``val_ds=None`` the last epoch is kept. Deterministic under ``seed`` on CPU.

    Returns ``(model, info)``; ``info`` holds ``best_epoch`` (1-based), ``best_val`` (the selection metric),
    ``history`` (per epoch: train_loss and validation metrics), ``n_train``, ``n_synthetic``, ``seconds``.
    """
    if select_on not in SELECT_ON:
        raise ValueError(f"select_on: expected one of {list(SELECT_ON)}, found {select_on!r}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected a positive int, found {v!r}")
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
    model = build_classifier(arch, img0.shape[0], k, int(img0.shape[-1]), width=width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loader = _loader(train_ds, batch_size, True, seed)
    history, best, best_state, best_epoch, n_train, n_syn = [], None, None, epochs, 0, 0
    epoch_iter = range(1, epochs + 1)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc=f"train {arch}", leave=False)
    for epoch in epoch_iter:
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            x, y, syn = _split_batch(batch, "train_ds")
            if epoch == 1:
                n_train += len(y)
                n_syn += int(torch.as_tensor(syn).sum()) if syn is not None else 0
            if transform is not None:
                x = transform(x)
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            count += len(y)
        sched.step()
        row = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if val_ds is not None:
            m = evaluate(model, val_ds, device)
            row.update({f"val_{key}": m[key] for key in ("auc", "accuracy", "balanced_accuracy", "loss")})
            if _better(m[select_on], best, select_on):
                best, best_epoch = m[select_on], epoch
                best_state = copy.deepcopy({n: t.detach().cpu() for n, t in model.state_dict().items()})
        history.append(row)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    info = {"arch": arch, "epochs": epochs, "select_on": select_on, "best_epoch": best_epoch,
            "best_val": best, "history": history, "n_train": n_train, "n_synthetic": n_syn,
            "num_classes": k, "seed": seed, "device": str(device),
            "seconds": round(time.perf_counter() - t0, 3)}
    return model, info
