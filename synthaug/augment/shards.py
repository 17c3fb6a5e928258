"""Synthetic sets on disk: ``shard-NNNNN.safetensors`` files plus a ``manifest.json``.

Shard ``k`` holds samples ``k*shard_size ... (k+1)*shard_size - 1`` of a :class:`SyntheticDataset`, so any
split of the shards over processes (:func:`write_rank_shards` with ``rank`` / ``world_size``, then
:func:`merge_manifests`) yields the same files as one process (:func:`write_all_shards`). Each shard stores
``images`` (uint8 NCHW) and ``labels`` (int64); the manifest lists every shard with its sha256.

This module knows the file format only: it takes a dataset (anything with ``SyntheticDataset``'s settings,
``labels`` and ``image_range``) and never imports :mod:`.datasets`, which builds on it
(``SyntheticDataset.save_shards`` / ``from_shards``, :func:`synthaug.augment.write_shards`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

from ..checks import check_int
from ..io import atomic_write_bytes, load_safetensors, read_format_json
from ..utils import to_uint8_images

__all__ = ["write_rank_shards", "write_all_shards", "merge_manifests", "read_manifest", "load_shards"]

FORMAT = "synthaug-shards"
VERSION = 1
_RANK_RE = re.compile(r"^manifest-rank-(\d{5})-of-(\d{5})\.json$")
_HEADER_KEYS = ("format", "format_version", "count", "class_names", "num_classes", "image_size", "channels", "seed",
                "truncation", "batch_size", "shard_size", "num_shards", "source_model")
_OPTIONAL_KEYS = ("z_threshold",)  # written only when set, so earlier manifests stay valid


def _shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


def _manifest_header(ds, shard_size: int) -> dict:
    n = len(ds)
    return {"format": FORMAT, "format_version": VERSION, "count": n, "class_names": list(ds.class_names),
            "num_classes": ds.num_classes, "image_size": list(ds.image_size), "channels": ds.channels,
            "seed": ds.seed, "truncation": ds.truncation, "batch_size": ds.batch_size, "shard_size": shard_size,
            "num_shards": -(-n // shard_size), "source_model": ds.model_config,
            **({"z_threshold": ds.z_threshold} if getattr(ds, "z_threshold", None) is not None else {})}


def _write_manifest(path: Path, header: dict, entries: list[dict], **extra) -> Path:
    body = dict(header, **extra)
    body["class_counts"] = [sum(e["class_counts"][c] for e in entries) for c in range(header["num_classes"])]
    body["shards"] = sorted(entries, key=lambda e: e["index"])
    return atomic_write_bytes(path, json.dumps(body, indent=2).encode())


def _write_entries(ds, folder, shard_size: int, rank: int, world_size: int) -> list[dict]:
    """Generate and write shards ``rank, rank + world_size, ...`` of ``ds``; return their manifest entries."""
    from safetensors.torch import save

    shard_size = check_int("shard_size", shard_size, 1)
    world_size = check_int("world_size", world_size, 1)
    rank = check_int("rank", rank, 0)
    if rank >= world_size:
        raise ValueError(f"rank: expected an int in [0, {world_size - 1}] for world_size={world_size}, found {rank}")
    folder = Path(folder)
    entries = []
    for k in range(rank, -(-len(ds) // shard_size), world_size):
        start, stop = k * shard_size, min((k + 1) * shard_size, len(ds))
        images = torch.from_numpy(to_uint8_images(ds.image_range(start, stop), channels_last=False))
        labels = ds.labels[start:stop].clone()
        # one metadata key only: safetensors writes several in no fixed order, and files must be reproducible
        data = save({"images": images.contiguous(), "labels": labels}, metadata={"format": FORMAT})
        atomic_write_bytes(folder / _shard_name(k), data)
        entries.append({"file": _shard_name(k), "index": k, "start": start, "count": stop - start,
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "class_counts": torch.bincount(labels, minlength=ds.num_classes).tolist()})
    return entries


def write_rank_shards(ds, folder, shard_size: int = 1024, rank: int = 0, world_size: int = 1) -> Path:
    """Write this rank's share of ``ds``'s shards and ``manifest-rank-RRRRR-of-WWWWW.json``; returns that path.
    Run once per rank, then :func:`merge_manifests` once."""
    entries = _write_entries(ds, folder, shard_size, rank, world_size)
    path = Path(folder) / f"manifest-rank-{rank:05d}-of-{world_size:05d}.json"
    return _write_manifest(path, _manifest_header(ds, shard_size), entries, rank=rank, world_size=world_size)


def write_all_shards(ds, folder, shard_size: int = 1024) -> Path:
    """Write all of ``ds``'s shards and ``manifest.json`` in one process; returns the manifest's path."""
    entries = _write_entries(ds, folder, shard_size, rank=0, world_size=1)
    return _write_manifest(Path(folder) / "manifest.json", _manifest_header(ds, shard_size), entries)


def merge_manifests(folder) -> Path:
    """Combine all ``manifest-rank-*.json`` of ``folder`` into ``manifest.json``; returns its path.

    Checks that all ranks of one run are present, agree on every setting, and cover each shard once.
    """
    folder = Path(folder)
    found = sorted(p for p in folder.glob("manifest-rank-*-of-*.json") if _RANK_RE.match(p.name))
    if not found:
        raise FileNotFoundError(f"folder: expected manifest-rank-*-of-*.json files in {str(folder)!r}, found none")
    parts = [json.loads(p.read_text()) for p in found]
    sizes = sorted({p["world_size"] for p in parts})
    if len(sizes) != 1:
        raise ValueError(f"folder: expected rank manifests of one run, found world sizes {sizes} in {str(folder)!r}")
    ranks = sorted(p["rank"] for p in parts)
    if ranks != list(range(sizes[0])):
        missing = sorted(set(range(sizes[0])) - set(ranks))
        raise ValueError(f"folder: expected ranks 0..{sizes[0] - 1} in {str(folder)!r}, found {ranks} "
                         f"(missing {missing})")
    header = {k: parts[0][k] for k in _HEADER_KEYS}
    header.update({k: parts[0][k] for k in _OPTIONAL_KEYS if k in parts[0]})
    for p in parts[1:]:
        diff = [k for k in _HEADER_KEYS + _OPTIONAL_KEYS if p.get(k) != header.get(k)]
        if diff:
            raise ValueError(f"folder: expected all ranks to share their settings, found rank {p['rank']} "
                             f"differing in {diff}")
    entries = [e for p in parts for e in p["shards"]]
    if sorted(e["index"] for e in entries) != list(range(header["num_shards"])):
        raise ValueError(f"folder: expected shards 0..{header['num_shards'] - 1} exactly once, found indices "
                         f"{sorted(e['index'] for e in entries)}")
    return _write_manifest(folder / "manifest.json", header, entries)


def read_manifest(folder) -> dict:
    """Read and validate ``folder/manifest.json``."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"folder: expected a sharded synthetic set with manifest.json, found none at "
                                f"{str(path)!r}")
    m = read_format_json(path, "manifest", FORMAT, "synthaug shard manifest")
    missing = [k for k in _HEADER_KEYS + ("shards",) if k not in m]
    if missing:
        raise ValueError(f"manifest: {str(path)!r} is missing field(s) {missing}")
    total = sum(e["count"] for e in m["shards"])
    if total != m["count"] or len(m["shards"]) != m["num_shards"]:
        raise ValueError(f"manifest: expected {m['num_shards']} shards holding count={m['count']} samples, found "
                         f"{len(m['shards'])} shards holding {total}")
    return m


def load_shards(folder, verify: bool = True) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """``(manifest, images uint8 NCHW, labels int64)`` of a sharded set; ``verify`` checks sha256 hashes."""
    folder = Path(folder)
    m = read_manifest(folder)
    shape = (m["channels"], *m["image_size"])
    images, labels = [], []
    for e in m["shards"]:
        path = folder / e["file"]
        if not path.is_file():
            raise FileNotFoundError(f"shard: expected {str(path)!r} listed in the manifest, found no file")
        if verify:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != e["sha256"]:
                raise ValueError(f"shard: {str(path)!r} has sha256 {digest[:16]}..., expected {e['sha256'][:16]}... "
                                 f"from the manifest (modified or corrupt)")
        t = load_safetensors(path)
        x, y = t.get("images"), t.get("labels")
        if x is None or y is None or x.dtype != torch.uint8 or y.dtype != torch.int64:
            raise ValueError(f"shard: expected uint8 'images' and int64 'labels' in {str(path)!r}, found "
                             f"{ {k: str(v.dtype) for k, v in t.items()} }")
        if tuple(x.shape) != (e["count"], *shape) or tuple(y.shape) != (e["count"],):
            raise ValueError(f"shard: expected images {(e['count'], *shape)} and labels ({e['count']},) in "
                             f"{str(path)!r}, found {tuple(x.shape)} and {tuple(y.shape)}")
        images.append(x)
        labels.append(y)
    y = torch.cat(labels)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= m["num_classes"]):
        raise ValueError(f"shard: expected labels in [0, {m['num_classes'] - 1}], found range "
                         f"[{int(y.min())}, {int(y.max())}]")
    return m, torch.cat(images), y
