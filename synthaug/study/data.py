"""What a study runs on, checked before anything is trained: labelled train / val / test splits, an optional
unlabelled pool of the same domain and an optional unlabelled target domain (the test split then comes from it).

:func:`load_study_data` reads each part from an image folder (class sub-folders; flat for the unlabelled ones), an
``.npz`` file, the shipped name ``breastmnist`` or an in-memory :class:`~synthaug.data.ImageDataset`. Splits that are
not given are made once, stratified by class and deterministic under ``split_seed``, with identical images always
kept in the same split; which images went where is recorded (file names for folders). Everything a study cannot
give a trustworthy answer on is refused up front, naming what was expected and what was found.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checks import check_int, check_number
from ..data import (IMAGE_EXTENSIONS, ImageDataset, class_folder_files, load_breastmnist, load_image_dir,
                    load_image_folder, load_npz)

__all__ = ["StudyData", "load_study_data", "SUPPORTED_SIZES", "MIN_TRAIN_PER_CLASS", "MIN_EVAL_PER_CLASS"]

SUPPORTED_SIZES = (16, 28, 32, 64, 128)  # the class-conditional generators' sizes
MIN_TRAIN_PER_CLASS = 8  # below this a class gives a generator (and a classifier) next to nothing to learn from
MIN_EVAL_PER_CLASS = 2  # val and test need every class, more than once, for AUC and per-class recall
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def image_hashes(images: torch.Tensor) -> list[str]:
    """One sha1 per image of its pixel values (identical images, identical hashes)."""
    x = images.detach().to(torch.float32).contiguous().numpy()
    return [hashlib.sha1(a.tobytes()).hexdigest() for a in x]


def fingerprint(ds: ImageDataset | None) -> str | None:
    """16 hex digits identifying a dataset's images, labels and class names (a study's cache key)."""
    if ds is None:
        return None
    h = hashlib.sha256()
    h.update(ds.images.detach().to(torch.float32).contiguous().numpy().tobytes())
    h.update(ds.labels.numpy().astype(np.int64).tobytes())
    h.update("\0".join(ds.class_names).encode())
    return h.hexdigest()[:16]


@dataclass
class StudyData:
    """The data of a study. ``train``, ``val`` and ``test`` are labelled
    :class:`~synthaug.data.ImageDataset` s with the same classes, channels and size; ``unlabelled`` (optional) is a
    pool of the training domain whose labels are ignored; ``target`` (optional) holds unlabelled images of the
    domain the test split comes from (a translator is trained from train to target). ``splits`` records how each
    split was made; ``name`` names the data in the report. Construction checks everything (:meth:`check`)."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    unlabelled: ImageDataset | None = None
    target: ImageDataset | None = None
    name: str = "data"
    splits: dict = field(default_factory=dict)

    def __post_init__(self):
        self.check()

    @property
    def class_names(self) -> list[str]:
        return list(self.train.class_names)

    def check(self) -> None:
        """Refuse data a study cannot answer on: fewer than two classes, splits with different classes, channels or
        sizes, a class with too few images, and any image shared by two of train / val / test (or by the test split
        and an unlabelled pool)."""
        for part in ("train", "val", "test"):
            ds = getattr(self, part)
            if not isinstance(ds, ImageDataset):
                raise TypeError(f"{part}: expected an ImageDataset, found {type(ds).__name__}")
        names = self.train.class_names
        if len(names) < 2:
            raise ValueError(f"data: expected at least 2 classes (a classifier needs something to tell apart), "
                             f"found {len(names)}: {names}")
        shape = tuple(self.train.images.shape[1:])
        for part in ("val", "test", "unlabelled", "target"):
            ds = getattr(self, part)
            if ds is None:
                continue
            if not isinstance(ds, ImageDataset):
                raise TypeError(f"{part}: expected an ImageDataset or None, found {type(ds).__name__}")
            if part in ("val", "test") and ds.class_names != names:
                raise ValueError(f"{part}: expected the training classes {names}, found {ds.class_names}")
            if tuple(ds.images.shape[1:]) != shape:
                raise ValueError(f"{part}: expected images of shape (C, H, W) = {shape} like train, found "
                                 f"{tuple(ds.images.shape[1:])}")
        for part, minimum in (("train", MIN_TRAIN_PER_CLASS), ("val", MIN_EVAL_PER_CLASS),
                              ("test", MIN_EVAL_PER_CLASS)):
            counts = getattr(self, part).class_counts()
            short = {c: n for c, n in counts.items() if n < minimum}
            if short:
                raise ValueError(f"{part}: expected at least {minimum} images of every class, found {short} "
                                 f"(all counts: {counts})")
        hashes = {p: set(image_hashes(getattr(self, p).images)) for p in ("train", "val", "test")}
        pairs = [("test", "train"), ("val", "train"), ("test", "val")]
        for extra in ("unlabelled", "target"):
            if getattr(self, extra) is not None:
                hashes[extra] = set(image_hashes(getattr(self, extra).images))
                pairs.append(("test", extra))
        for a, b in pairs:
            shared = hashes[a] & hashes[b]
            if shared:
                raise ValueError(f"{a}: expected no image that is also in {b}, found {len(shared)} identical "
                                 f"image(s) in both (a leak that flatters every arm); remove them from one of the two "
                                 f"or let the study make the splits from one folder (identical images then stay in "
                                 f"one split)")

    def describe(self) -> dict:
        """Counts, shapes and fingerprints of every part (recorded in the report)."""
        out = {"name": self.name, "classes": self.class_names, "channels": self.train.channels,
               "size": list(self.train.image_size), "splits": self.splits}
        for part in ("train", "val", "test", "unlabelled", "target"):
            ds = getattr(self, part)
            if ds is not None:
                out[part] = {"n": len(ds), "fingerprint": fingerprint(ds),
                             **({"per_class": ds.class_counts()} if part in ("train", "val", "test") else {})}
        return out


# --- reading ------------------------------------------------------------------------------------------------
def _header(path: Path):
    """``((width, height), channels)`` from an image file's header, or the reason it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size, 1 if img.mode in _GREY_MODES else 3
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        return f"{type(e).__name__}: {e}"


def _examples(items, k: int = 3) -> str:
    items = list(items)
    return ", ".join(str(i) for i in items[:k]) + (f" and {len(items) - k} more" if len(items) > k else "")


def _scan(arg: str, files: list[Path], size, channels) -> tuple[int, int]:
    """Check image files' headers before reading them: every file readable, and one size and one channel count
    unless ``size`` / ``channels`` convert them. Returns the ``(size, channels)`` to read at."""
    heads = {f: _header(f) for f in files}
    bad = {f: h for f, h in heads.items() if isinstance(h, str)}
    if bad:
        raise ValueError(f"{arg}: expected readable image files, found {len(bad)} unreadable: "
                         + "; ".join(f"{str(f)!r} ({why})" for f, why in list(bad.items())[:5]))
    sizes = Counter(h[0] for h in heads.values())
    chans = Counter(h[1] for h in heads.values())
    if channels is None:
        if len(chans) > 1:
            grey = [f.name for f, h in heads.items() if h[1] == 1]
            colour = [f.name for f, h in heads.items() if h[1] == 3]
            raise ValueError(f"{arg}: expected images of one kind, found {len(grey)} greyscale (e.g. "
                             f"{_examples(grey)}) and {len(colour)} colour (e.g. {_examples(colour)}); pass "
                             f"channels=1 or 3 (--channels) to convert them all")
        channels = next(iter(chans))
    if size is None:
        if len(sizes) > 1:
            listing = "; ".join(f"{w}x{h}: {n} file(s), e.g. "
                                f"{next(f.name for f, hd in heads.items() if hd[0] == (w, h))}"
                                for (w, h), n in sizes.most_common(4))
            raise ValueError(f"{arg}: expected images of one size, found {len(sizes)} sizes ({listing}); pass "
                             f"size= (--size, one of {SUPPORTED_SIZES}) to resize and centre-crop them all")
        (w, h), = sizes
        if w != h or w not in SUPPORTED_SIZES:
            raise ValueError(f"{arg}: expected square images of a size the generators support {SUPPORTED_SIZES}, "
                             f"found {w}x{h}; pass size= (--size) to resize and centre-crop them")
        size = w
    return int(size), int(channels)


def _as_shape(ds: ImageDataset, arg: str, size: int | None, channels: int | None) -> ImageDataset:
    if channels is not None and ds.channels != channels:
        if ds.channels == 1 and channels == 3:
            ds = ImageDataset(ds.images.repeat(1, 3, 1, 1), ds.labels, ds.class_names, name=ds.name)
        else:
            raise ValueError(f"{arg}: expected {channels}-channel images, found {ds.channels} channels (synthaug "
                             "does not turn colour images grey)")
    if size is not None:
        if size not in SUPPORTED_SIZES:
            raise ValueError(f"size: expected one of {SUPPORTED_SIZES}, found {size}")
        ds = ds.resized(size)
    elif ds.image_size[0] != ds.image_size[1] or ds.image_size[0] not in SUPPORTED_SIZES:
        raise ValueError(f"{arg}: expected square images of a size the generators support {SUPPORTED_SIZES}, found "
                         f"{ds.image_size[0]}x{ds.image_size[1]}; pass size= (--size) to resize them")
    return ds


def _labelled(spec, arg: str, size, channels) -> tuple[dict[str, ImageDataset], dict[str, list[str]] | None]:
    """A labelled source: ``({split: dataset}, {split: file names} or None)``; a folder or one-set npz gives
    ``{"all": ...}``."""
    if isinstance(spec, ImageDataset):
        return {"all": _as_shape(spec, arg, size, channels)}, None
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"{arg}: expected an image folder, an .npz file, 'breastmnist' or an ImageDataset, found "
                        f"{type(spec).__name__}")
    if str(spec) == "breastmnist":
        return {s: _as_shape(load_breastmnist(s), arg, size, channels) for s in ("train", "val", "test")}, None
    path = Path(spec).expanduser()
    if path.suffix == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
        splits = ("train", "val", "test") if "val_images" in keys else (
            ("train", "test") if {"train_images", "test_images"} <= keys else ("train",))
        parts = {s: load_npz(path, split=s) for s in splits}
        if splits == ("train",):
            parts = {"all": parts["train"]}
        return {s: _as_shape(d, arg, size, channels) for s, d in parts.items()}, None
    if path.is_dir():
        files, _, _ = class_folder_files(path)
        size, channels = _scan(arg, files, size, channels)
        ds = load_image_folder(path, size=size, channels=channels)
        return {"all": ds}, {"all": [str(f.relative_to(path)) for f in files]}
    raise FileNotFoundError(f"{arg}: expected an image folder (class sub-folders), an .npz file or 'breastmnist', "
                            f"found nothing usable at {str(spec)!r}")


def _unlabelled(spec, arg: str, like: ImageDataset) -> ImageDataset | None:
    """A pool whose labels are ignored, read at ``like``'s size and channels."""
    if spec is None:
        return None
    size, channels = like.image_size[0], like.channels
    if isinstance(spec, ImageDataset):
        ds = _as_shape(spec, arg, size, channels)
    elif isinstance(spec, (str, Path)) and Path(spec).expanduser().is_dir():
        folder = Path(spec).expanduser()
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                       and not p.name.startswith("."))
        if not files:
            raise ValueError(f"{arg}: expected image files {IMAGE_EXTENSIONS} in {str(folder)!r} (or its "
                             "sub-folders), found none")
        _scan(arg, files, size, channels)
        rel = [str(p.relative_to(folder)) for p in files]
        flat = all("/" not in r for r in rel)
        ds = (load_image_dir(folder, size=size, channels=channels) if flat
              else load_image_folder(folder, size=size, channels=channels))
    else:
        parts, _ = _labelled(spec, arg, size, channels)
        ds = parts.get("train", parts.get("all"))
    if len(ds) == 0:
        raise ValueError(f"{arg}: expected images, found none")
    return ImageDataset(ds.images, torch.zeros(len(ds), dtype=torch.long), ["unlabelled"], name=ds.name)


def _split(ds: ImageDataset, files, fractions: dict[str, float], seed: int) -> tuple[dict[str, ImageDataset], dict]:
    """Stratified split of ``ds`` into the parts of ``fractions`` (the rest is ``train``); identical images form
    one group and stay together. Each part gets at least :data:`MIN_EVAL_PER_CLASS` groups of every class."""
    rng = np.random.default_rng(seed)
    hashes = image_hashes(ds.images)
    groups: dict[str, list[int]] = {}
    for i, h in enumerate(hashes):
        groups.setdefault(h, []).append(i)
    labels = ds.labels.numpy()
    assigned = {p: [] for p in (*fractions, "train")}
    for c, cname in enumerate(ds.class_names):
        keys = [h for h, idx in groups.items() if labels[idx[0]] == c]
        need = MIN_TRAIN_PER_CLASS + MIN_EVAL_PER_CLASS * len(fractions)
        if len(keys) < need:
            raise ValueError(f"data: expected at least {need} distinct images of every class to make the "
                             f"{' and '.join(fractions)} split(s) ({MIN_EVAL_PER_CLASS} each) and keep "
                             f"{MIN_TRAIN_PER_CLASS} for training, found {len(keys)} in class {cname!r}")
        order = [keys[i] for i in rng.permutation(len(keys))]
        start = 0
        for part, frac in fractions.items():
            k = max(MIN_EVAL_PER_CLASS, int(round(frac * len(keys))))
            assigned[part] += [i for h in order[start:start + k] for i in groups[h]]
            start += k
        assigned["train"] += [i for h in order[start:] for i in groups[h]]
    parts = {p: ds.subset(sorted(idx)) for p, idx in assigned.items()}
    record = {p: ([files[i] for i in sorted(idx)] if files is not None else sorted(int(i) for i in idx))
              for p, idx in assigned.items()}
    return parts, record


def load_study_data(data, *, val=None, test=None, unlabelled=None, target=None, size: int | None = None,
                    channels: int | None = None, val_fraction: float = 0.15, test_fraction: float = 0.2,
                    split_seed: int = 0, name: str | None = None) -> StudyData:
    """Read and check a study's data (see the module docstring).

    ``data``: labelled images -- a folder ``data/<class>/<image>``, an ``.npz`` (MedMNIST ``train/val/test_*`` or
    digits keys), ``"breastmnist"`` or an :class:`ImageDataset`. Splits it carries are used; ``val`` / ``test``
    (same kinds) replace them; missing ones are made from ``data`` with ``val_fraction`` / ``test_fraction`` of each
    class under ``split_seed``. ``unlabelled``: images of the same domain whose labels are ignored (a flat folder,
    a class-folder tree, an npz or a dataset). ``target``: unlabelled images of the domain the test split comes
    from -- then ``test`` must be given (labelled target images). ``size`` / ``channels``: resize and convert every
    image (default: the images' own, which must then agree)."""
    if size is not None:
        check_int("size", size, 1)
        if size not in SUPPORTED_SIZES:
            raise ValueError(f"size: expected one of {SUPPORTED_SIZES}, found {size}")
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels: expected 1, 3 or None, found {channels!r}")
    check_number("val_fraction", val_fraction, 0.0, 0.5, low_open=True)
    check_number("test_fraction", test_fraction, 0.0, 0.5, low_open=True)
    check_int("split_seed", split_seed, 0)
    if target is not None and test is None:
        raise ValueError("test: expected labelled images of the target domain with target= (--test), found none "
                         "(the study scores every arm on the domain it is asked about)")
    parts, files = _labelled(data, "data", size, channels)
    first = next(iter(parts.values()))
    size, channels = first.image_size[0], first.channels
    splits: dict = {}
    given = {}
    for arg, spec in (("val", val), ("test", test)):
        if spec is not None:
            got, _ = _labelled(spec, arg, size, channels)
            given[arg] = got.get("all", got.get(arg, got.get("test", got.get("train"))))
            splits[arg] = f"given: {spec if isinstance(spec, (str, Path)) else getattr(spec, 'name', arg)}"
    for arg in ("val", "test"):
        if arg not in given and arg in parts:
            given[arg] = parts[arg]
            splits[arg] = f"the {arg} split of {data}"
    pool = parts.get("train", parts.get("all"))
    pool_files = (files or {}).get("all")
    to_make = {p: f for p, f in (("val", val_fraction), ("test", test_fraction)) if p not in given}
    if to_make:
        made, record = _split(pool, pool_files, to_make, split_seed)
        for p in to_make:
            given[p] = made[p]
            splits[p] = f"made: {100 * to_make[p]:g}% of each class of data, split_seed {split_seed}"
        train = made["train"]
        splits["made"] = record
    else:
        train = pool
    splits["train"] = "the rest of data" if to_make else f"data{' (its train split)' if 'train' in parts else ''}"
    for arg in ("val", "test"):
        if given[arg].class_names != train.class_names:
            raise ValueError(f"{arg}: expected the classes of data {train.class_names}, found "
                             f"{given[arg].class_names}")
    label = name or (Path(str(data)).name if isinstance(data, (str, Path)) else getattr(data, "name", "data"))
    return StudyData(train=train, val=given["val"], test=given["test"],
                     unlabelled=_unlabelled(unlabelled, "unlabelled", train),
                     target=_unlabelled(target, "target", train), name=label, splits=splits)
