"""Safe file handling: atomic writes, pickle-free state loading, model directories.

A model directory holds ``config.json`` and one ``<net>.safetensors`` per network; :func:`write_nets` and
:func:`read_nets` write and read its ``"nets"`` section, ``{name: {"arch", "kwargs"}}``, from and into the nets'
own recorded specs (:mod:`synthaug.nets.registry`). Training state (optimisers, RNG, step) is a ``torch.save``
file read back only with ``weights_only=True``, so no code from a file is ever executed.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT_NAME = "synthaug"
FORMAT_VERSION = 1


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename.

    If anything fails (disk full, permission) the previous file at ``path`` is left untouched.
    """
    path = Path(path)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create output folder {str(parent)!r}: {e.strerror or e}") from e
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"output folder {str(parent)!r} is not writable")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(parent))
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; models are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and e.errno is not None:
            raise type(e)(e.errno, f"cannot write {str(path)!r}: {e.strerror or e}") from e
        raise
    _fsync_dir(parent)
    return path


def lock_folder(folder: str | Path, message: str) -> int | None:
    """An exclusive, non-blocking flock on ``folder/.lock`` (the folder is created); returns its descriptor (None
    without fcntl, on Windows). Held by another process: ``RuntimeError(message)``. ``os.close`` releases it."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(folder) / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(message) from None
    return fd


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to memory, then :func:`atomic_write_bytes`."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def safe_torch_load(path: str | Path, what: str = "checkpoint") -> Any:
    """Load a ``torch.save`` file with ``weights_only=True``: tensors and plain containers only.

    A file that would need arbitrary unpickling (a crafted payload), or that is truncated or corrupt,
    raises ``ValueError`` naming the file; nothing in it is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: expected a file, found nothing at {str(path)!r}")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{what}: {str(path)!r} is not a plain-tensor synthaug file; it asks to unpickle objects, "
            f"which synthaug refuses ({str(e).splitlines()[0][:200]})"
        ) from None
    except (RuntimeError, EOFError, OSError, KeyError, AttributeError, TypeError) as e:
        raise ValueError(f"{what}: cannot read {str(path)!r}: truncated or corrupt ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None):
    """Atomically write a safetensors file (tensors made contiguous, moved to CPU)."""
    from safetensors.torch import save

    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(clean, metadata=metadata))


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; truncated or non-safetensors files raise a ``ValueError`` naming the file."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights: expected a safetensors file, found nothing at {str(path)!r}")
    try:
        return load(path.read_bytes())
    except Exception as e:  # safetensors raises its own SafetensorError for malformed headers
        raise ValueError(f"weights: {str(path)!r} is not a valid safetensors file (truncated or corrupt: "
                         f"{str(e)[:200]})") from None


def write_model_dir(path: str | Path, config: dict, state_dicts: dict[str, dict[str, torch.Tensor]]) -> Path:
    """Write ``config.json`` plus ``<name>.safetensors`` for each entry of ``state_dicts``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = dict(config)
    config.setdefault("format", FORMAT_NAME)
    config.setdefault("format_version", FORMAT_VERSION)
    from . import __version__

    config.setdefault("synthaug_version", __version__)
    config["weights"] = sorted(f"{name}.safetensors" for name in state_dicts)
    for name, sd in state_dicts.items():
        save_safetensors(sd, path / f"{name}.safetensors", metadata={"format": FORMAT_NAME, "net": name})
    atomic_write_bytes(path / "config.json", json.dumps(config, indent=2, sort_keys=True).encode())
    return path


def write_nets(path: str | Path, config: dict, nets: dict[str, torch.nn.Module]) -> Path:
    """Write a model directory of registered nets: ``config`` plus ``"nets": {name: net.spec}`` (each net's recorded
    architecture and constructor arguments) as config.json, and ``<name>.safetensors`` per net."""
    specs = {}
    for name, net in nets.items():
        spec = getattr(net, "spec", None)
        if spec is None:
            raise TypeError(f"net {name!r}: expected a net registered with synthaug.nets.register (it records the "
                            f"arguments config.json rebuilds it from), found {type(net).__name__}")
        specs[name] = spec
    return write_model_dir(path, {**config, "nets": specs}, {name: net.state_dict() for name, net in nets.items()})


def read_nets(path: str | Path, config: dict) -> dict[str, torch.nn.Module]:
    """Rebuild the nets of ``config["nets"]`` (read from ``path/config.json``) and load their weights; eval mode."""
    from .nets import create_net

    path = Path(path)
    where = str(path / "config.json")
    nets = config.get("nets")
    if not isinstance(nets, dict) or not nets:
        raise ValueError(f"model: {where!r} has no 'nets' section describing the networks")
    out = {}
    for name, spec in nets.items():
        if not isinstance(spec, dict) or "arch" not in spec or not isinstance(spec.get("kwargs", {}), dict):
            raise ValueError(f"model: net {name!r} in {where!r} needs 'arch' and 'kwargs', found {spec!r}")
        try:
            net = create_net(spec["arch"], **spec.get("kwargs", {}))
        except TypeError as e:
            raise ValueError(f"model: net {name!r}: config.json arguments do not fit architecture "
                             f"{spec['arch']!r} ({e})") from None
        load_state_into(net, path / f"{name}.safetensors", name)
        out[name] = net.eval()
    return out


def read_format_json(path: Path, what: str, fmt: str, description: str) -> dict:
    """Parse a JSON file that must be an object whose ``format`` is ``fmt``; errors name the file and the value."""
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{what}: {str(path)!r} is not valid JSON ({e})") from None
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{what}: {str(path)!r} is not a {description} (expected format {fmt!r}, found {found!r})")
    return obj


def read_model_config(path: str | Path, required: tuple[str, ...] = ("kind",),
                      kinds: tuple[str, ...] | None = None, hint: str = "") -> dict:
    """Read and validate ``config.json`` of a synthaug model directory (its ``kind`` among ``kinds`` if given)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model: expected a synthaug model directory, found no directory at {str(path)!r}")
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise ValueError(f"model: {str(path)!r} is not a synthaug model directory (expected config.json, "
                         f"found {sorted(p.name for p in path.iterdir())[:10]})")
    cfg = read_format_json(cfg_path, "model", FORMAT_NAME, "synthaug config")
    if kinds is not None and cfg.get("kind") not in kinds:
        raise ValueError(f"model {str(path)!r}: expected kind in {kinds}, found kind {cfg.get('kind')!r}{hint}")
    missing = [k for k in required if k not in cfg]
    if missing:
        raise ValueError(f"model: {str(cfg_path)!r} is missing required field(s) {missing}")
    return cfg


def load_state_into(module: torch.nn.Module, path: str | Path, name: str) -> None:
    """Load safetensors weights into ``module``; a mismatch names the missing/unexpected/misshaped keys."""
    sd = load_safetensors(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [f"{k}: expected {tuple(own[k].shape)}, found {tuple(sd[k].shape)}"
              for k in own.keys() & sd.keys() if own[k].shape != sd[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(
            f"weights for {name!r} in {str(path)!r} do not fit the architecture in config.json: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
            f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, shape mismatches {shapes[:5]}"
        )
    module.load_state_dict(sd)
