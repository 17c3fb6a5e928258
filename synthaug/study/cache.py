"""Study results kept by the hash of their full configuration, each stamped with the code version that made it.

A result (one arm of one seed) is saved as ``<root>/<kind>/<hash>.json`` holding ``{"config", "result", "code"}``;
a trained model lives in ``<models_root>/<kind>/<hash>/`` next to the ``study_config.json`` that made it. A changed
setting changes the hash, so a stale result is never reused; a changed *code version* (the package version, and
the git commit of a source checkout) does not, and is caught by :meth:`ResultCache.versions`: a study refuses to
report results of more than one code version unless told to mix them or to rerun the others.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..checks import check_choice
from ..io import atomic_write_bytes

__all__ = ["ResultCache", "check_versions", "code_version", "version_label", "config_hash", "to_jsonable", "write_json",
           "read_json", "VERSION_POLICIES"]

#: What a study does with cached results of another code version: refuse to start, use them (the report lists
#: every version), or recompute them with this one.
VERSION_POLICIES = ("refuse", "mix", "rerun")


def to_jsonable(x):
    """Plain JSON types; NaN and infinities become None."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path, obj) -> Path:
    """Atomic JSON write (temp file, fsync, rename)."""
    return atomic_write_bytes(path, json.dumps(to_jsonable(obj), indent=1).encode())


def read_json(path):
    """The JSON at ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def config_hash(config) -> str:
    """16 hex digits of the sha256 of the canonical JSON of ``config``."""
    canon = json.dumps(to_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """``{"package": "0.1.0", "commit": <sha> | None, "changed": bool | None}``: the installed synthaug, and for a
    git checkout its commit and whether the package's files differ from it (``changed``)."""
    root = Path(__file__).resolve().parents[2]
    commit, changed = None, None
    if (root / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10).stdout.strip() or None
            if commit:
                status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "synthaug"],
                                        capture_output=True, text=True, timeout=10).stdout
                changed = bool(status.strip())
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"package": __version__, "commit": commit, "changed": changed}


def version_label(code: dict | None) -> str:
    """``synthaug 0.1.0 @ 1a2b3c4d5e`` (``+ local changes`` when the checkout differed), or ``not recorded``."""
    if not code:
        return "not recorded"
    commit = f" @ {code['commit'][:10]}" if code.get("commit") else ""
    return f"synthaug {code.get('package', '?')}{commit}{' + local changes' if code.get('changed') else ''}"


class ResultCache:
    """Artefacts keyed by a hash of their full configuration (see the module docstring).

    ``result(kind, config, compute)`` returns the saved result of an identical configuration or computes, saves
    (atomically, with :func:`code_version`) and returns it; ``has(kind, config)`` says whether it is saved;
    ``directory(kind, config)`` is a model folder. ``versions`` counts the saved results by code version.
    ``only_current=True`` treats results of another code version as missing (they are recomputed and replaced).
    """

    def __init__(self, root, models_root=None, *, only_current: bool = False):
        self.root = Path(root)
        self.models_root = Path(models_root) if models_root is not None else self.root
        self.only_current = bool(only_current)

    def _saved(self, kind: str, config: dict) -> dict | None:
        saved = read_json(self.root / kind / f"{config_hash(config)}.json")
        if not saved or saved.get("config") != to_jsonable(config):
            return None
        if self.only_current and saved.get("code") != code_version():
            return None
        return saved

    def has(self, kind: str, config: dict) -> bool:
        return self._saved(kind, config) is not None

    def get(self, kind: str, config: dict) -> dict | None:
        """The saved result of ``config`` (with ``cached: True`` and its ``code_version`` label), or None."""
        saved = self._saved(kind, config)
        return {**saved["result"], "cached": True, "code_version": version_label(saved.get("code"))} if saved \
            else None

    def result(self, kind: str, config: dict, compute: Callable[[], dict]) -> dict:
        saved = self.get(kind, config)
        if saved is not None:
            return saved
        t0 = time.perf_counter()
        result = compute()
        result.setdefault("seconds", round(time.perf_counter() - t0, 2))
        write_json(self.root / kind / f"{config_hash(config)}.json",
                   {"config": config, "result": result, "code": code_version()})
        return {**result, "code_version": version_label(code_version())}

    def directory(self, kind: str, config: dict) -> Path:
        d = self.models_root / kind / config_hash(config)
        saved = read_json(d / "study_config.json")
        if saved is not None and saved != to_jsonable(config):
            shutil.rmtree(d)  # a hash collision with another configuration: never reuse it
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / "study_config.json", config)
        return d

    def versions(self, kinds=None) -> Counter:
        """How many saved results each code version made (:func:`version_label`), over ``kinds`` (default all)."""
        folders = [self.root / k for k in kinds] if kinds is not None else (
            [p for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else [])
        out: Counter = Counter()
        for folder in folders:
            for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                saved = read_json(f)
                if saved and "result" in saved:
                    out[version_label(saved.get("code"))] += 1
        return out


def check_versions(cache: ResultCache, policy: str, kinds=None) -> dict:
    """Apply the code-version ``policy`` (:data:`VERSION_POLICIES`) to what ``cache`` holds, before any work:
    ``refuse`` raises naming every version found when any result was made by another one; ``rerun`` makes the cache
    recompute those; ``mix`` keeps them. Returns ``{version label: number of results}``."""
    check_choice("versions", policy, VERSION_POLICIES)
    found = cache.versions(kinds)
    current = version_label(code_version())
    others = {v: n for v, n in found.items() if v != current}
    if others and policy == "refuse":
        listing = ", ".join(f"{v}: {n} result(s)" for v, n in sorted(others.items()))
        raise ValueError(f"versions: expected cached results of this code version only ({current}), found "
                         f"{listing} in {str(cache.root)!r}; pass versions='rerun' (--versions rerun) to recompute "
                         "them with this version, or versions='mix' (--versions mix) to report them together, "
                         "every version listed in the report")
    cache.only_current = policy == "rerun"
    return dict(found)
