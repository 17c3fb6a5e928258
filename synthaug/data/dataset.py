"""In-memory image datasets: :class:`ImageDataset`, :func:`from_arrays` and stratified subsampling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..checks import check_int, check_number
from ..utils import check_images, check_value_range, parse_value_range, to_tensor_images

__all__ = ["ImageDataset", "from_arrays", "resize_square", "stratified_indices", "validate_images"]


def _as_label_tensor(labels, name: str = "labels") -> torch.Tensor:
    """Labels (tensor, array or sequence of ints) -> int64 tensor; (N, 1) is flattened to (N,)."""
    if isinstance(labels, torch.Tensor):
        t = labels.detach().cpu()
    elif isinstance(labels, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(labels))
    elif isinstance(labels, Sequence) and not isinstance(labels, (str, bytes)):
        arr = np.asarray(labels)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        t = torch.from_numpy(arr)
    else:
        raise TypeError(f"{name}: expected a 1-D tensor, array or sequence of ints, found {type(labels).__name__}")
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name}: expected integer class indices, found dtype {t.dtype}")
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        raise ValueError(f"{name}: expected shape (N,) or (N, 1), found shape {tuple(t.shape)}")
    return t.to(torch.int64).contiguous()


def _check_class_names(class_names) -> list[str]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names: expected a list of str, found {type(class_names).__name__}")
    names = list(class_names)
    if not all(isinstance(c, str) for c in names):
        found = sorted({type(c).__name__ for c in names if not isinstance(c, str)})
        raise TypeError(f"class_names: expected a list of str, found element type(s) {found}")
    if not names:
        raise ValueError("class_names: expected at least one class name, found an empty list")
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise ValueError(f"class_names: expected unique names, found duplicates {dup}")
    return names


def stratified_indices(labels, fraction: float | None = None, n_per_class: int | None = None, seed: int = 0,
                       *, class_names: Sequence[str] | None = None) -> np.ndarray:
    """Sorted indices of a stratified random subset of ``labels``; give exactly one of the two sizes.

    ``fraction`` in (0, 1] keeps ``round(fraction * n_c)`` images of each class c, at least 1 per non-empty
    class. ``n_per_class`` keeps exactly that many of each class (``ValueError`` naming the class if it has
    fewer). ``class_names`` (optional) names the classes in messages and makes every class index in
    ``range(len(class_names))`` count, so an empty class fails ``n_per_class``. Deterministic under ``seed``.
    """
    y = _as_label_tensor(labels).numpy()
    if (fraction is None) == (n_per_class is None):
        raise ValueError(f"fraction / n_per_class: expected exactly one of them, found fraction={fraction!r}, "
                         f"n_per_class={n_per_class!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed: expected an int, found {type(seed).__name__}")
    if fraction is not None:
        check_number("fraction", fraction, 0.0, 1.0, low_open=True)
    else:
        check_int("n_per_class", n_per_class, 1)
    num_classes = len(class_names) if class_names is not None else (int(y.max()) + 1 if y.size else 0)
    rng = np.random.default_rng(int(seed))
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(y == c)
        if fraction is not None:
            if members.size == 0:
                continue
            k = max(1, int(np.floor(float(fraction) * members.size + 0.5)))
        else:
            k = int(n_per_class)
            if members.size < k:
                label = f"{class_names[c]!r} (label {c})" if class_names is not None else f"label {c}"
                raise ValueError(f"n_per_class: expected at most {members.size} for class {label}, "
                                 f"found n_per_class={k}")
        chosen.append(rng.choice(members, size=k, replace=False))
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def validate_images(images, name: str = "images") -> torch.Tensor:
    """Check a float (N, C, H, W) tensor: non-empty, finite, values in [-1, 1]. Returns it as float32."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name}: expected a float torch.Tensor (N, C, H, W) in [-1, 1] "
                        f"(use from_arrays for numpy or uint8 data), found {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor in [-1, 1] (use from_arrays for uint8 data), "
                        f"found dtype {images.dtype}")
    check_images(images, name=name)
    if images.shape[0] == 0 or 0 in images.shape[1:]:
        raise ValueError(f"{name}: expected at least one non-empty image, found shape {tuple(images.shape)}")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.0 or hi > 1.0:
        raise ValueError(f"{name}: expected pixel values in [-1, 1], found range [{lo:.4g}, {hi:.4g}]")
    return images.to(torch.float32)


class ImageDataset(Dataset):
    """Images held in memory: float32 ``(N, C, H, W)`` in [-1, 1] with int64 class labels.

    ``class_names`` defaults to ``["0", "1", ...]`` up to the largest label. Items are
    ``(image (C, H, W), label ())``; ``__getitems__`` gathers a whole batch at once for ``DataLoader``.
    """

    def __init__(self, images: torch.Tensor, labels, class_names: Sequence[str] | None = None,
                 name: str = "dataset"):
        self.name = str(name)
        self.images = validate_images(images)
        self.labels = _as_label_tensor(labels)
        if len(self.labels) != len(self.images):
            raise ValueError(f"labels: expected one label per image ({len(self.images)}), "
                             f"found {len(self.labels)} labels")
        lo, hi = int(self.labels.min()), int(self.labels.max())
        if lo < 0:
            raise ValueError(f"labels: expected class indices >= 0, found minimum {lo}")
        if class_names is None:
            self.class_names = [str(i) for i in range(hi + 1)]
        else:
            self.class_names = _check_class_names(class_names)
            if hi >= len(self.class_names):
                raise ValueError(f"labels: expected class indices in [0, {len(self.class_names)}) for "
                                 f"{len(self.class_names)} class names, found maximum {hi}")

    # --- properties -------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    # --- torch Dataset protocol ---------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i) -> tuple[torch.Tensor, torch.Tensor]:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index: expected an int in [-{len(self)}, {len(self)}), found {i}")
        return self.images[i], self.labels[i]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fetch a batch of items with one gather (used by ``DataLoader``)."""
        idx = self._index_tensor(indices)
        return list(zip(self.images[idx], self.labels[idx]))

    def _index_tensor(self, indices) -> torch.Tensor:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64).reshape(-1))
        if idx.numel() and (int(idx.min()) < -len(self) or int(idx.max()) >= len(self)):
            raise IndexError(f"indices: expected ints in [-{len(self)}, {len(self)}), "
                             f"found range [{int(idx.min())}, {int(idx.max())}]")
        return idx

    # --- helpers ------------------------------------------------------------------------------------
    def class_counts(self) -> dict[str, int]:
        """Number of images per class name, every class listed (0 allowed)."""
        counts = torch.bincount(self.labels, minlength=self.num_classes).tolist()
        return dict(zip(self.class_names, counts))

    def subset(self, indices) -> ImageDataset:
        """A new dataset holding the images at ``indices`` (same class names and name)."""
        idx = self._index_tensor(indices)
        if idx.numel() == 0:
            raise ValueError("indices: expected at least one index, found none")
        return ImageDataset(self.images[idx], self.labels[idx], self.class_names, name=self.name)

    def subsample(self, fraction: float | None = None, n_per_class: int | None = None,
                  seed: int = 0) -> ImageDataset:
        """Stratified random subset: ``fraction`` of each class (at least 1) or ``n_per_class`` of each."""
        idx = stratified_indices(self.labels, fraction, n_per_class, seed, class_names=self.class_names)
        return self.subset(idx)

    def resized(self, size: int) -> ImageDataset:
        """This dataset with images resized to ``size`` x ``size`` (:func:`resize_square`), named
        ``"<name>@<size>px"``; ``self`` if they already are that size."""
        if self.image_size == (size, size):
            return self
        return ImageDataset(resize_square(self.images, size), self.labels, self.class_names,
                            name=f"{self.name}@{size}px")

    def summary(self) -> str:
        """Multi-line description: name, size, shape, value range and images per class."""
        c, h, w = self.images.shape[1:]
        lines = [f"ImageDataset {self.name!r}",
                 f"  images:   {len(self)} x ({c}, {h}, {w}) {str(self.images.dtype).replace('torch.', '')}, "
                 f"range [{float(self.images.min()):.3f}, {float(self.images.max()):.3f}]",
                 f"  channels: {c}",
                 f"  classes:  {self.num_classes}"]
        width = max(len(n) for n in self.class_names)
        for i, (n, k) in enumerate(self.class_counts().items()):
            lines.append(f"    {i:>3} {n:<{width}} {k:>7} ({100.0 * k / len(self):5.1f}%)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"ImageDataset(name={self.name!r}, n={len(self)}, shape={tuple(self.images.shape[1:])}, "
                f"classes={self.class_names})")


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Float NCHW images in [-1, 1] resized to ``size`` x ``size`` (bilinear, antialiased; clamped to [-1, 1] to
    remove rounding); returned as they are when already that size."""
    size = check_int("size", size, 1)
    if tuple(images.shape[-2:]) == (size, size):
        return images
    out = TF.resize(images, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return out.clamp_(-1.0, 1.0)


def from_arrays(images, labels=None, class_names: Sequence[str] | None = None, channels_last: bool | None = None,
                name: str = "arrays", value_range: tuple[float, float] = (0, 1)) -> ImageDataset:
    """Build an :class:`ImageDataset` from numpy or torch images.

    numpy is read channels last (HW, HWC, NHW or NHWC), torch channels first (CHW or NCHW);
    ``channels_last`` overrides. Pixels are uint8 (0..255), uint16 (0..65535) or float in ``value_range``:
    ``(0, 1)`` (default) or ``(-1, 1)`` (already library range, taken as is). ``labels=None`` puts every
    image in one class; labels of shape (N, 1) are flattened.
    """
    value_range = parse_value_range(value_range)
    is_float = isinstance(images, (np.ndarray, torch.Tensor)) and (
        images.dtype.kind == "f" if isinstance(images, np.ndarray) else images.is_floating_point())
    if is_float and value_range == (-1, 1):
        t = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
        t = _shape_float_nchw(t, channels_last, from_numpy=isinstance(images, np.ndarray))
    else:
        if is_float:
            _check_unit_range(images)
        t = to_tensor_images(images, channels_last=channels_last)
    if labels is None:
        labels = torch.zeros(len(t), dtype=torch.int64)
    return ImageDataset(t, labels, class_names, name=name)


def _check_unit_range(images) -> None:
    arr = torch.as_tensor(images) if isinstance(images, np.ndarray) else images
    check_value_range(arr[torch.isfinite(arr)], "images", (0, 1),
                      fix="pass value_range=(-1, 1) for data already in [-1, 1]")


def _shape_float_nchw(t: torch.Tensor, channels_last: bool | None, from_numpy: bool) -> torch.Tensor:
    """Float data already in [-1, 1]: reshape to NCHW with the same layout rules as ``to_tensor_images``."""
    channels_last = from_numpy if channels_last is None else channels_last
    if t.ndim == 2:
        t = t[None, :, :, None] if channels_last else t[None, None]
    elif t.ndim == 3:
        if channels_last:
            t = t[None] if t.shape[-1] in (1, 3, 4) else t[..., None]
        else:
            t = t[None]
    elif t.ndim != 4:
        raise ValueError(f"images: expected 2-D to 4-D image data, found shape {tuple(t.shape)}")
    if channels_last:
        t = t.permute(0, 3, 1, 2)
    return t.float().contiguous()
