"""Generators as datasets: :class:`SyntheticDataset` and :class:`MixedDataset`.

Items are ``(image, label)``: float32 CHW in [-1, 1] and an int64 scalar tensor. Models given as a
directory path are loaded lazily, once per process; inside a ``DataLoader`` worker every model runs on
CPU (a CUDA model is never touched in a forked worker: a CPU copy is made in the parent).
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from ..io import read_model_config
from ..models import GENERATOR_KINDS, TRANSLATOR_KINDS, GeneratorModel, TranslatorModel

__all__ = ["SyntheticDataset", "MixedDataset", "ModelHandle", "to_model_range", "reseed_transform"]

MODES = ("memory", "on_the_fly")


# ----------------------------------------------------------------------------- small helpers
def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}, found {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, found {value}")
    return int(value)


def _block_seed(seed: int, block: int) -> int:
    """A 63-bit seed that depends only on ``(seed, block)``."""
    return int(np.random.SeedSequence([seed, block]).generate_state(1, np.uint64)[0]) & (2**63 - 1)


def _in_worker() -> bool:
    return get_worker_info() is not None


def reseed_transform(transform, seed: int) -> None:
    """Reseed a transform's own RNG, if it has one (call from ``reseed``, i.e. once per worker).

    albumentations keeps per-instance generators (``set_random_seed``) that a forked worker copies
    unchanged; MONAI keeps ``self.R`` (``set_random_state``). torchvision v2 draws from torch's global
    RNG, which ``DataLoader`` already reseeds per worker, so nothing is done for it.
    """
    if transform is None:
        return
    seed = int(seed) % 2**32
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)
    elif hasattr(transform, "set_random_state"):
        transform.set_random_state(seed=seed)


def to_model_range(image) -> torch.Tensor:
    """An image at a boundary -> float32 CHW in [-1, 1].

    PIL images and uint8 tensors/arrays are scaled from 0..255; float tensors are taken as [0, 1]
    (torchvision's convention) and mapped to [-1, 1]. numpy arrays are read channels first like torch
    (MONAI's layout). Use as ``MixedDataset(real_transform=to_model_range)``.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        from torchvision.transforms.v2.functional import pil_to_tensor

        return pil_to_tensor(image).float() / 127.5 - 1.0
    t = _plain_tensor(image, "image")
    if t.dtype == torch.uint8:
        return t.float() / 127.5 - 1.0
    if not t.is_floating_point():
        raise TypeError(f"image: expected uint8 or float pixels, found dtype {t.dtype}")
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"image: expected float pixels in [0, 1], found range [{lo:.4g}, {hi:.4g}]")
    return t.float() * 2.0 - 1.0


def _plain_tensor(x, name: str) -> torch.Tensor:
    """numpy / torch / MetaTensor -> a plain CPU torch tensor (no copy where possible)."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        return x.as_subclass(torch.Tensor) if type(x) is not torch.Tensor else x
    raise TypeError(f"{name}: expected a torch tensor, numpy array or PIL image, found {type(x).__name__}")


def _as_model_image(x, name: str = "real image") -> torch.Tensor:
    """An item image after ``real_transform`` -> float32 CHW. PIL and uint8 are scaled; floats are kept."""
    from PIL import Image

    if isinstance(x, Image.Image) or (isinstance(x, (torch.Tensor, np.ndarray)) and x.dtype in (torch.uint8, np.uint8)):
        return to_model_range(x)
    t = _plain_tensor(x, name)
    if not t.is_floating_point():
        raise TypeError(f"{name}: expected a float CHW image in [-1, 1] (or PIL / uint8), found dtype {t.dtype}")
    if t.ndim != 3:
        raise ValueError(f"{name}: expected a CHW image, found shape {tuple(t.shape)}")
    return t.float()


def _as_label(y, name: str = "label") -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if t.numel() != 1 or t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError(f"{name}: expected one integer class index, found {y!r}")
    return t.reshape(()).to(torch.int64)


# ----------------------------------------------------------------------------- lazy models
class ModelHandle:
    """A model given as an object or a directory path, loaded lazily once per process.

    ``get()`` returns the model to run: inside a ``DataLoader`` worker (or with ``cpu=True`` or
    ``device="cpu"``) a CPU instance, loaded from the path in that process or copied to CPU in the parent
    at construction; otherwise the given model, or the path loaded on ``device`` (None: automatic).
    Pickling drops loaded weights of path-given models, so handles travel cheaply to spawned workers.
    """

    def __init__(self, model, kind: str, name: str = "model", device=None):
        if kind not in ("generator", "translator"):
            raise ValueError(f"kind: expected 'generator' or 'translator', found {kind!r}")
        self.kind, self.name, self.device = kind, name, device
        cls = GeneratorModel if kind == "generator" else TranslatorModel
        kinds = GENERATOR_KINDS if kind == "generator" else TRANSLATOR_KINDS
        self.path: str | None = None
        self._model = self._cpu = None
        if isinstance(model, (str, os.PathLike)):
            self.path = str(model)
            self.config = read_model_config(model)
            if self.config["kind"] not in kinds:
                other = "SyntheticDataset / MixedDataset" if kind == "translator" else "the translator transforms"
                raise ValueError(f"{name}: expected a {kind} model directory (kind in {list(kinds)}), found kind "
                                 f"{self.config['kind']!r} at {self.path!r}; use it through {other}")
            from ..models import _check_fields

            if kind == "generator":
                _check_fields(self.config, Path(self.path), ("image_size", "channels", "num_classes"),
                              names="class_names")
            else:
                _check_fields(self.config, Path(self.path), ("image_size", "channels_a", "channels_b"))
        elif isinstance(model, cls):
            self.config = model.config
            self._model = model
            self._cpu = model if model.device.type == "cpu" else self._cpu_copy(model)
        elif isinstance(model, (GeneratorModel, TranslatorModel)):
            hint = ("generators are used through SyntheticDataset / MixedDataset" if kind == "translator"
                    else "translators are used through the GAN transforms")
            raise TypeError(f"{name}: expected a {cls.__name__} or its directory path, found "
                            f"{type(model).__name__} ({hint})")
        else:
            raise TypeError(f"{name}: expected a {cls.__name__} or a model directory path, found "
                            f"{type(model).__name__}")

    @staticmethod
    def _cpu_copy(model):
        if isinstance(model, GeneratorModel):
            return GeneratorModel(copy.deepcopy(model.generator).cpu(), model.config, device="cpu")
        return TranslatorModel({k: copy.deepcopy(v).cpu() for k, v in model.nets.items()}, model.config,
                               device="cpu")

    def _load(self, device):
        cls = GeneratorModel if self.kind == "generator" else TranslatorModel
        with torch.random.fork_rng(devices=[]):  # building the nets draws init weights: keep the user's stream
            return cls.from_pretrained(self.path, device=device)

    def get(self, cpu: bool = False):
        """The model for this process (see the class docstring)."""
        want_cpu = cpu or _in_worker() or (self.device is not None and torch.device(self.device).type == "cpu")
        if not want_cpu:
            if self._model is None and self.path is not None:
                self._model = self._load(self.device)
            if self._model is not None:
                return self._model
        if self._cpu is None:
            if self._model is not None and self._model.device.type == "cpu":
                self._cpu = self._model
            else:
                self._cpu = self._load("cpu")
        return self._cpu

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.path is not None:
            state["_model"] = state["_cpu"] = None
        elif self._model is not None and self._model.device.type != "cpu":
            state["_model"] = None
        return state

    def check_compatible(self, image_size=None, channels=None, num_classes=None, what: str = "data") -> None:
        """``GeneratorModel.check_compatible`` on this process's CPU instance."""
        self.get(cpu=True).check_compatible(image_size=image_size, channels=channels, num_classes=num_classes,
                                            what=what)

    # --- translators -------------------------------------------------------------------------------
    def check_direction(self, direction: str) -> str:
        nets = self.config.get("nets", {})
        names = sorted(k[2:] for k in nets if k.startswith("G_"))
        if direction not in names:
            raise ValueError(f"direction: expected one of {names}, found {direction!r}")
        return direction

    def translate01(self, x: torch.Tensor, direction: str, name: str = "img") -> torch.Tensor:
        """Translate float NCHW images in [0, 1]; returns float32 NCHW in [0, 1] on CPU."""
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected float intensities in [0, 1], found dtype {x.dtype}")
        c_in = int(self.config["channels_a" if direction == "A2B" else "channels_b"])
        if x.ndim != 4 or x.shape[1] != c_in:
            raise ValueError(f"{name}: expected {c_in} channel(s) first (C, H, W) for direction {direction!r}, "
                             f"found shape {tuple(x.shape[1:]) if x.ndim == 4 else tuple(x.shape)}")
        if x.numel():
            lo, hi = float(x.min()), float(x.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(f"{name}: expected intensities in [0, 1], found range [{lo:.4g}, {hi:.4g}]")
        y = self.get().translate(x.float() * 2.0 - 1.0, direction=direction)
        return (y + 1.0) * 0.5


# ----------------------------------------------------------------------------- SyntheticDataset
def _layout_labels(counts: Sequence[int]) -> torch.Tensor:
    """Round-robin label list: class c appears ``counts[c]`` times, classes interleaved."""
    ys = [torch.full((k,), c, dtype=torch.int64) for c, k in enumerate(counts)]
    ranks = [torch.arange(k, dtype=torch.int64) for k in counts]
    y, r = torch.cat(ys), torch.cat(ranks)
    order = torch.argsort(r * len(counts) + y, stable=True)
    return y[order].contiguous()


def _class_counts(n, per_class, class_names: list[str]) -> list[int]:
    c = len(class_names)
    if (n is None) == (per_class is None):
        raise ValueError(f"n / per_class: expected exactly one of them, found n={n!r}, per_class={per_class!r}")
    if n is not None:
        n = _check_int("n", n, 0)
        return [n // c + (i < n % c) for i in range(c)]
    if isinstance(per_class, Mapping):
        counts = [0] * c
        for key, k in per_class.items():
            if isinstance(key, str):
                if key not in class_names:
                    raise ValueError(f"per_class: expected class names from {class_names}, found {key!r}")
                idx = class_names.index(key)
            else:
                idx = _check_int("per_class key", key, 0)
                if idx >= c:
                    raise ValueError(f"per_class: expected class indices in [0, {c - 1}], found {idx}")
            counts[idx] = _check_int(f"per_class[{key!r}]", k, 0)
        return counts
    return [_check_int("per_class", per_class, 0)] * c


class SyntheticDataset(Dataset):
    """Samples of a class-conditional generator as a dataset of ``(image, label)``.

    Args:
        generator: a :class:`~synthaug.models.GeneratorModel` or its directory path.
        n: total number of samples, class-balanced (counts differ by at most one); or
        per_class: an int for every class, or a dict class name/index -> count (to top up some classes).
        seed: image ``i`` depends only on ``(seed, i)`` (and ``batch_size``, ``truncation``, its label).
        mode: ``"memory"`` generates everything at construction; ``"on_the_fly"`` generates each requested
            batch in one forward pass (CPU), e.g. inside ``DataLoader`` workers.
        truncation: latent truncation (1 = off).
        batch_size: generation block. The latents of block ``b`` (indices ``b*batch_size ...``) are drawn
            from a ``torch.Generator`` seeded from ``(seed, b)``, so any process makes the same image for
            an index. Batches of different composition may differ by float rounding (~1e-7).
        transform: applied to every image on access (float CHW in [-1, 1] in and out).
        cache_blocks: on the fly only: keep the last ``cache_blocks`` whole generated blocks per process
            (0 = no cache). With a cache, whole blocks are generated, so outputs are bitwise equal to
            ``"memory"`` mode and repeated epochs with ``persistent_workers`` cost nothing.
        device: where ``"memory"`` generation runs (None: the model's device / automatic).
        drop_near_copies: memorisation guard, ``"memory"`` mode only: after generation, drop every sample
            whose nearest-``reference``-image distance ratio (see
            :func:`synthaug.eval.memorization.memorization_audit`, pixel space) is below this threshold,
            e.g. ``1/3``. Labels stay aligned; the number dropped is in ``n_dropped`` and is warned about
            (``warnings.warn``). The dataset is then shorter than ``n`` and per-class counts may differ.
        reference: the real training images the guard compares with: an
            :class:`~synthaug.data.ImageDataset` or a float ``(N, C, H, W)`` tensor in [-1, 1] of the
            generator's channels and size (at least 2 images). Required with ``drop_near_copies``.
    """

    #: samples removed by the memorisation guard (0 when it is off, and for sets reopened from shards)
    n_dropped: int = 0
    drop_near_copies: float | None = None

    def __init__(self, generator, n: int | None = None, per_class: int | Mapping | None = None, seed: int = 0,
                 mode: str = "memory", truncation: float = 1.0, batch_size: int = 256,
                 transform: Callable | None = None, cache_blocks: int = 0, device=None,
                 drop_near_copies: float | None = None, reference=None):
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {list(MODES)}, found {mode!r}")
        self._handle = (generator if isinstance(generator, ModelHandle)
                        else ModelHandle(generator, "generator", name="generator", device=device))
        cfg = self._handle.config
        self.class_names = [str(c) for c in cfg["class_names"]]
        self.channels = int(cfg["channels"])
        self.image_size = (int(cfg["image_size"]), int(cfg["image_size"]))
        self.model_config = cfg
        self.seed = _check_int("seed", seed, 0)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.cache_blocks = _check_int("cache_blocks", cache_blocks, 0)
        if isinstance(truncation, bool) or not isinstance(truncation, (int, float)) or not 0 <= truncation <= 1:
            raise ValueError(f"truncation: expected a float in [0, 1], found {truncation!r}")
        self.truncation = float(truncation)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable or None, found {type(transform).__name__}")
        self.transform = transform
        self.labels = _layout_labels(_class_counts(n, per_class, self.class_names))
        self.mode = mode
        reference_images = self._check_guard(drop_near_copies, reference, mode)
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.images: torch.Tensor | None = None
        if mode == "memory":
            self.images = self._generate_range(0, len(self.labels), self._handle.get())
            if self._handle.path is not None:
                self._handle._model = None  # weights are no longer needed in this process
            if reference_images is not None:
                self._drop_near_copies(reference_images)

    # --- memorisation guard ---------------------------------------------------------------------------
    def _check_guard(self, threshold, reference, mode: str) -> torch.Tensor | None:
        """Validate ``drop_near_copies`` / ``reference`` before generating; return the reference images."""
        if threshold is None:
            if reference is not None:
                raise ValueError("reference: only used by the memorisation guard, found reference images but "
                                 "drop_near_copies=None (pass drop_near_copies=1/3, for example)")
            return None
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
                or not 0.0 < float(threshold) <= 1.0:
            raise ValueError(f"drop_near_copies: expected a distance-ratio threshold in (0, 1] (e.g. 1/3) or None, "
                             f"found {threshold!r}")
        if mode != "memory":
            raise ValueError(f"drop_near_copies: expected mode='memory' (the whole set is generated and audited "
                             f"at construction), found mode={mode!r}")
        images = reference
        if not isinstance(images, torch.Tensor) and isinstance(getattr(reference, "images", None), torch.Tensor):
            images = reference.images
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise TypeError(f"reference: expected the real training images (an ImageDataset or a float "
                            f"(N, C, H, W) tensor in [-1, 1]) for drop_near_copies, found {type(reference).__name__}")
        from ..utils import check_images

        check_images(images, "reference", channels=self.channels, size=self.image_size)
        if len(images) < 2:
            raise ValueError(f"reference: expected at least 2 real images (the guard compares each sample's "
                             f"distance with real-to-real distances), found {len(images)}")
        self.drop_near_copies = float(threshold)
        return images

    def _drop_near_copies(self, reference: torch.Tensor) -> None:
        """Remove generated samples flagged as near-copies of ``reference``; labels stay aligned."""
        import warnings

        from ..eval.memorization import filter_near_copies

        n = len(self.labels)
        if n == 0:
            return
        kept, n_dropped = filter_near_copies(self.images, reference, threshold=self.drop_near_copies)
        self.images = self.images[kept].contiguous()
        self.labels = self.labels[kept].contiguous()
        self.n_dropped = int(n_dropped)
        if n_dropped:
            warnings.warn(f"SyntheticDataset: dropped {n_dropped} of {n} generated samples as near-copies of the "
                          f"reference (training) images (nearest-real distance ratio < {self.drop_near_copies:.3g}); "
                          f"{len(self.labels)} remain", stacklevel=3)

    # --- properties ---------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def generator(self) -> GeneratorModel | None:
        """The generator as used in this process (None for a set reopened from shards)."""
        return self._handle.get() if self._handle is not None else None

    def class_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.labels, minlength=self.num_classes).tolist()
        return dict(zip(self.class_names, counts))

    # --- generation ---------------------------------------------------------------------------------
    def _block_latents(self, block: int, z_dim: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(_block_seed(self.seed, block))
        return torch.randn(self.batch_size, z_dim, generator=g)  # always a full block: rows never shift

    @torch.no_grad()
    def _forward(self, model: GeneratorModel, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if len(y) == 0:
            return torch.empty(0, self.channels, *self.image_size)
        out = model.generator(z.to(model.device), y.to(model.device), truncation=self.truncation)
        return out.float().clamp(-1, 1).cpu()

    def _generate_block(self, block: int, model: GeneratorModel) -> torch.Tensor:
        start = block * self.batch_size
        stop = min(start + self.batch_size, len(self.labels))
        z = self._block_latents(block, model.z_dim)[: stop - start]
        return self._forward(model, z, self.labels[start:stop])

    def _generate_range(self, start: int, stop: int, model: GeneratorModel) -> torch.Tensor:
        """Images ``start..stop-1`` generated whole block by whole block (the canonical batches)."""
        if stop <= start:
            return torch.empty(0, self.channels, *self.image_size)
        bs = self.batch_size
        parts = []
        for b in range(start // bs, (stop - 1) // bs + 1):
            imgs = self._generate_block(b, model)
            lo, hi = max(start - b * bs, 0), min(stop - b * bs, len(imgs))
            parts.append(imgs[lo:hi])
        return torch.cat(parts)

    def _generate_indices(self, idx: torch.Tensor) -> torch.Tensor:
        model = self._handle.get(cpu=True)
        blocks = idx // self.batch_size
        if self.cache_blocks:
            out = torch.empty(len(idx), self.channels, *self.image_size)
            for b in blocks.unique().tolist():
                if b in self._cache:
                    self._cache.move_to_end(b)
                else:
                    self._cache[b] = self._generate_block(b, model)
                    while len(self._cache) > self.cache_blocks:
                        self._cache.popitem(last=False)
                sel = blocks == b
                out[sel] = self._cache[b][idx[sel] - b * self.batch_size]
            return out
        z = torch.empty(len(idx), model.z_dim)
        for b in blocks.unique().tolist():
            sel = blocks == b
            z[sel] = self._block_latents(b, model.z_dim)[idx[sel] - b * self.batch_size]
        return self._forward(model, z, self.labels[idx])

    # --- torch Dataset protocol ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def _index_tensor(self, indices) -> torch.Tensor:
        if isinstance(indices, torch.Tensor):
            idx = indices.reshape(-1).to(torch.int64)
        else:
            idx = torch.as_tensor(np.asarray(indices, dtype=np.int64).reshape(-1))
        n = len(self)
        if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise IndexError(f"index: expected ints in [-{n}, {n}), found range [{int(idx.min())}, {int(idx.max())}]")
        return torch.where(idx < 0, idx + n, idx)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A batch of items; on the fly, all of them come from one forward pass."""
        idx = self._index_tensor(indices)
        images = self.images[idx] if self.images is not None else self._generate_indices(idx)
        labels = self.labels[idx]
        if self.transform is not None:
            return [(self.transform(im), y) for im, y in zip(images, labels)]
        return list(zip(images, labels))

    def __getitem__(self, i) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([i])[0]

    def reseed(self, seed: int) -> None:
        """Reseed ``transform`` (called by :func:`synthaug.utils.seed_worker` in each worker)."""
        reseed_transform(self.transform, seed)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()
        return state

    def check_compatible(self, image_size=None, channels=None, num_classes=None, what: str = "data") -> None:
        """``GeneratorModel.check_compatible`` against the generator (or the shard manifest)."""
        if self._handle is not None:
            return self._handle.check_compatible(image_size, channels, num_classes, what)
        h, w = self.image_size
        target = SimpleNamespace(image_size=h if h == w else (h, w), channels=self.channels,
                                 num_classes=self.num_classes)
        GeneratorModel.check_compatible(target, image_size=image_size, channels=channels, num_classes=num_classes,
                                        what=what)

    # --- shards -------------------------------------------------------------------------------------
    def save_shards(self, folder, shard_size: int = 1024) -> Path:
        """Write ``shard-XXXXX.safetensors`` (uint8 NCHW + int64 labels) and ``manifest.json``; returns it."""
        from .shards import _manifest_header, _write_manifest, _write_rank_shards

        entries = _write_rank_shards(self, folder, shard_size, rank=0, world_size=1)
        return _write_manifest(Path(folder) / "manifest.json", _manifest_header(self, shard_size), entries)

    def _shard_images(self, start: int, stop: int) -> torch.Tensor:
        if self.images is not None:
            return self.images[start:stop]
        return self._generate_range(start, stop, self._handle.get())

    @classmethod
    def from_shards(cls, folder, verify: bool = True, transform: Callable | None = None) -> "SyntheticDataset":
        """Reopen a sharded set in memory; ``verify`` checks every shard's sha256 against the manifest."""
        from .shards import load_shards

        manifest, images, labels = load_shards(folder, verify=verify)
        ds = cls.__new__(cls)
        ds._handle = None
        ds.class_names = list(manifest["class_names"])
        ds.channels = int(manifest["channels"])
        ds.image_size = tuple(int(v) for v in manifest["image_size"])
        ds.model_config = manifest["source_model"]
        ds.seed, ds.batch_size = int(manifest["seed"]), int(manifest["batch_size"])
        ds.truncation, ds.cache_blocks = float(manifest["truncation"]), 0
        ds.transform, ds.mode, ds._cache = transform, "memory", OrderedDict()
        ds.labels = labels
        ds.images = images.float() / 127.5 - 1.0
        return ds

    def __repr__(self) -> str:
        return (f"SyntheticDataset(n={len(self)}, mode={self.mode!r}, seed={self.seed}, "
                f"shape={(self.channels, *self.image_size)}, classes={self.class_counts()})")


# ----------------------------------------------------------------------------- MixedDataset
class MixedDataset(Dataset):
    """Real data plus synthetic samples, as one dataset.

    Indices ``0 .. len(real)-1`` are the real items, the rest synthetic. Give exactly one of:

    * ``ratio`` r in [0, 1): the synthetic share; ``round(len(real) * r / (1 - r))`` synthetic samples
      are added (length ``~ len(real) / (1 - r)``).
    * ``balance_classes=True``: each class is topped up with synthetic samples to the largest real class.

    ``synthetic`` is a :class:`SyntheticDataset` (samples are drawn from it without replacement,
    deterministically under ``seed``) or a generator / model path (an on-the-fly :class:`SyntheticDataset`
    of exactly the needed counts is built with ``seed``). ``real`` is any dataset of ``(image, label)``
    (float CHW in [-1, 1]; PIL and uint8 are scaled automatically; float [0, 1] needs
    ``real_transform=to_model_range``) or of dicts (MONAI) read through ``image_key`` / ``label_key``.
    ``transform`` is applied to every item's image (real and synthetic alike). ``check`` compares the real
    data's image size, channels and number of classes with the generator's.
    """

    def __init__(self, real, synthetic, ratio: float | None = None, balance_classes: bool = False, seed: int = 0,
                 check: bool = True, return_source: bool = False, transform: Callable | None = None,
                 real_transform: Callable | None = None, image_key: str = "image", label_key: str = "label"):
        if ratio is not None and balance_classes:
            raise ValueError(f"ratio / balance_classes: expected exactly one of them, found ratio={ratio!r} "
                             f"and balance_classes=True")
        if ratio is None and not balance_classes:
            raise ValueError("ratio / balance_classes: expected exactly one of them, found neither "
                             "(ratio=None, balance_classes=False)")
        if ratio is not None:
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.floating)):
                raise TypeError(f"ratio: expected a float in [0, 1), found {type(ratio).__name__} {ratio!r}")
            if not 0.0 <= float(ratio) < 1.0:
                raise ValueError(f"ratio: expected a float in [0, 1), found {ratio!r}")
        for name, fn in (("transform", transform), ("real_transform", real_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: expected a callable or None, found {type(fn).__name__}")
        if len(real) == 0:
            raise ValueError("real: expected a non-empty dataset, found 0 items")
        self.real, self.ratio, self.balance_classes = real, ratio, bool(balance_classes)
        self.seed = _check_int("seed", seed, 0)
        self.return_source, self.transform, self.real_transform = bool(return_source), transform, real_transform
        self.image_key, self.label_key = image_key, label_key

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
        rng = np.random.default_rng(self.seed)

        if ratio is not None:
            need = int(round(len(real) * float(ratio) / (1.0 - float(ratio))))
            per_class = None
        else:
            deficit = (int(real_counts.max()) - real_counts).tolist()
            need, per_class = int(sum(deficit)), dict(enumerate(deficit))
        if isinstance(synthetic, SyntheticDataset):
            self.synthetic = synthetic
            if ratio is not None:
                if need > len(synthetic):
                    raise ValueError(f"synthetic: expected at least {need} samples for ratio={ratio} with "
                                     f"{len(real)} real items, found {len(synthetic)}")
                index = np.sort(rng.permutation(len(synthetic))[:need])
            else:
                index = self._pick_per_class(synthetic, per_class, rng)
        else:
            kw = {"n": need} if per_class is None else {"per_class": per_class}
            self.synthetic = SyntheticDataset(target, seed=self.seed, mode="on_the_fly", **kw)
            index = np.arange(len(self.synthetic))
        self.synthetic_index = torch.as_tensor(index, dtype=torch.int64)
        self.n_real = len(real)
        self.source = torch.cat([torch.zeros(self.n_real, dtype=torch.bool),
                                 torch.ones(len(self.synthetic_index), dtype=torch.bool)])
        self._real_counts = real_counts

    @staticmethod
    def _pick_per_class(synthetic: SyntheticDataset, per_class: dict[int, int], rng) -> np.ndarray:
        picked = []
        for c, k in per_class.items():
            members = np.flatnonzero(synthetic.labels.numpy() == c)
            if len(members) < k:
                raise ValueError(f"synthetic: expected at least {k} samples of class "
                                 f"{synthetic.class_names[c]!r} to balance the classes, found {len(members)}; "
                                 f"build it with SyntheticDataset(per_class=...) or pass the generator")
            picked.append(rng.choice(members, size=k, replace=False))
        return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)

    # --- real items ---------------------------------------------------------------------------------
    def _real_labels(self) -> torch.Tensor:
        for attr in ("labels", "targets"):
            y = getattr(self.real, attr, None)
            if y is not None and not callable(y):
                t = torch.as_tensor(np.asarray(y)).reshape(-1).to(torch.int64)
                if len(t) == len(self.real):
                    return t
        return torch.stack([y for _, y in self._fetch_real(range(len(self.real)), labels_only=True)])

    def _fetch_real(self, indices, labels_only: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
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
                y = _as_label(y, "real label")
            if labels_only:
                out.append((None, y))
                continue
            if self.real_transform is not None:
                img = self.real_transform(img)
            if not (type(img) is torch.Tensor and img.dtype == torch.float32 and img.ndim == 3):
                img = _as_model_image(img)
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
            for p, item in zip(syn_pos, self.synthetic.__getitems__(syn_idx)):
                items[p] = item
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
        how = f"ratio={self.ratio}" if self.ratio is not None else "balance_classes=True"
        return (f"MixedDataset(real={self.n_real}, synthetic={len(self.synthetic_index)}, {how}, "
                f"seed={self.seed})")
