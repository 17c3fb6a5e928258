"""Image files and folders: :func:`read_image`, labelled class folders, flat folders, unpaired and paired sets."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from ..checks import check_path
from .dataset import ImageDataset, validate_images

__all__ = ["read_image", "load_image_folder", "save_image_folder", "class_folder_files", "load_image_dir",
           "load_unpaired", "load_paired", "PairedDataset", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


# --- argument checks -------------------------------------------------------------------------------------
def _target_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif isinstance(size, Sequence) and len(size) == 2 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size):
        hw = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f"size: expected None, an int or an (h, w) pair of ints, found {size!r}")
    if min(hw) < 1:
        raise ValueError(f"size: expected positive sizes, found {size!r}")
    return hw


def _check_channels(channels, name: str = "channels") -> int:
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"{name}: expected 1 (gray) or 3 (RGB), found {channels!r}")
    return int(channels)


def _check_on_error(on_error) -> str:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error: expected 'raise' or 'skip', found {on_error!r}")
    return on_error


# --- one image ------------------------------------------------------------------------------------------
def read_image(path, size: int | tuple[int, int] | None = None, channels: int = 3) -> torch.Tensor:
    """Read an image file as a float32 ``(channels, H, W)`` tensor in [-1, 1].

    The format is sniffed from the content (a PNG named ``.jpg`` works); EXIF orientation is applied and
    multi-frame files give their first frame. Conversion rule:

    * 16-bit gray (``I;16*``) is scaled by 1/65535; 32-bit ``I`` likewise if its values lie in [0, 65535]
      (else ``ValueError``); float ``F`` is taken as is if in [0, 1] (else ``ValueError``). These stay at
      full precision and are repeated to 3 channels if ``channels=3``.
    * Palette ``P`` becomes RGBA if it has transparency, else RGB. Any image with transparency (alpha
      channel or a transparent colour) is composited onto a white background.
    * Then the image is converted to ``L`` (ITU-R 601-2 luma, ``L = R*299/1000 + G*587/1000 + B*114/1000``)
      for ``channels=1`` or to ``RGB`` for ``channels=3`` (other modes such as ``1``, ``CMYK``, ``YCbCr``
      by PIL's own conversion), and uint8 ``v`` maps to ``v / 127.5 - 1``.

    Size policy: with ``size`` (an int or ``(h, w)``) the shorter side is resized to the target (bilinear,
    antialiased; JPEGs are first decoded at a reduced scale with ``draft``) and the centre is cropped to
    ``size``; with ``size=None`` the image keeps its size. A missing file raises ``FileNotFoundError``; an
    unreadable or corrupt one ``ValueError`` naming the file.
    """
    channels = _check_channels(channels)
    hw = _target_size(size)
    p = Path(path).expanduser()
    if not p.is_file():
        what = "a folder" if p.is_dir() else "nothing"
        raise FileNotFoundError(f"path: expected an existing image file, found {what} at {str(p)!r}")
    try:
        with Image.open(p) as img:
            if hw is not None:
                _draft(img, hw)
            img.load()
            arr = _to_float_array(_resize_crop(_canonical(ImageOps.exif_transpose(img), channels), hw), p)
    except _READ_ERRORS as e:
        raise ValueError(f"path: could not read image file {str(p)!r}: {type(e).__name__}: {e}") from e
    if arr.ndim == 2:
        arr = np.repeat(arr[None], channels, axis=0)
    else:
        arr = arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    """(w, h) as displayed, i.e. after the EXIF orientation is applied."""
    w, h = img.size
    return (h, w) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)


def _draft(img: Image.Image, hw: tuple[int, int]) -> None:
    """Let JPEG decode at 1/2, 1/4 or 1/8 scale while staying at least as large as the resize needs."""
    if img.format != "JPEG":
        return
    w, h = _oriented_size(img)
    scale = max(hw[1] / w, hw[0] / h)
    need = (math.ceil(2 * w * scale), math.ceil(2 * h * scale))  # 2x margin: the final resize does the smoothing
    if img.size != (w, h):
        need = need[::-1]
    img.draft(None, need)


def _canonical(img: Image.Image, channels: int) -> Image.Image:
    """Apply the conversion rule of :func:`read_image`: return mode ``F`` (high bit depth), ``L`` or ``RGB``."""
    if img.mode in _SIXTEEN_BIT or img.mode in ("I", "F"):
        return _high_depth(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif "transparency" in img.info or img.mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)


def _high_depth(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit int / float gray -> mode ``F`` in [0, 1]."""
    arr = np.asarray(img)
    if img.mode == "F":
        lo, hi = float(arr.min()), float(arr.max())
        if not (np.isfinite(arr).all() and lo >= 0.0 and hi <= 1.0):
            raise ValueError(f"expected float (mode F) pixels in [0, 1], found range [{lo:.4g}, {hi:.4g}]")
        return Image.fromarray(arr.astype(np.float32))
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 65535:
        raise ValueError(f"expected 32-bit integer (mode I) pixels in the 16-bit range [0, 65535], "
                         f"found range [{lo}, {hi}]")
    return Image.fromarray((arr.astype(np.float64) / 65535.0).astype(np.float32))


def _resize_crop(img: Image.Image, hw: tuple[int, int] | None) -> Image.Image:
    """Resize so the image covers ``hw`` (shorter side to the target), then crop the centre to ``hw``."""
    if hw is None or img.size == (hw[1], hw[0]):
        return img
    w, h = img.size
    scale = max(hw[1] / w, hw[0] / h)
    cw, ch = min(w, hw[1] / scale), min(h, hw[0] / scale)  # min(): float rounding only
    left, top = (w - cw) / 2.0, (h - ch) / 2.0
    return img.resize((hw[1], hw[0]), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))


def _to_float_array(img: Image.Image, path: Path) -> np.ndarray:
    """PIL image in mode F ([0, 1]), L or RGB -> float32 array in [-1, 1], HW or HWC."""
    if img.mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)  # bilinear weights are convex: removes rounding only
        return arr * 2.0 - 1.0
    if img.mode not in ("L", "RGB"):
        raise ValueError(f"internal conversion of {str(path)!r} ended in mode {img.mode!r}")
    return np.asarray(img, dtype=np.float32) / 127.5 - 1.0


# --- many images ----------------------------------------------------------------------------------------
def _read_many(paths: list[Path], size, channels: int, on_error: str) -> tuple[list[torch.Tensor], list[Path]]:
    """Read ``paths`` with a small thread pool; with ``on_error="skip"`` unreadable files are warned about
    and left out. Returns the images and the paths they came from."""
    def read(p: Path):
        try:
            return read_image(p, size=size, channels=channels)
        except ValueError as e:
            return e

    workers = max(1, min(4, os.cpu_count() or 1, len(paths)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(read, paths))
    images, kept = [], []
    for p, r in zip(paths, results):
        if isinstance(r, Exception):
            if on_error == "raise":
                raise r
            warnings.warn(f"skipping unreadable image {str(p)!r}: {r}", stacklevel=3)
            continue
        images.append(r)
        kept.append(p)
    return images, kept


def _stack(images: list[torch.Tensor], paths: list[Path], where: Path) -> torch.Tensor:
    shapes = {tuple(t.shape) for t in images}
    if len(shapes) > 1:
        examples = {tuple(t.shape): p.name for t, p in zip(images, paths)}
        raise ValueError(f"size: expected one image size in {str(where)!r} (pass size= to resize), found "
                         f"{len(shapes)} shapes, e.g. {dict(list(examples.items())[:5])}")
    return torch.stack(images)


def _image_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Image files directly in ``folder`` (no recursion, hidden files ignored), sorted by name."""
    exts = _check_extensions(extensions)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts)


def _check_extensions(extensions) -> tuple[str, ...]:
    if isinstance(extensions, str) or not all(isinstance(e, str) for e in extensions):
        raise TypeError(f"extensions: expected a sequence of str like ('.png', '.jpg'), found {extensions!r}")
    return tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)


def _display_name(folder: Path) -> str:
    """``parent/name`` of a folder (``mwd/train``), a readable dataset name."""
    folder = folder.resolve()
    return f"{folder.parent.name}/{folder.name}" if folder.parent.name else folder.name


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_image_folder(root, size, channels: int = 3, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                      on_error: str = "raise", class_names: Sequence[str] | None = None) -> ImageDataset:
    """Load ``root/<class>/<image>`` into an :class:`ImageDataset` (images read with :func:`read_image`).

    Classes are the sub-folders sorted by name, or ``class_names`` (which picks and orders the sub-folders;
    labels follow its order). Only files with ``extensions`` directly inside each class folder are read.
    An empty class folder or a root without class folders raises ``ValueError``; with ``on_error="skip"``
    unreadable files are skipped with a warning naming each file, otherwise they raise.
    """
    root = check_path("root", root, "folder")
    channels, on_error = _check_channels(channels), _check_on_error(on_error)
    _target_size(size)
    files, labels, names = class_folder_files(root, class_names, extensions)
    images, kept = _read_many(files, size, channels, on_error)
    kept_set = set(kept)
    labels = [lab for f, lab in zip(files, labels) if f in kept_set]
    _check_no_empty_class(labels, [root / n for n in names])
    return ImageDataset(_stack(images, kept, root), labels, names, name=_display_name(root))


def class_folder_files(root, class_names: Sequence[str] | None = None,
                       extensions: Sequence[str] = IMAGE_EXTENSIONS) -> tuple[list[Path], list[int], list[str]]:
    """``(files, labels, class_names)`` of ``root/<class>/<image>``, in the order :func:`load_image_folder` reads
    them (classes as there; files sorted by name within each class). An empty class folder raises ``ValueError``."""
    root = check_path("root", root, "folder")
    folders = _class_folders(root, class_names)
    files, labels = [], []
    for label, folder in enumerate(folders):
        found = _image_files(folder, extensions)
        if not found:
            raise ValueError(f"root: expected image files {tuple(extensions)} in class folder {str(folder)!r}, "
                             "found none")
        files += found
        labels += [label] * len(found)
    return files, labels, [f.name for f in folders]


def save_image_folder(ds: ImageDataset, root, prefix: str = "") -> Path:
    """Write ``ds`` as PNG files ``root/<class>/<prefix><index>.png``, the layout :func:`load_image_folder` reads
    (``/`` in a class name becomes ``_``). 8-bit, so reading them back gives the images to within 1/255. Returns
    ``root``."""
    if not isinstance(ds, ImageDataset):
        raise TypeError(f"ds: expected an ImageDataset, found {type(ds).__name__}")
    root = Path(root).expanduser()
    pixels = ((ds.images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    folders = [root / name.replace("/", "_") for name in ds.class_names]
    for f in folders:
        f.mkdir(parents=True, exist_ok=True)
    for i, (arr, y) in enumerate(zip(pixels, ds.labels.tolist())):
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(folders[y] / f"{prefix}{i:05d}.png")
    return root


def _class_folders(root: Path, class_names) -> list[Path]:
    if class_names is None:
        folders = _subfolders(root)
        if not folders:
            raise ValueError(f"root: expected class sub-folders in {str(root)!r} (root/<class>/<image>), "
                             f"found none")
        return folders
    if isinstance(class_names, str):
        raise TypeError(f"class_names: expected a list of folder names, found a str {class_names!r}")
    missing = [c for c in class_names if not (root / c).is_dir()]
    if missing:
        raise ValueError(f"class_names: expected sub-folders of {str(root)!r}, found no folder for {missing} "
                         f"(present: {[p.name for p in _subfolders(root)]})")
    return [root / c for c in class_names]


def _check_no_empty_class(labels: list[int], folders: list[Path]) -> None:
    present = set(labels)
    empty = [str(f) for i, f in enumerate(folders) if i not in present]
    if empty:
        raise ValueError(f"root: expected at least one readable image per class, found none in {empty}")


def load_image_dir(path, size, channels: int = 3, files: Sequence[str] | None = None,
                   on_error: str = "raise") -> ImageDataset:
    """Load a flat folder of images as a one-class :class:`ImageDataset` named after the folder.

    ``files`` optionally lists the file names (relative to ``path``) to read, in that order; otherwise all
    image files in the folder, sorted. Missing listed files raise ``FileNotFoundError``; an empty folder
    or list raises ``ValueError``.
    """
    folder = check_path("path", path, "folder")
    channels, on_error = _check_channels(channels), _check_on_error(on_error)
    _target_size(size)
    paths = _image_files(folder, IMAGE_EXTENSIONS) if files is None else _listed_files(folder, files)
    if not paths:
        raise ValueError(f"path: expected image files {IMAGE_EXTENSIONS} in {str(folder)!r}, found none")
    return _flat_dataset(folder, paths, size, channels, on_error)


def _listed_files(folder: Path, files) -> list[Path]:
    if isinstance(files, (str, os.PathLike)):
        raise TypeError(f"files: expected a list of file names, found a single {type(files).__name__}")
    paths = [folder / f for f in files]
    missing = [str(f) for f, p in zip(files, paths) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"files: expected files inside {str(folder)!r}, found {len(missing)} missing: "
                                f"{missing[:10]}{' ...' if len(missing) > 10 else ''}")
    if not paths:
        raise ValueError("files: expected at least one file name, found an empty list")
    return paths


def _flat_dataset(folder: Path, paths: list[Path], size, channels: int, on_error: str) -> ImageDataset:
    images, kept = _read_many(paths, size, channels, on_error)
    if not images:
        raise ValueError(f"path: expected at least one readable image in {str(folder)!r}, found none")
    return ImageDataset(_stack(images, kept, folder), torch.zeros(len(images), dtype=torch.int64),
                        [folder.name], name=_display_name(folder))


# --- unpaired and paired domains ------------------------------------------------------------------------
def load_unpaired(a, b=None, size=None, channels: int = 3,
                  on_error: str = "raise") -> tuple[ImageDataset, ImageDataset]:
    """Load two image domains for unpaired translation: ``a/A`` and ``a/B`` when ``b`` is None, else
    folders ``a`` and ``b``. Each side is a flat folder, or a folder of class folders whose images are
    flattened into one class named after the side's folder. ``size`` follows :func:`read_image` (``None``
    keeps the files' size, which must then agree). Returns ``(domain_a, domain_b)``.
    """
    channels, on_error = _check_channels(channels), _check_on_error(on_error)
    if b is None:
        root = check_path("a", a, "folder")
        side_a, side_b = root / "A", root / "B"
        if not (side_a.is_dir() and side_b.is_dir()):
            raise ValueError(f"a: expected sub-folders A/ and B/ in {str(root)!r} (or pass b=), found "
                             f"{[p.name for p in _subfolders(root)]}")
    else:
        side_a, side_b = check_path("a", a, "folder"), check_path("b", b, "folder")
    return (_domain(side_a, size, channels, on_error, "a"), _domain(side_b, size, channels, on_error, "b"))


def _domain(folder: Path, size, channels: int, on_error: str, arg: str) -> ImageDataset:
    paths = _image_files(folder, IMAGE_EXTENSIONS)
    if not paths:
        paths = [f for sub in _subfolders(folder) for f in _image_files(sub, IMAGE_EXTENSIONS)]
    if not paths:
        raise ValueError(f"{arg}: expected image files in {str(folder)!r} or its class folders, found none")
    return _flat_dataset(folder, paths, size, channels, on_error)


class PairedDataset(Dataset):
    """Aligned image pairs held in memory: ``a`` (N, C, H, W) and ``b`` (N, C', H, W), float32 in [-1, 1],
    with the shared file stem of each pair in ``names``. Items are ``(a_i, b_i)``.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, names: Sequence[str] | None = None, name: str = "paired"):
        self.a, self.b = validate_images(a, "a"), validate_images(b, "b")
        if len(self.a) != len(self.b):
            raise ValueError(f"b: expected as many images as a ({len(self.a)}), found {len(self.b)}")
        if self.a.shape[-2:] != self.b.shape[-2:]:
            raise ValueError(f"b: expected the spatial size of a {tuple(self.a.shape[-2:])}, "
                             f"found {tuple(self.b.shape[-2:])}")
        self.names = [str(i) for i in range(len(self.a))] if names is None else [str(n) for n in names]
        if len(self.names) != len(self.a):
            raise ValueError(f"names: expected one name per pair ({len(self.a)}), found {len(self.names)}")
        self.name = str(name)

    @property
    def channels_a(self) -> int:
        return int(self.a.shape[1])

    @property
    def channels_b(self) -> int:
        return int(self.b.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.a.shape[2]), int(self.a.shape[3])

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def __getitem__(self, i) -> tuple[torch.Tensor, torch.Tensor]:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index: expected an int in [-{len(self)}, {len(self)}), found {i}")
        return self.a[i], self.b[i]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fetch a batch of pairs with one gather (used by ``DataLoader``)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64).reshape(-1))
        return list(zip(self.a[idx], self.b[idx]))

    def __repr__(self) -> str:
        return (f"PairedDataset(name={self.name!r}, n={len(self)}, a={tuple(self.a.shape[1:])}, "
                f"b={tuple(self.b.shape[1:])})")


def load_paired(root, size, channels: int = 3, channels_b: int | None = None,
                on_error: str = "raise") -> PairedDataset:
    """Load ``root/A`` and ``root/B`` whose files pair up by stem (extensions may differ) into a
    :class:`PairedDataset`, pairs sorted by stem. ``channels_b`` defaults to ``channels``. Stems present on
    one side only raise ``ValueError`` listing up to 10 of them; with ``on_error="skip"`` a pair with an
    unreadable file is dropped with a warning.
    """
    root = check_path("root", root, "folder")
    channels = _check_channels(channels)
    channels_b = channels if channels_b is None else _check_channels(channels_b, "channels_b")
    on_error = _check_on_error(on_error)
    _target_size(size)
    sides = [root / "A", root / "B"]
    if not all(s.is_dir() for s in sides):
        raise ValueError(f"root: expected sub-folders A/ and B/ in {str(root)!r}, found "
                         f"{[p.name for p in _subfolders(root)]}")
    by_stem_a, by_stem_b = (_files_by_stem(s) for s in sides)
    _check_same_stems(by_stem_a, by_stem_b, root)
    stems = sorted(by_stem_a)
    if not stems:
        raise ValueError(f"root: expected image files in {str(sides[0])!r} and {str(sides[1])!r}, found none")
    imgs_a, kept_a = _read_many([by_stem_a[s] for s in stems], size, channels, on_error)
    imgs_b, kept_b = _read_many([by_stem_b[s] for s in stems], size, channels_b, on_error)
    ok = {p.stem for p in kept_a} & {p.stem for p in kept_b}
    if not ok:
        raise ValueError(f"root: expected at least one readable pair in {str(root)!r}, found none")
    a = [t for t, p in zip(imgs_a, kept_a) if p.stem in ok]
    b = [t for t, p in zip(imgs_b, kept_b) if p.stem in ok]
    pa, pb = [p for p in kept_a if p.stem in ok], [p for p in kept_b if p.stem in ok]
    return PairedDataset(_stack(a, pa, sides[0]), _stack(b, pb, sides[1]), [p.stem for p in pa],
                         name=_display_name(root))


def _files_by_stem(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in _image_files(folder, IMAGE_EXTENSIONS):
        if p.stem in out:
            raise ValueError(f"root: expected one file per name in {str(folder)!r}, found {out[p.stem].name!r} "
                             f"and {p.name!r}")
        out[p.stem] = p
    return out


def _check_same_stems(a: dict, b: dict, root: Path) -> None:
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        def show(names):
            return f"{names[:10]}{' ...' if len(names) > 10 else ''}"
        raise ValueError(f"root: expected the same file names in A/ and B/ of {str(root)!r}, found "
                         f"{len(only_a)} only in A: {show(only_a)} and {len(only_b)} only in B: {show(only_b)}")
