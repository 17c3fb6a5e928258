"""Loaders for ``.npz`` data sets: any 2-D MedMNIST file, the shipped BreastMNIST copy, MNIST / USPS digits."""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..checks import check_path
from ..utils import to_tensor_images
from .dataset import ImageDataset, resize_square

__all__ = ["load_medmnist", "load_breastmnist", "breastmnist_path", "load_digits", "load_npz", "shared_data_dir"]

BREASTMNIST_SHA256 = "3a22d2a4625e7dd8903f0f59030e81a3d0c222bece2e5e10927456cb50efdec1"

#: Class names of MedMNIST files, keyed by the file name's first word (``breastmnist_64.npz`` -> breastmnist).
MEDMNIST_CLASS_NAMES = {
    "breastmnist": ["malignant", "normal/benign"],
    "pneumoniamnist": ["normal", "pneumonia"],
}
MEDMNIST_SPLITS = ("train", "val", "test")
DIGIT_CLASS_NAMES = [str(i) for i in range(10)]


# --- files -------------------------------------------------------------------------------------------
def _existing_file(path) -> Path:
    return check_path("path", path, "file", ".npz file")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an npz file (no pickles); ``ValueError`` naming the file if it is not a valid npz."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ValueError(f"path: expected a valid .npz file, could not read {str(path)!r}: {e}") from e


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_sha256(path, expected: str) -> Path:
    """Raise ``ValueError`` unless the file's sha256 equals ``expected``."""
    p = _existing_file(path)
    found = _sha256(p)
    if found != expected.lower():
        raise ValueError(f"path: expected sha256 {expected} for {str(p)!r}, found {found} "
                         "(the file is corrupt or was modified)")
    return p


def breastmnist_path() -> Path:
    """Path of the BreastMNIST npz shipped inside the package (MedMNIST v2, CC BY 4.0; see assets/NOTICE)."""
    p = Path(__file__).resolve().parent / "assets" / "breastmnist.npz"
    if not p.is_file():
        raise FileNotFoundError(f"breastmnist_path: expected the shipped file at {str(p)!r}, found nothing "
                                "(the package installation is incomplete)")
    return p


def shared_data_dir() -> Path | None:
    """The development data folder: ``$SYNTHAUG_DATA``, else ``../shared/data`` beside the repository or the
    current directory, else ``None``. A ``$SYNTHAUG_DATA`` that is not a folder is warned about and skipped.
    """
    env = os.environ.get("SYNTHAUG_DATA")
    if env:
        if Path(env).expanduser().is_dir():
            return Path(env).expanduser().resolve()
        warnings.warn(f"SYNTHAUG_DATA: expected a directory, found {env!r}; ignoring it", stacklevel=2)
    repo = Path(__file__).resolve().parents[2]
    for cand in (repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if cand.is_dir():
            return cand.resolve()
    return None


# --- validation ----------------------------------------------------------------------------------------
def _check_keys(arrays: dict, expected: list[str], path: Path) -> None:
    missing = [k for k in expected if k not in arrays]
    if missing:
        raise ValueError(f"path: expected keys {expected} in {str(path)!r}, found keys {sorted(arrays)} "
                         f"(missing {missing})")


def _check_split(split: str, allowed) -> None:
    if split not in allowed:
        raise ValueError(f"split: expected one of {list(allowed)}, found {split!r}")


def _labels_1d(labels: np.ndarray, key: str, n: int) -> np.ndarray:
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{key}: expected integer labels, found dtype {labels.dtype}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"{key}: expected labels of shape (N,) or (N, 1), found {labels.shape}")
    if len(labels) != n:
        raise ValueError(f"{key}: expected {n} labels (one per image), found {len(labels)}")
    return labels.astype(np.int64)


def _check_gray_or_rgb(images: np.ndarray, key: str, dtypes: tuple[str, ...]) -> None:
    if images.dtype.name not in dtypes:
        raise ValueError(f"{key}: expected dtype {' or '.join(dtypes)}, found {images.dtype}")
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        raise ValueError(f"{key}: expected shape (N, H, W) or (N, H, W, 3), found {images.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{key}: expected at least one image, found shape {images.shape}")


def _to_nchw(images: np.ndarray) -> torch.Tensor:
    """(N, H, W) or (N, H, W, 3) uint8 / float [0, 1] -> float32 NCHW in [-1, 1]."""
    return to_tensor_images(images[..., None] if images.ndim == 3 else images, channels_last=True)


def _finish(ds: ImageDataset, fraction, n_per_class, seed) -> ImageDataset:
    if fraction is None and n_per_class is None:
        return ds
    return ds.subsample(fraction=fraction, n_per_class=n_per_class, seed=seed)


# --- MedMNIST -------------------------------------------------------------------------------------------
def load_medmnist(path, split: str = "train", fraction: float | None = None, n_per_class: int | None = None,
                  seed: int = 0, class_names: list[str] | None = None) -> ImageDataset:
    """Load one split of a 2-D MedMNIST npz (keys ``{split}_images`` uint8 (N, H, W) or (N, H, W, 3), and
    ``{split}_labels`` (N, 1) or (N,)). ``split`` is train, val or test.

    Class names default to the known ones for breastmnist / pneumoniamnist (chosen by file name), else
    ``"0".."K-1"`` with K from the labels of all splits in the file. ``fraction`` / ``n_per_class`` take a
    stratified subset (see :func:`stratified_indices`).
    """
    p = _existing_file(path)
    _check_split(split, MEDMNIST_SPLITS)
    arrays = _read_npz(p)
    img_key, lab_key = f"{split}_images", f"{split}_labels"
    _check_keys(arrays, [img_key, lab_key], p)
    images = arrays[img_key]
    _check_gray_or_rgb(images, img_key, ("uint8",))
    labels = _labels_1d(arrays[lab_key], lab_key, len(images))
    if class_names is None:
        class_names = _medmnist_class_names(p, arrays)
    ds = ImageDataset(_to_nchw(images), labels, class_names, name=f"{p.stem}/{split}")
    return _finish(ds, fraction, n_per_class, seed)


def _medmnist_class_names(path: Path, arrays: dict) -> list[str]:
    known = MEDMNIST_CLASS_NAMES.get(path.stem.lower().split("_")[0])
    if known is not None:
        return list(known)
    top = max(int(arrays[k].max()) for k in (f"{s}_labels" for s in MEDMNIST_SPLITS)
              if k in arrays and arrays[k].size and arrays[k].dtype.kind in "iu")
    return [str(i) for i in range(top + 1)]


def load_breastmnist(split: str = "train", fraction: float | None = None, n_per_class: int | None = None,
                     seed: int = 0) -> ImageDataset:
    """Load the BreastMNIST copy shipped with the package (28x28 gray; train 546 / val 78 / test 156;
    0 = malignant, 1 = normal/benign). The file's sha256 is checked first (``ValueError`` on mismatch).
    """
    p = _check_sha256(breastmnist_path(), BREASTMNIST_SHA256)
    return load_medmnist(p, split=split, fraction=fraction, n_per_class=n_per_class, seed=seed)


# --- digits ---------------------------------------------------------------------------------------------
def load_digits(path, split: str = "train", size: int | None = None, fraction: float | None = None,
                n_per_class: int | None = None, seed: int = 0, channels: int | None = None) -> ImageDataset:
    """Load a digits npz, detected by its keys, as images with classes ``"0".."9"``: gray (N, H, W) digits
    (MNIST, USPS) as 1-channel images, RGB (N, H, W, 3) digits (MNIST-M) as 3-channel ones. ``channels`` (None:
    as stored) asks for 1 or 3: gray digits are repeated to RGB (MNIST next to MNIST-M); RGB digits are never
    turned gray (asked for 1, they raise).

    * ``images``/``labels`` (e.g. mnist_t10k.npz): one set; ``split`` "train", "test" and "all" all mean
      the whole file.
    * ``train_images``/``train_labels``/``test_images``/``test_labels`` (e.g. usps.npz): ``split`` "train"
      or "test", or "all" for both concatenated.

    Images are uint8 or float in [0, 1]. ``size`` resizes to ``size x size`` (bilinear, antialiased; values
    clamped to [-1, 1] to remove float rounding) so MNIST (28) and USPS (16) can meet at one size.
    """
    p = _existing_file(path)
    _check_split(split, ("train", "test", "all"))
    arrays = _read_npz(p)
    if "images" in arrays:
        _check_keys(arrays, ["images", "labels"], p)
        parts = [("images", "labels")]
    else:
        _check_keys(arrays, ["train_images", "train_labels", "test_images", "test_labels"], p)
        parts = [(f"{s}_images", f"{s}_labels") for s in (("train", "test") if split == "all" else (split,))]
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels: expected 1, 3 or None, found {channels!r}")
    images, labels = zip(*(_digit_part(arrays, ik, lk) for ik, lk in parts))
    x = torch.cat(images)
    if channels is not None and x.shape[1] != channels:
        if x.shape[1] == 3:
            raise ValueError(f"channels: expected 3 or None for the RGB digits of {p.name}, found 1 (synthaug does "
                             "not turn colour images gray)")
        x = x.repeat(1, 3, 1, 1)
    if size is not None:
        x = resize_square(x, size)
    ds = ImageDataset(x, torch.cat(labels), DIGIT_CLASS_NAMES, name=f"{p.stem}/{split}")
    return _finish(ds, fraction, n_per_class, seed)


def _digit_part(arrays: dict, img_key: str, lab_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = arrays[img_key]
    _check_gray_or_rgb(images, img_key, ("uint8", "float32", "float64"))
    labels = _labels_1d(arrays[lab_key], lab_key, len(images))
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{lab_key}: expected digit labels in [0, 9], found range [{labels.min()}, {labels.max()}]")
    return _to_nchw(images), torch.from_numpy(labels)


# --- dispatch -------------------------------------------------------------------------------------------
def load_npz(path, **kw) -> ImageDataset:
    """Load an npz by its keys: files with ``val_images`` (MedMNIST layout) go to :func:`load_medmnist`,
    files with ``images`` or ``train_images``/``test_images`` go to :func:`load_digits`. ``kw`` is passed on.
    """
    p = _existing_file(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ValueError(f"path: expected a valid .npz file, could not read {str(p)!r}: {e}") from e
    if "val_images" in keys:
        return load_medmnist(p, **kw)
    if "images" in keys or {"train_images", "test_images"} <= keys:
        return load_digits(p, **kw)
    raise ValueError(f"path: expected MedMNIST keys (train/val/test_images, ..._labels) or digits keys "
                     f"(images, labels or train/test_images, ..._labels) in {str(p)!r}, found {sorted(keys)}")
