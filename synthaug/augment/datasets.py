"""A class-conditional generator as a dataset: :class:`SyntheticDataset`; :func:`write_shards` writes one
process's share of it to disk (the file format is :mod:`.shards`).

Items are ``(image, label)``: float32 CHW in [-1, 1] and an int64 scalar tensor. Models given as a
directory path are loaded lazily, once per process; inside a ``DataLoader`` worker every model runs on
CPU (a CUDA model is never touched in a forked worker: a CPU copy is made in the parent).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checks import check_choice, check_int, check_number
from ..data import ImageDataset
from ..models import GeneratorModel
from ..nets.layers import check_z_threshold, truncated_normal
from ..utils import CONVERT_HINT, check_images, check_value_range
from .handle import ModelHandle, block_seed, reseed_transform
from .plan import per_class_counts
from .shards import load_shards, write_all_shards, write_rank_shards

__all__ = ["SyntheticDataset", "write_shards"]

MODES = ("memory", "on_the_fly")


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
        n = check_int("n", n, 0)
        return [n // c + (i < n % c) for i in range(c)]
    if isinstance(per_class, Mapping):
        return per_class_counts(per_class, class_names, "per_class")
    return [check_int("per_class", per_class, 0)] * c


class SyntheticDataset(Dataset):
    """Samples of a class-conditional generator as a dataset of ``(image, label)``.

    Args:
        generator: a :class:`~synthaug.models.GeneratorModel` or its directory path.
        n: total number of samples, class-balanced (counts differ by at most one); or
        per_class: an int for every class, or a dict class name/index -> count (to top up some classes).
        seed: image ``i`` depends only on ``(seed, i)`` (and ``batch_size``, ``truncation``, ``z_threshold``, its
            label).
        mode: ``"memory"`` generates everything at construction; ``"on_the_fly"`` generates each requested
            batch in one forward pass (CPU), e.g. inside ``DataLoader`` workers.
        truncation: latent truncation (1 = off).
        z_threshold: BigGAN's truncated normal for the latents (None = off), as in
            :meth:`~synthaug.models.GeneratorModel.sample`.
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
            :func:`synthaug.nearcopy.filter_near_copies`, pixel space) is below this threshold,
            e.g. ``1/3``. Labels stay aligned; the number dropped is in ``n_dropped`` and is warned about
            (``warnings.warn``). The dataset is then shorter than ``n`` and per-class counts may differ.
        reference: the real training images the guard compares with: an
            :class:`~synthaug.data.ImageDataset` or a float ``(N, C, H, W)`` tensor in [-1, 1] of the
            generator's channels and size (at least 2 images). Required with ``drop_near_copies``.
        keep: ``"memory"`` mode only: a callable ``keep(images, labels) -> bool mask`` (e.g.
            :class:`~synthaug.augment.SampleFilter`); rejected samples are replaced by new ones drawn with
            derived seeds until every class has its count (at most ``max_draws`` times the requested number
            are generated; a class still short is then left short, with a warning). ``filter_report`` holds
            per class the numbers generated and kept and the kept fraction.
    """

    #: samples removed by the memorisation guard (0 when it is off, and for sets reopened from shards)
    n_dropped: int = 0
    drop_near_copies: float | None = None

    def __init__(self, generator, n: int | None = None, per_class: int | Mapping | None = None, seed: int = 0,
                 mode: str = "memory", truncation: float = 1.0, batch_size: int = 256,
                 transform: Callable | None = None, cache_blocks: int = 0, device=None,
                 drop_near_copies: float | None = None, reference=None, keep: Callable | None = None,
                 max_draws: int = 20, z_threshold: float | None = None):
        check_choice("mode", mode, MODES)
        self._handle = (generator if isinstance(generator, ModelHandle)
                        else ModelHandle(generator, "generator", name="generator", device=device))
        cfg = self._handle.config
        self.class_names = [str(c) for c in cfg["class_names"]]
        self.channels = int(cfg["channels"])
        self.image_size = (int(cfg["image_size"]), int(cfg["image_size"]))
        self.model_config = cfg
        self.seed = check_int("seed", seed, 0)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.cache_blocks = check_int("cache_blocks", cache_blocks, 0)
        self.truncation = check_number("truncation", truncation, 0.0, 1.0)
        self.z_threshold = check_z_threshold(z_threshold)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable or None, found {type(transform).__name__}")
        self.transform = transform
        self.labels = _layout_labels(_class_counts(n, per_class, self.class_names))
        self.mode = mode
        reference_images = self._check_guard(drop_near_copies, reference, mode)
        if keep is not None and (mode != "memory" or not callable(keep)):
            raise ValueError(f"keep: expected a callable filter with mode='memory', found "
                             f"{type(keep).__name__} with mode={mode!r}")
        self.filter_report: dict[str, dict] | None = None
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.images: torch.Tensor | None = None
        if mode == "memory":
            self.images = self._generate_range(0, len(self.labels), self._handle.get())
            if keep is not None:
                self._apply_filter(keep, check_int("max_draws", max_draws, 1))
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
        check_images(images, "reference", channels=self.channels, size=self.image_size)
        if not isinstance(reference, ImageDataset):  # an ImageDataset is [-1, 1] by construction
            check_value_range(images, "reference", fix=CONVERT_HINT)
        if len(images) < 2:
            raise ValueError(f"reference: expected at least 2 real images (the guard compares each sample's "
                             f"distance with real-to-real distances), found {len(images)}")
        self.drop_near_copies = float(threshold)
        return images

    def _drop_near_copies(self, reference: torch.Tensor) -> None:
        """Remove generated samples flagged as near-copies of ``reference``; labels stay aligned."""
        import warnings

        from ..nearcopy import filter_near_copies

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

    def _apply_filter(self, keep: Callable, max_draws: int) -> None:
        """Keep what ``keep`` accepts; replace the rest with fresh samples, class by class, deterministically."""
        import warnings

        c = self.num_classes
        want = torch.bincount(self.labels, minlength=c)
        got_x, got_y = [], []
        have = torch.zeros(c, dtype=torch.int64)
        generated = torch.zeros(c, dtype=torch.int64)
        x, y, draw = self.images, self.labels, 0
        model = self._handle.get()
        while True:
            mask = torch.as_tensor(keep(x, y)).bool().reshape(-1)
            if len(mask) != len(y):
                raise ValueError(f"keep: expected one bool per sample ({len(y)}), found {len(mask)}")
            generated += torch.bincount(y, minlength=c)
            for k in range(c):
                idx = torch.nonzero(mask & (y == k)).flatten()[: int(want[k] - have[k])]
                got_x.append(x[idx])
                got_y.append(y[idx])
                have[k] += len(idx)
            short = (want - have).clamp_min(0)
            draw += 1
            if int(short.sum()) == 0 or int(generated.sum()) >= max_draws * int(want.sum()):
                break
            rate = (have.float() / generated.clamp_min(1).float()).clamp_min(0.05)
            ask = torch.ceil(short.float() / rate).long() * (short > 0)
            y = _layout_labels(ask.tolist())
            x, _ = model.sample(len(y), labels=y, truncation=self.truncation, seed=block_seed(self.seed, 2**40 + draw),
                                batch_size=self.batch_size, z_threshold=self.z_threshold)
        order = torch.argsort(torch.cat(got_y), stable=True)
        self.images, self.labels = torch.cat(got_x)[order].contiguous(), torch.cat(got_y)[order].contiguous()
        self.filter_report = {
            name: {"requested": int(want[k]), "generated": int(generated[k]), "kept": int(have[k]),
                   "kept_fraction": float(have[k]) / max(int(generated[k]), 1)}
            for k, name in enumerate(self.class_names)}
        if int((want - have).sum()):
            warnings.warn(f"SyntheticDataset: the filter left classes short after generating {max_draws}x the "
                          f"requested number: {self.filter_report}", stacklevel=3)

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
        g = torch.Generator().manual_seed(block_seed(self.seed, block))
        # always a full block: rows never shift
        return truncated_normal((self.batch_size, z_dim), self.z_threshold, generator=g)

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
        """Write ``shard-NNNNN.safetensors`` (uint8 NCHW + int64 labels) and ``manifest.json``; returns it."""
        return write_all_shards(self, folder, shard_size)

    def image_range(self, start: int, stop: int) -> torch.Tensor:
        """Images ``start .. stop-1`` (float NCHW in [-1, 1], before ``transform``), generated if on the fly."""
        if self.images is not None:
            return self.images[start:stop]
        return self._generate_range(start, stop, self._handle.get())

    @classmethod
    def from_shards(cls, folder, verify: bool = True, transform: Callable | None = None) -> "SyntheticDataset":
        """Reopen a sharded set in memory; ``verify`` checks every shard's sha256 against the manifest."""
        manifest, images, labels = load_shards(folder, verify=verify)
        ds = cls.from_tensors(images.float() / 127.5 - 1.0, labels, manifest["class_names"], transform=transform,
                              source=manifest["source_model"])
        ds.seed, ds.batch_size = int(manifest["seed"]), int(manifest["batch_size"])
        ds.truncation = float(manifest["truncation"])
        ds.z_threshold = manifest.get("z_threshold")
        return ds

    @classmethod
    def from_tensors(cls, images: torch.Tensor, labels, class_names: Sequence[str], transform: Callable | None = None,
                     source: dict | None = None) -> "SyntheticDataset":
        """A set of samples already made elsewhere (a translator's output, a filtered pool): float NCHW images
        in [-1, 1] and one label per image. ``source`` describes where they came from (kept as
        ``model_config``)."""
        check_images(images, "images")
        if not images.is_floating_point():
            raise TypeError(f"images: expected float images in [-1, 1], found dtype {images.dtype}")
        check_value_range(images, "images", (-1, 1), fix=CONVERT_HINT)
        lab = torch.as_tensor(labels).to(torch.int64).reshape(-1)
        if len(lab) != len(images):
            raise ValueError(f"labels: expected one label per image ({len(images)}), found {len(lab)}")
        names = [str(c) for c in class_names]
        if len(lab) and (int(lab.min()) < 0 or int(lab.max()) >= len(names)):
            raise ValueError(f"labels: expected class indices in [0, {len(names) - 1}], found range "
                             f"[{int(lab.min())}, {int(lab.max())}]")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable or None, found {type(transform).__name__}")
        ds = cls.__new__(cls)
        ds._handle = None
        ds.class_names, ds.channels = names, int(images.shape[1])
        ds.image_size = tuple(int(v) for v in images.shape[-2:])
        ds.model_config = dict(source or {"source": "tensors"})
        ds.seed, ds.batch_size, ds.truncation, ds.cache_blocks, ds.z_threshold = 0, 256, 1.0, 0, None
        ds.transform, ds.mode, ds._cache = transform, "memory", OrderedDict()
        ds.labels, ds.images, ds.filter_report = lab.contiguous(), images.float().contiguous(), None
        return ds

    def __repr__(self) -> str:
        return (f"SyntheticDataset(n={len(self)}, mode={self.mode!r}, seed={self.seed}, "
                f"shape={(self.channels, *self.image_size)}, classes={self.class_counts()})")


def write_shards(generator, folder, n: int | None = None, per_class: int | Mapping | None = None, seed: int = 0,
                 shard_size: int = 1024, rank: int = 0, world_size: int = 1, truncation: float = 1.0,
                 batch_size: int = 256, z_threshold: float | None = None) -> Path:
    """Write this rank's share of the shards and ``manifest-rank-RRRRR-of-WWWWW.json``; returns that path.

    Run once per rank (e.g. under ``torchrun``: ``rank=RANK, world_size=WORLD_SIZE``), then call
    :func:`~synthaug.augment.merge_manifests` once. Arguments are those of :class:`SyntheticDataset`; every rank
    must pass the same ones. Generation runs on the generator's device.
    """
    ds = SyntheticDataset(generator, n=n, per_class=per_class, seed=seed, mode="on_the_fly", truncation=truncation,
                          batch_size=batch_size, z_threshold=z_threshold)
    return write_rank_shards(ds, folder, shard_size, rank, world_size)
