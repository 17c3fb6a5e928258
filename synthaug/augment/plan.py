"""The one mixing rule: how many synthetic samples of each class to add to a real training set, and which.

Pure functions over label arrays, shared by :class:`~synthaug.augment.MixedDataset` and the downstream
harness (:mod:`synthaug.eval.downstream`), so a study measures exactly the path a user runs.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ..checks import check_int
from ..utils import allocate_counts

__all__ = ["CLASS_MIXES", "synthetic_counts", "pick_synthetic", "per_class_counts"]

CLASS_MIXES = ("real", "balanced")


def synthetic_counts(real_labels, num_classes: int, ratio: float | None = None, balance: bool = False,
                     class_mix: str = "real", per_class: dict[int, int] | None = None) -> np.ndarray:
    """Synthetic samples to add per class, ``(num_classes,)`` int64. Give exactly one of:

    * ``ratio`` r in [0, 1): the synthetic share of the mixed set; ``round(r / (1 - r) * n_real)`` samples,
      split like the real class frequencies (``class_mix="real"``) or equally over the classes present in the
      real data (``"balanced"``), largest remainder;
    * ``balance=True``: every class topped up to the largest real class (``class_mix`` unused);
    * ``per_class``: explicit counts, class index -> number (e.g. one class topped up to a chosen count).
    """
    given = [name for name, v in (("ratio", ratio), ("balance", balance or None), ("per_class", per_class))
             if v is not None]
    if len(given) != 1:
        raise ValueError(f"ratio / balance / per_class: expected exactly one of them, found "
                         f"{given or 'none'} (ratio={ratio!r}, balance={balance!r}, per_class={per_class!r})")
    if class_mix not in CLASS_MIXES:
        raise ValueError(f"class_mix: expected one of {list(CLASS_MIXES)}, found {class_mix!r}")
    y = np.asarray(real_labels, dtype=np.int64).reshape(-1)
    if y.size == 0:
        raise ValueError("real_labels: expected at least one real label, found none")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"real_labels: expected labels in [0, {num_classes - 1}], found range [{y.min()}, {y.max()}]")
    real_counts = np.bincount(y, minlength=num_classes)
    if per_class is not None:
        counts = np.zeros(num_classes, dtype=np.int64)
        for c, k in dict(per_class).items():
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < num_classes:
                raise ValueError(f"per_class: expected class indices in [0, {num_classes - 1}], found {c!r}")
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
                raise ValueError(f"per_class[{c}]: expected a count >= 0, found {k!r}")
            counts[int(c)] = int(k)
        return counts
    if balance:
        return (real_counts.max() - real_counts).astype(np.int64)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.floating)) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio: expected the synthetic share of the training set in [0, 1), found {ratio!r}")
    total = int(round(float(ratio) / (1.0 - float(ratio)) * y.size))
    weights = real_counts.astype(float) if class_mix == "real" else (real_counts > 0).astype(float)
    return allocate_counts(total, weights).astype(np.int64)


def pick_synthetic(pool_labels, counts, seed: int, class_names=None, allow_short: bool = False) -> np.ndarray:
    """Sorted indices into a synthetic pool: ``counts[c]`` samples of each class c, drawn without replacement,
    deterministically under ``seed``. Raises if the pool holds too few of a class, unless ``allow_short``
    (then all of that class are taken; the caller reports the shortfall)."""
    pool = np.asarray(pool_labels, dtype=np.int64).reshape(-1)
    rng = np.random.default_rng(int(seed))
    picked = []
    for c, k in enumerate(np.asarray(counts, dtype=np.int64)):
        if k == 0:
            continue
        members = np.flatnonzero(pool == c)
        if allow_short:
            k = min(int(k), len(members))
        if len(members) < k:
            name = class_names[c] if class_names is not None else c
            raise ValueError(f"synthetic: expected at least {k} samples of class {name!r} in the pool, found "
                             f"{len(members)}; build a larger pool (SyntheticDataset(per_class=...)) or pass the "
                             f"generator itself")
        picked.append(rng.choice(members, size=int(k), replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def per_class_counts(counts, class_names: Sequence[str], name: str = "counts") -> list[int]:
    """``counts`` as one int >= 0 per class of ``class_names``: from a sequence with one count per class index (list,
    tuple, 1-D numpy array or tensor), or a dict keyed by class index or by class name (missing classes: 0).
    Anything else raises ``TypeError``; a wrong length, an unknown class or a negative count ``ValueError``, each
    naming ``name``, what was expected and what was found."""
    names = [str(c) for c in class_names]
    k = len(names)
    expected = (f"one count per class ({k}: {names}) as a sequence, or a dict by class index (0..{k - 1}) or by "
                f"class name (as ImageDataset.class_counts() returns)")
    if isinstance(counts, Mapping):
        out = [0] * k
        for key, value in counts.items():
            if isinstance(key, str):
                if key not in names:
                    raise ValueError(f"{name}: expected class names from {names}, found {key!r}")
                idx = names.index(key)
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                if not 0 <= int(key) < k:
                    raise ValueError(f"{name}: expected class indices in [0, {k - 1}], found {int(key)}")
                idx = int(key)
            else:
                raise TypeError(f"{name}: expected dict keys that are class indices or class names, found "
                                f"{type(key).__name__} {key!r}")
            out[idx] = check_int(f"{name}[{key!r}]", value, 0)
        return out
    if isinstance(counts, torch.Tensor):
        counts = counts.tolist() if counts.ndim == 1 else counts
    elif isinstance(counts, np.ndarray):
        counts = counts.tolist() if counts.ndim == 1 else counts
    if isinstance(counts, (str, bytes)) or not isinstance(counts, (list, tuple)):
        shape = f" of shape {tuple(counts.shape)}" if hasattr(counts, "shape") else f" {counts!r}"
        raise TypeError(f"{name}: expected {expected}, found {type(counts).__name__}{shape}")
    if len(counts) != k:
        raise ValueError(f"{name}: expected {k} counts (one per class: {names}), found {len(counts)}")
    return [check_int(f"{name}[{i}]", v, 0) for i, v in enumerate(counts)]
