"""Real and synthetic samples in one dataset: :class:`MixedDataset`.

Items are ``(image, label)`` (or ``(image, label, is_synthetic)``): float32 CHW in [-1, 1] (or, with
``value_range=(0, 1)``, in [0, 1]) and an int64 scalar tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..checks import check_int, check_number
from ..data import ImageDataset
from ..utils import check_value_range, global_rng_kept, parse_value_range
from .datasets import SyntheticDataset
from .handle import ModelHandle, as_item_image, as_label, reseed_transform
from .plan import pick_synthetic, synthetic_counts

__all__ = ["MixedDataset"]


class MixedDataset(Dataset):
    """Real data plus synthetic samples, as one dataset.

    Indices ``0 .. len(real)-1`` are the real items, the rest synthetic. Give exactly one of:

    * ``ratio`` r in [0, 1): the synthetic share; ``round(len(real) * r / (1 - r))`` synthetic samples
      are added (length ``~ len(real) / (1 - r)``), split like the real class frequencies
      (``class_mix="real"``) or equally over the classes (``"balanced"``).
    * ``balance_classes=True``: each class is topped up with synthetic samples to the largest real class;
    * ``per_class``: explicit numbers of synthetic samples, class name or index -> count (e.g. one class topped
      up to a chosen count).

    How many of each class, and which samples of a pool, is decided by :mod:`synthaug.augment.plan` (the
    same rule the downstream harness uses).

    ``synthetic`` is a :class:`SyntheticDataset` (samples are drawn from it without replacement,
    deterministically under ``seed``) or a generator / model path (an on-the-fly :class:`SyntheticDataset`
    of exactly the needed counts is built with ``seed``). ``real`` is any dataset of ``(image, label)``
    or of dicts (MONAI) read through ``image_key`` / ``label_key``; PIL and uint8 images are scaled
    automatically, float images must be in the library's range, [-1, 1] (see
    :func:`synthaug.utils.check_value_range`). Real float data in [0, 1] (e.g. ``ToTensor`` output) is refused
    with the fixes: ``real_transform=to_model_range`` (real items converted to [-1, 1]) or ``value_range=(0, 1)``
    (every item in [0, 1]: the synthetic ones converted, PIL / uint8 scaled to [0, 1]). ``value_range=(-1, 1)``
    states that the real data is [-1, 1] (only the bounds are checked, on the first items; use it for data
    whose first items hold no value below 0). ``transform`` is applied to every item's image (real and synthetic
    alike), in the items' range. ``check`` compares the real data's image size, channels and number of classes
    with the generator's. ``keep`` (with a generator): a sample filter such as
    :class:`~synthaug.augment.SampleFilter`; the synthetic samples are then generated in memory and rejected ones
    replaced (see ``SyntheticDataset(keep=...)``; the counts per class are in
    ``self.synthetic.filter_report``). With ``return_source=True`` items carry ``is_synthetic``, for loss
    weighting (:func:`~synthaug.augment.weighted_cross_entropy`). ``allow_short``: when a :class:`SyntheticDataset`
    pool (e.g. a filtered one) holds fewer samples of a class than the share asks for, take all it has instead of
    raising; the missing numbers are in :attr:`shortfall` and a warning says so.
    """

    def __init__(self, real, synthetic, ratio: float | None = None, balance_classes: bool = False, seed: int = 0,
                 check: bool = True, return_source: bool = False, transform: Callable | None = None,
                 real_transform: Callable | None = None, image_key: str = "image", label_key: str = "label",
                 class_mix: str = "real", keep: Callable | None = None, allow_short: bool = False,
                 per_class: Mapping | None = None, value_range: tuple[float, float] | None = None):
        given = [n for n, v in (("ratio", ratio), ("balance_classes", balance_classes or None),
                                ("per_class", per_class)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"ratio / balance_classes / per_class: expected exactly one of them, found "
                             f"{' and '.join(given) if given else 'neither'} (ratio={ratio!r}, "
                             f"balance_classes={balance_classes!r}, per_class={per_class!r})")
        if per_class is not None and not isinstance(per_class, Mapping):
            raise TypeError(f"per_class: expected a dict class name or index -> count, "
                            f"found {type(per_class).__name__}")
        if ratio is not None:
            check_number("ratio", ratio, 0.0, 1.0, high_open=True)
        for name, fn in (("transform", transform), ("real_transform", real_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: expected a callable or None, found {type(fn).__name__}")
        if len(real) == 0:
            raise ValueError("real: expected a non-empty dataset, found 0 items")
        self.real, self.ratio, self.balance_classes = real, ratio, bool(balance_classes)
        self.class_mix = class_mix
        self.seed = check_int("seed", seed, 0)
        self.return_source, self.transform, self.real_transform = bool(return_source), transform, real_transform
        self.image_key, self.label_key = image_key, label_key
        self.value_range = parse_value_range(value_range) if value_range is not None else None
        self._unit = self.value_range == (0.0, 1.0)

        first, _ = self._fetch_real([0])[0]
        real_labels = self._real_labels()
        target = synthetic if isinstance(synthetic, SyntheticDataset) else ModelHandle(synthetic, "generator",
                                                                                       name="synthetic")
        syn_names = target.class_names if isinstance(target, SyntheticDataset) else target.config["class_names"]
        names = getattr(real, "class_names", None) or getattr(real, "classes", None)
        n_classes = len(names) if names else int(real_labels.max()) + 1
        if check:
            target.check_compatible(image_size=tuple(first.shape[-2:]), channels=int(first.shape[0]),
                                    num_classes=n_classes, what="real data")
            real_names = [str(c) for c in names] if names else None
            if real_names and real_names != [str(i) for i in range(n_classes)] and real_names != list(syn_names):
                raise ValueError(f"generator does not match the real data: expected class_names={real_names} "
                                 f"(from the real data), found class_names={list(syn_names)} in the generator; "
                                 f"pass check=False if the classes correspond by index")
        self.class_names = [str(c) for c in (names or (syn_names if len(syn_names) >= n_classes
                                                       else range(n_classes)))]
        real_counts = torch.bincount(real_labels, minlength=len(self.class_names))
        if len(real_counts) > len(self.class_names) or int(real_labels.min()) < 0:
            raise ValueError(f"real: expected labels in [0, {len(self.class_names) - 1}], found range "
                             f"[{int(real_labels.min())}, {int(real_labels.max())}]")
        explicit = None
        if per_class is not None:
            explicit = {}
            for c, k in per_class.items():
                if isinstance(c, str):
                    if c not in self.class_names:
                        raise ValueError(f"per_class: expected class names from {self.class_names}, found {c!r}")
                    c = self.class_names.index(c)
                explicit[c] = k
        counts = synthetic_counts(real_labels.numpy(), len(self.class_names), ratio=ratio,
                                  balance=self.balance_classes, class_mix=class_mix, per_class=explicit)
        self.per_class = explicit
        if isinstance(synthetic, SyntheticDataset):
            if keep is not None:
                raise ValueError("keep: expected a generator to filter its samples, found a SyntheticDataset; "
                                 "build it with SyntheticDataset(..., keep=...) instead")
            self.synthetic = synthetic
            index = pick_synthetic(synthetic.labels.numpy(), counts, self.seed, synthetic.class_names, allow_short)
        else:
            mode = "on_the_fly" if keep is None else "memory"
            self.synthetic = SyntheticDataset(target, seed=self.seed, mode=mode, keep=keep,
                                              per_class=dict(enumerate(counts.tolist())))
            index = np.arange(len(self.synthetic))
        self.synthetic_index = torch.as_tensor(index, dtype=torch.int64)
        got = np.bincount(self.synthetic.labels[self.synthetic_index].numpy(), minlength=len(counts))
        self.shortfall = {name: int(n) for name, n in zip(self.class_names, counts - got[:len(counts)]) if n > 0}
        if self.shortfall:
            import warnings

            warnings.warn(f"MixedDataset: the synthetic pool was short of {self.shortfall} samples (allow_short=True); "
                          f"the mixed set holds {len(self.synthetic_index)} synthetic samples", stacklevel=2)
        self._check_real_range()
        self.n_real = len(real)
        self.source = torch.cat([torch.zeros(self.n_real, dtype=torch.bool),
                                 torch.ones(len(self.synthetic_index), dtype=torch.bool)])
        self._real_counts = real_counts

    # --- real items ---------------------------------------------------------------------------------
    def _check_real_range(self, n: int = 16) -> None:
        """The value-range rule (:func:`~synthaug.utils.check_value_range`) on the first ``n`` real images given as
        floats (PIL / uint8 are scaled here; an ``ImageDataset`` is [-1, 1] by construction). Reading them leaves
        the global random streams as they were."""
        if isinstance(self.real, ImageDataset) and self.real_transform is None and self.value_range is None:
            return
        with global_rng_kept():
            images = [img for img, _ in self._fetch_real(range(min(n, len(self.real))), convert=False)]
        floats = [as_item_image(img) for img in images
                  if not isinstance(img, Image.Image) and getattr(img, "dtype", None) not in (torch.uint8, np.uint8)]
        if floats:
            check_value_range(
                torch.cat([t.flatten() for t in floats]), f"real (first {len(images)} items)", self.value_range,
                fix="pass real_transform=synthaug.augment.to_model_range (real items to [-1, 1]), or "
                    "value_range=(0, 1) to take every item in [0, 1] (synthetic ones converted), or "
                    "value_range=(-1, 1) if the real data is [-1, 1] after all")

    def _real_labels(self) -> torch.Tensor:
        for attr in ("labels", "targets"):
            y = getattr(self.real, attr, None)
            if y is not None and not callable(y):
                t = torch.as_tensor(np.asarray(y)).reshape(-1).to(torch.int64)
                if len(t) == len(self.real):
                    return t
        return torch.stack([y for _, y in self._fetch_real(range(len(self.real)), labels_only=True)])

    def _fetch_real(self, indices, labels_only: bool = False,
                    convert: bool = True) -> list[tuple[torch.Tensor, torch.Tensor]]:
        indices = list(indices)
        getitems = getattr(self.real, "__getitems__", None)
        items = getitems(indices) if getitems is not None else [self.real[i] for i in indices]
        out = []
        for item in items:
            if isinstance(item, (tuple, list)):
                img, y = item[0], item[1]
            elif isinstance(item, Mapping):
                try:
                    img, y = item[self.image_key], item[self.label_key]
                except KeyError as e:
                    raise KeyError(f"image_key / label_key: expected keys {self.image_key!r} and "
                                   f"{self.label_key!r} in the real items, found {sorted(map(str, item))}") from e
            else:
                raise TypeError(f"real: expected items (image, label) or dicts, found {type(item).__name__}")
            if not (type(y) is torch.Tensor and y.dtype == torch.int64 and y.ndim == 0):
                y = as_label(y, "real label")
            if labels_only:
                out.append((None, y))
                continue
            if self.real_transform is not None:
                img = self.real_transform(img)
            if not convert:
                out.append((img, y))
                continue
            if not (type(img) is torch.Tensor and img.dtype == torch.float32 and img.ndim == 3):
                img = as_item_image(img, unit=self._unit)
            if not torch.isfinite(img).all():
                raise ValueError(f"real image: expected finite pixel values, found "
                                 f"{int((~torch.isfinite(img)).sum())} NaN/Inf value(s) in item {indices[len(out)]}")
            out.append((img, y))
        return out

    # --- torch Dataset protocol ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.source)

    def is_synthetic(self, i: int) -> bool:
        """True if item ``i`` comes from the generator."""
        return bool(self.source[int(i)])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple]:
        """A batch of items: real ones fetched together, synthetic ones in one generator pass."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64).reshape(-1))
        n = len(self)
        if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise IndexError(f"index: expected ints in [-{n}, {n}), found range [{int(idx.min())}, {int(idx.max())}]")
        idx = torch.where(idx < 0, idx + n, idx).tolist()
        flags = self.source[idx].tolist()
        real_pos = [p for p, f in enumerate(flags) if not f]
        syn_pos = [p for p, f in enumerate(flags) if f]
        items: list = [None] * len(idx)
        if real_pos:
            for p, item in zip(real_pos, self._fetch_real([idx[p] for p in real_pos])):
                items[p] = item
        if syn_pos:
            syn_idx = self.synthetic_index[[idx[p] - self.n_real for p in syn_pos]]
            for p, (img, y) in zip(syn_pos, self.synthetic.__getitems__(syn_idx)):
                items[p] = ((img + 1.0) * 0.5 if self._unit else img), y
        if self.transform is not None:
            items = [(self.transform(img), y) for img, y in items]
        if self.return_source:
            return [(img, y, torch.tensor(f)) for (img, y), f in zip(items, flags)]
        return items

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def reseed(self, seed: int) -> None:
        """Reseed every transform's own RNG (call once per worker: ``worker_init_fn=seed_worker``)."""
        reseed_transform(self.transform, seed)
        reseed_transform(self.real_transform, seed + 1)
        if hasattr(self.real, "reseed"):
            self.real.reseed(seed + 2)
        self.synthetic.reseed(seed + 3)

    def counts(self) -> dict[str, dict[str, int]]:
        """Items per class: ``{"real": {...}, "synthetic": {...}, "total": {...}}``."""
        syn = torch.bincount(self.synthetic.labels[self.synthetic_index], minlength=len(self.class_names))
        real = self._real_counts
        as_dict = lambda t: dict(zip(self.class_names, t.tolist()))  # noqa: E731
        return {"real": as_dict(real), "synthetic": as_dict(syn), "total": as_dict(real + syn)}

    def __repr__(self) -> str:
        how = (f"ratio={self.ratio}" if self.ratio is not None else
               "balance_classes=True" if self.balance_classes else f"per_class={self.per_class}")
        return (f"MixedDataset(real={self.n_real}, synthetic={len(self.synthetic_index)}, {how}, "
                f"seed={self.seed})")
