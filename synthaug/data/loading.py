"""Data named by a short spec, as the command line takes it: ``breastmnist`` (the shipped copy), an ``.npz`` file,
or an image folder. Messages name the command-line option each spec comes from (``--data``, ``--unlabelled``,
``--a`` ...), so ``synthaug`` errors point at the argument to fix; from Python the same rules apply.

* :func:`load_training_data` -- a labelled set (``--data``), optionally subsampled
* :func:`load_labelled_and_rest` -- that subset plus the images of the same split it left out
* :func:`load_unlabelled` -- an unlabelled pool (``--unlabelled``) read like the labelled set
* :func:`load_domain` -- one translation domain (``--a`` / ``--b``), labelled or not
"""

from __future__ import annotations

from pathlib import Path

import torch

from .dataset import ImageDataset, stratified_indices
from .folders import IMAGE_EXTENSIONS, load_image_dir, load_image_folder
from .npz import load_breastmnist, load_npz

__all__ = ["load_training_data", "load_labelled_and_rest", "load_unlabelled", "load_domain"]


def _load_npz(path, split: str, size: int | None, **kw) -> ImageDataset:
    """An ``.npz`` file's ``split`` (:func:`~synthaug.data.load_npz`), resized to ``size`` when given."""
    ds = load_npz(path, split=split, **kw)
    return ds if size is None else ds.resized(size)


def load_training_data(data: str, split: str = "train", size: int | None = None, channels: int | None = None,
                       fraction: float | None = None, n_per_class: int | None = None,
                       seed: int = 0) -> ImageDataset:
    """Resolve ``--data``: ``breastmnist`` (shipped), a ``.npz`` file, or a labelled image folder."""
    kw = dict(fraction=fraction, n_per_class=n_per_class, seed=seed)
    if data == "breastmnist":
        return load_breastmnist(split=split, **kw)
    path = Path(data)
    if path.suffix == ".npz":
        return _load_npz(path, split, size, **kw)
    if path.is_dir():
        if size is None:
            raise ValueError("--size: required for an image folder (images are resized and center-cropped to it)")
        ds = load_image_folder(path, size=size, channels=channels or 3)
        return ds.subsample(fraction=fraction, n_per_class=n_per_class, seed=seed) if (fraction or n_per_class) else ds
    raise FileNotFoundError(f"--data: expected 'breastmnist', an .npz file or an image folder, found {data!r}")


def load_labelled_and_rest(data: str, split: str = "train", size: int | None = None, channels: int | None = None,
                           fraction: float | None = None, n_per_class: int | None = None,
                           seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
    """``(labelled, rest)``: what :func:`load_training_data` returns, and the images of the same split it left
    out (``--unlabelled rest``), as an :class:`~synthaug.data.ImageDataset` whose labels are to be ignored."""
    if fraction is None and n_per_class is None:
        raise ValueError("--unlabelled: 'rest' means the --data images left out by --fraction or --n-per-class, "
                         "found neither (every image is labelled)")
    full = load_training_data(data, split=split, size=size, channels=channels)
    keep = stratified_indices(full.labels, fraction, n_per_class, seed, class_names=full.class_names)
    left = _indices_not_in(len(full), keep)
    if len(left) == 0:
        raise ValueError(f"--unlabelled: expected images left out of the labelled subset for 'rest', found none "
                         f"(all {len(full)} are labelled)")
    return full.subset(keep), full.subset(left)


def _indices_not_in(n: int, keep) -> torch.Tensor:
    """Indices in ``range(n)`` not in ``keep`` (int64, ascending)."""
    mask = torch.ones(n, dtype=torch.bool)
    mask[torch.as_tensor(keep, dtype=torch.int64)] = False
    return torch.nonzero(mask).flatten()


def load_unlabelled(spec: str, like: ImageDataset, split: str = "train", size: int | None = None,
                    channels: int | None = None) -> ImageDataset:
    """Resolve ``--unlabelled`` (other than ``rest``): ``breastmnist`` (shipped; its ``split``), an ``.npz``
    file (its ``split``; resized only with ``--size``), or an image folder (flat or class sub-folders, labels
    ignored; read at ``--size`` or else the labelled images' size, with ``--channels`` or else theirs). ``like``
    is the labelled dataset. Returns an :class:`~synthaug.data.ImageDataset` whose labels are to be ignored."""
    if spec == "breastmnist":  # like --data breastmnist: never resized
        return load_breastmnist(split=split)
    path = Path(spec)
    if not (path.suffix == ".npz" and path.is_file()) and not path.is_dir():
        raise FileNotFoundError(f"--unlabelled: expected 'rest', 'breastmnist', an .npz file or an image folder, "
                                f"found {spec!r}")
    if path.suffix == ".npz":
        return load_domain(spec, size, like.channels, split=split)
    return load_domain(spec, size or like.image_size[0], channels or like.channels)


def load_domain(spec: str, size: int | None, channels: int, split: str = "train", labelled: bool = False,
                arg: str = "--a") -> ImageDataset:
    """One translation domain: an ``.npz`` file (its ``split``) or a folder of images (flat or class folders).

    With ``labelled`` the labels are kept (a labelled ``.npz`` or class folders ``root/<class>/*.png``; a flat
    folder raises ``ValueError`` naming ``arg``); otherwise class folders are flattened into one class."""
    path = Path(spec)
    if path.suffix == ".npz":
        return _load_npz(path, split, size)
    if size is None:
        raise ValueError("--size: required for image folders (images are resized and center-cropped to it)")
    if path.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir()):
        if labelled:
            raise ValueError(f"{arg}: expected labelled images (class folders root/<class>/*.png or a labelled "
                             f".npz), found a flat folder of images in {str(path)!r}")
        return load_image_dir(path, size=size, channels=channels)
    ds = load_image_folder(path, size=size, channels=channels)
    if labelled:
        return ds
    # class folders, flattened into one domain
    return ImageDataset(ds.images, torch.zeros(len(ds), dtype=torch.int64), [path.name], name=path.name)
