"""Cases shared by the reliability tests (``tests/test_reliability.py``) and the reliability benchmark
(``benchmarks/reliability.py``): tiny in-process recipes, fault injectors (full disk, non-finite losses and
weights), the two tables of inputs the library must refuse clearly (``MODEL_FILE_ROWS``, ``BAD_INPUT_ROWS``,
walked through :func:`make_assets` and :func:`check_row`), the planted-copy bank of the memorisation guard,
and helpers to launch and watch ``benchmarks/train_tiny.py`` training processes.

Both import this module, so the benchmark's counts are the tests' rows, and no benchmark imports a test file.
Nothing here needs pytest.
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import synthaug.io as sio  # noqa: E402
from synthaug.augment import MixedDataset, SyntheticDataset  # noqa: E402
from synthaug.data import (ImageDataset, PairedDataset, from_arrays, load_breastmnist, load_digits,  # noqa: E402
                           load_image_dir, load_image_folder, load_npz, load_unpaired)
from synthaug.models import GeneratorModel, TranslatorModel, load_model  # noqa: E402
from synthaug.nets import create_net  # noqa: E402
from synthaug.train import CGANConfig, CGANRecipe, CycleGANConfig, CycleGANRecipe, Trainer  # noqa: E402

SCRIPT = REPO / "benchmarks" / "train_tiny.py"

TINY_G = {"base_channels": 8, "max_channels": 16, "z_dim": 8, "embed_dim": 4}
TINY_D = {"base_channels": 8, "max_channels": 16}
CYCLE_G = {"ngf": 8, "n_blocks": 2}
CYCLE_D = {"ndf": 8, "n_layers": 2}


def load_train_tiny():
    """``benchmarks/train_tiny.py`` as a module (its recipe builder is shared by the subprocess checks)."""
    from benchmarks import train_tiny

    return train_tiny


def strip(rows: list[dict]) -> list[dict]:
    """Metrics rows without the wall-clock ``time`` field (everything else must match bit for bit)."""
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


# ============================================================================ tiny recipes, in process
def toy_cgan(seed: int = 0) -> CGANRecipe:
    rng = np.random.default_rng(0)
    labels = np.arange(32) % 2
    imgs = rng.uniform(0.0, 0.4, size=(32, 16, 16, 1)).astype(np.float32)
    imgs[labels == 1] += 0.5
    cfg = CGANConfig(g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), batch_size=8)
    return CGANRecipe(from_arrays(imgs, labels, class_names=["dark", "bright"]), cfg, device="cpu", seed=seed)


def toy_cyclegan(steps: int, seed: int = 0) -> CycleGANRecipe:
    rng = np.random.default_rng(0)
    a = rng.uniform(0.0, 0.3, size=(8, 16, 16, 1)).astype(np.float32)
    a[:, 4:12, 4:12] = 0.9
    cfg = CycleGANConfig(steps=steps, g_kwargs=dict(CYCLE_G), d_kwargs=dict(CYCLE_D), pool_size=4)
    return CycleGANRecipe(from_arrays(a), from_arrays(1.0 - a[::-1]), cfg, device="cpu", seed=seed)


def trainer(recipe, out: Path, steps: int, ckpt_every: int = 5) -> Trainer:
    return Trainer(recipe, out, steps, log_every=1, sample_every=10_000, ckpt_every=ckpt_every, progress=False)


def same_weights(a: Path, b: Path) -> bool:
    """Two safetensors files hold the same tensors bit for bit (the files' bytes may differ: safetensors writes
    its metadata map in a per-process hash order)."""
    ta, tb = sio.load_safetensors(a), sio.load_safetensors(b)
    return ta.keys() == tb.keys() and all(ta[k].dtype == tb[k].dtype and torch.equal(ta[k], tb[k]) for k in ta)


def all_finite(state) -> bool:
    """True if every floating tensor nested in ``state`` is finite."""
    if isinstance(state, torch.Tensor):
        return not state.is_floating_point() or bool(torch.isfinite(state).all())
    if isinstance(state, dict):
        return all(all_finite(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return all(all_finite(v) for v in state)
    return True


# ============================================================================ 1. full disk / unwritable output
class FullDiskOS:
    """Stands in for ``os`` inside synthaug.io only: once armed, writes through ``os.fdopen`` fail with ENOSPC
    (or renames onto ``latest.json`` fail, with ``pointer_only``), like a disk that just filled up."""

    def __init__(self, pointer_only: bool = False):
        self.armed, self.pointer_only, self.failures = False, pointer_only, 0

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, mode="r", *args, **kw):
        f = os.fdopen(fd, mode, *args, **kw)
        if not self.armed or self.pointer_only:
            return f
        outer = self

        class _Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                outer.failures += 1
                f.write(data[: len(data) // 3])  # part of it landed before the disk filled
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def flush(self):
                f.flush()

            def fileno(self):
                return f.fileno()

        return _Full()

    def replace(self, src, dst):
        if self.armed and self.pointer_only and Path(dst).name == "latest.json":
            self.failures += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.replace(src, dst)


def arm_after(recipe, fake: FullDiskOS, step_index: int) -> None:
    original = recipe.train_step

    def step(i):
        out = original(i)
        if i == step_index:
            fake.armed = True
        return out

    recipe.train_step = step

# ============================================================================ 2. divergence
def inject(recipe, at: int, *, once: bool = True, key: str | None = None, weights: bool = False):
    """Wrap ``recipe.train_step``: at step index ``at`` (and later, unless ``once``) make a loss non-finite,
    or (``weights``) poison a generator weight after the update while the reported losses stay finite."""
    original, fired = recipe.train_step, {"n": 0}

    def step(i):
        out = original(i)
        if i >= at and (not once or fired["n"] == 0):
            fired["n"] += 1
            if weights:
                net = recipe.G if hasattr(recipe, "G") else recipe.nets["G_A2B"]
                with torch.no_grad():
                    next(net.parameters()).view(-1)[0] = float("nan")
            else:
                out = dict(out)
                out[key or next(iter(out))] = float("nan") if fired["n"] % 2 else float("inf")
        return out

    recipe.train_step = step
    return fired


# ============================================================================ 3 + 4. tables of hostile / bad inputs
@dataclass(frozen=True)
class Row:
    """One input the library must refuse clearly (``exc`` + ``match``) or load correctly (``exc=None`` +
    ``check``). ``build(tmp, assets)`` writes what is needed and returns the call to make."""

    id: str
    api: str
    fed: str
    build: Callable[[Path, dict], Callable[[], Any]]
    exc: type | tuple | None
    match: str = ""
    check: Callable[[Any], None] | None = None
    xfail: str | None = None
    payload: bool = False


class Payload:
    """Unpickling this runs Python code that creates ``marker``: proof of execution if the file appears."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('payload executed')",))


def marker_path(tmp: Path) -> Path:
    return tmp / "PAYLOAD_EXECUTED"


def gen_model(path: Path, image_size=28, channels=1, num_classes=2, names=("a", "b", "c")) -> Path:
    kw = dict(num_classes=num_classes, image_size=image_size, channels=channels, z_dim=16, base_channels=8,
              max_channels=16)
    torch.manual_seed(0)
    cfg = {"format": "synthaug", "kind": "cgan", "image_size": image_size, "channels": channels,
           "num_classes": num_classes, "class_names": list(names[:num_classes]),
           "nets": {"generator": {"arch": "dcgan", "kwargs": kw}}}
    GeneratorModel(create_net("dcgan", **kw), cfg, device="cpu").save_pretrained(path)
    return path


def make_assets(folder: Path) -> dict:
    """What the rows start from: a 28 px gray generator directory, its 3-channel twin, a 16 px translator
    directory, and a short cGAN run (checkpoints + exported model)."""
    folder = Path(folder)
    gen = gen_model(folder / "gen28")
    gen_rgb = gen_model(folder / "gen28_rgb", channels=3)
    tnet = create_net("resnet", in_channels=1, out_channels=1, ngf=4, n_blocks=1)
    translator = TranslatorModel({"G_A2B": tnet}, {"format": "synthaug", "kind": "cyclegan", "image_size": 16,
                                                    "channels_a": 1, "channels_b": 1,
                                                    "nets": {"G_A2B": {"arch": "resnet", "kwargs": {
                                                        "in_channels": 1, "out_channels": 1, "ngf": 4,
                                                        "n_blocks": 1}}}}, device="cpu")
    trans_dir = translator.save_pretrained(folder / "trans16")
    run = folder / "run"
    trainer(toy_cgan(), run, 3, ckpt_every=1).fit()
    return {"gen": gen, "gen_rgb": gen_rgb, "translator": trans_dir, "run": run,
            "ckpt": sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1], "model": run / "model"}


def _copy_model(assets: dict, tmp: Path, edit_config=None, name="m") -> Path:
    d = tmp / name
    shutil.copytree(assets["gen"], d)
    if edit_config is not None:
        cfg = json.loads((d / "config.json").read_text())
        edit_config(cfg)
        (d / "config.json").write_text(json.dumps(cfg))
    return d


def _run_with_checkpoint(assets: dict, tmp: Path, data: bytes, name="ckpt-0000009.pt") -> Path:
    """A copy of the cGAN run whose newest checkpoint (pointed at by latest.json) is ``data``."""
    run = tmp / "run"
    shutil.copytree(assets["run"], run)
    (run / "checkpoints" / name).write_bytes(data)
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"file": name, "step": 9}))
    return run


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _resume(run: Path) -> Callable[[], Any]:
    return lambda: trainer(toy_cgan(), run, 12, ckpt_every=1).fit()


def _set(key, value):
    return lambda cfg: cfg.__setitem__(key, value)


def _del(key):
    return lambda cfg: cfg.pop(key)


def _nets_kwarg(key, value):
    return lambda cfg: cfg["nets"]["generator"]["kwargs"].__setitem__(key, value)


def _nets_arch(value):
    return lambda cfg: cfg["nets"]["generator"].__setitem__("arch", value)


def _bad_weights(tmp, assets):
    d = _copy_model(assets, tmp)
    shutil.copy(assets["gen_rgb"] / "generator.safetensors", d / "generator.safetensors")
    return lambda: load_model(d)


def _file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _weights(assets, tmp, data_fn):
    d = _copy_model(assets, tmp)
    data = data_fn((d / "generator.safetensors").read_bytes())
    if data is None:
        (d / "generator.safetensors").unlink()
    else:
        (d / "generator.safetensors").write_bytes(data)
    return lambda: GeneratorModel.from_pretrained(d)


def _config_bytes(assets, tmp, data: bytes):
    d = _copy_model(assets, tmp)
    (d / "config.json").write_bytes(data)
    return lambda: load_model(d)


def _load_ckpt(assets, tmp, data: bytes):
    path = _file(tmp / "ckpt-0000009.pt", data)
    return lambda: trainer(toy_cgan(), tmp / "fresh", 12).load_checkpoint(path)


def _npz_payload(tmp: Path):
    path = tmp / "payload.npz"
    np.savez(path, train_images=np.array([Payload(marker_path(tmp))], dtype=object),
             train_labels=np.zeros((1, 1), np.int64), val_images=np.zeros((1, 2, 2), np.uint8))
    return lambda: load_npz(path)


MODEL_FILE_ROWS: list[Row] = [
    # --- crafted pickles: nothing may run ---------------------------------------------------------------------
    Row("checkpoint-torch-pickle-payload", "Trainer.fit (resume)", "torch.save file whose pickle calls exec()",
        lambda tmp, a: _resume(_run_with_checkpoint(a, tmp, _torch_bytes(
            {"format": "synthaug-checkpoint", "state": Payload(marker_path(tmp))}))),
        ValueError, r"checkpoint: '.*ckpt-0000009\.pt' is not a plain-tensor synthaug file; it asks to unpickle "
                    r"objects, which synthaug refuses", payload=True),
    Row("checkpoint-raw-pickle-payload", "Trainer.load_checkpoint", "plain pickle (protocol 4) calling exec()",
        lambda tmp, a: _load_ckpt(a, tmp, pickle.dumps({"format": "synthaug-checkpoint",
                                                        "x": Payload(marker_path(tmp))}, protocol=4)),
        ValueError, r"checkpoint: '.*' is not a plain-tensor synthaug file.*refuses|truncated or corrupt",
        payload=True),
    Row("safetensors-raw-pickle-payload", "load_model", "generator.safetensors that is a pickle calling exec()",
        lambda tmp, a: _weights(a, tmp, lambda _: pickle.dumps(Payload(marker_path(tmp)))),
        ValueError, r"weights: '.*generator\.safetensors' is not a valid safetensors file", payload=True),
    Row("safetensors-torch-pickle-payload", "GeneratorModel.from_pretrained",
        "generator.safetensors that is a torch.save zip with a payload",
        lambda tmp, a: _weights(a, tmp, lambda _: _torch_bytes({"w": Payload(marker_path(tmp))})),
        ValueError, r"weights: '.*generator\.safetensors' is not a valid safetensors file", payload=True),
    Row("config-json-pickle-payload", "load_model", "config.json that is a pickle calling exec()",
        lambda tmp, a: _config_bytes(a, tmp, pickle.dumps(Payload(marker_path(tmp)))),
        ValueError, r"model: '.*config\.json' is not valid JSON", payload=True),
    Row("npz-object-array-payload", "load_npz", "npz whose images are an object array holding a payload",
        lambda tmp, a: _npz_payload(tmp),
        ValueError, r"expected a valid \.npz file, could not read '.*payload\.npz': Object arrays cannot be loaded",
        payload=True),
    # --- damaged or mismatched files ------------------------------------------------------------------------
    Row("checkpoint-truncated", "Trainer.load_checkpoint", "the first half of a real checkpoint",
        lambda tmp, a: _load_ckpt(a, tmp, a["ckpt"].read_bytes()[: a["ckpt"].stat().st_size // 2]),
        ValueError, r"checkpoint: cannot read '.*ckpt-0000009\.pt': truncated or corrupt"),
    Row("checkpoint-not-synthaug", "Trainer.load_checkpoint", "a torch.save dict of tensors without the format tag",
        lambda tmp, a: _load_ckpt(a, tmp, _torch_bytes({"weights": torch.zeros(3)})),
        ValueError, r"checkpoint: '.*' is not a synthaug training checkpoint"),
    Row("checkpoint-missing-fields", "Trainer.load_checkpoint", "format tag present, every other field missing",
        lambda tmp, a: _load_ckpt(a, tmp, _torch_bytes({"format": "synthaug-checkpoint"})),
        ValueError, r"checkpoint: '.*' is incomplete: missing field\(s\) \['recipe', 'recipe_config'"),
    Row("latest-pointer-garbage", "Trainer.fit (resume)", "checkpoints/latest.json that is not JSON",
        lambda tmp, a: _resume(_garbage_pointer(a, tmp)),
        ValueError, r"checkpoint pointer '.*latest\.json' is unreadable"),
    Row("latest-pointer-dangling", "Trainer.fit (resume)", "latest.json naming a checkpoint that does not exist",
        lambda tmp, a: _resume(_dangling_pointer(a, tmp)),
        FileNotFoundError, r"checkpoint: expected a file, found nothing at '.*ckpt-0000099\.pt'"),
    Row("safetensors-truncated-header", "GeneratorModel.from_pretrained", "the first 6 bytes of the weights",
        lambda tmp, a: _weights(a, tmp, lambda b: b[:6]),
        ValueError, r"weights: '.*generator\.safetensors' is not a valid safetensors file \(truncated or corrupt"),
    Row("safetensors-missing", "GeneratorModel.from_pretrained", "config.json without generator.safetensors",
        lambda tmp, a: _weights(a, tmp, lambda b: None),
        FileNotFoundError, r"weights: expected a safetensors file, found nothing at '.*generator\.safetensors'"),
    Row("weights-of-another-architecture", "load_model", "3-channel generator weights under a 1-channel config",
        _bad_weights, ValueError,
        r"do not fit the architecture in config\.json:.*to_img\.weight: expected \(1, 8, 3, 3\), found \(3, 8, 3, 3\)"),
    Row("config-image-size-abc", "load_model", 'config.json with "image_size": "abc"',
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _set("image_size", "abc"))),
        ValueError, r"config\.json': image_size: expected a positive int, found 'abc'"),
    Row("config-channels-wrong-type", "load_model", 'config.json with "channels": "x"',
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _set("channels", "x"))),
        ValueError, r"config\.json': channels: expected a positive int, found 'x'"),
    Row("config-class-names-wrong-type", "load_model", 'config.json with "class_names": 5',
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _set("class_names", 5))),
        ValueError, r"config\.json': class_names: expected a list of strings, found 5"),
    Row("config-channels-wrong-type-by-path", "SyntheticDataset(path)", 'config.json with "channels": "x"',
        lambda tmp, a: (lambda d: lambda: SyntheticDataset(d, n=2))(_copy_model(a, tmp, _set("channels", "x"))),
        ValueError, r"channels: expected a positive int, found 'x'"),
    Row("config-class-names-wrong-type-by-path", "SyntheticDataset(path)", 'config.json with "class_names": 5',
        lambda tmp, a: (lambda d: lambda: SyntheticDataset(d, n=2))(_copy_model(a, tmp, _set("class_names", 5))),
        (ValueError, TypeError), r"class_names: expected a list of strings, found 5"),
    Row("config-num-classes-disagrees", "load_model", '"num_classes": 3 with 2 class_names and a 2-class net',
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _set("num_classes", 3))),
        ValueError, r"class_names: expected 3 names \(num_classes\), found 2"),
    Row("config-nets-missing", "load_model", "config.json without the 'nets' section",
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _del("nets"))),
        ValueError, r"config\.json' is missing required field\(s\) \['nets'\]"),
    Row("config-kind-unknown", "load_model", 'config.json with "kind": "vae"',
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _set("kind", "vae"))),
        ValueError, r"expected kind in \(.*'cgan'.*'cyclegan'.*\), found 'vae'"),
    Row("config-not-an-object", "load_model", "config.json holding a JSON list",
        lambda tmp, a: _config_bytes(a, tmp, b"[1, 2, 3]"),
        ValueError, r"is not a synthaug config \(expected format 'synthaug', found 'list'\)"),
    Row("config-other-format", "load_model", 'config.json with "format": "diffusers"',
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _set("format", "diffusers"))),
        ValueError, r"is not a synthaug config \(expected format 'synthaug', found 'diffusers'\)"),
    Row("config-arch-unknown", "load_model", 'nets.generator.arch = "evil"',
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _nets_arch("evil"))),
        ValueError, r"arch: expected one of \[.*'dcgan'.*\], found 'evil'"),
    Row("config-net-kwarg-wrong-type", "load_model", 'nets.generator.kwargs.image_size = "abc"',
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _nets_kwarg("image_size", "abc"))),
        ValueError, r"image_size: expected one of \[.*\], found 'abc'"),
    Row("config-net-kwarg-unknown", "load_model", 'nets.generator.kwargs.depth = 3 (no such argument)',
        lambda tmp, a: (lambda d: lambda: load_model(d))(_copy_model(a, tmp, _nets_kwarg("depth", 3))),
        ValueError, r"config\.json arguments do not fit architecture 'dcgan'.*depth"),
    Row("non-synthaug-directory", "load_model", "a folder of unrelated files",
        lambda tmp, a: (lambda d: lambda: load_model(d))(_plain_folder(tmp)),
        ValueError, r"is not a synthaug model directory \(expected config\.json, found \['notes\.txt', "
                    r"'weights\.bin'\]\)"),
    Row("translator-as-generator", "SyntheticDataset", "a CycleGAN translator directory",
        lambda tmp, a: lambda: SyntheticDataset(a["translator"], n=2),
        ValueError, r"expected a generator model directory \(kind in \['cgan'\]\), found kind 'cyclegan'"),
]


def _garbage_pointer(assets, tmp):
    run = tmp / "run"
    shutil.copytree(assets["run"], run)
    (run / "checkpoints" / "latest.json").write_text("{not json")
    return run


def _dangling_pointer(assets, tmp):
    run = tmp / "run"
    shutil.copytree(assets["run"], run)
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"file": "ckpt-0000099.pt", "step": 99}))
    return run


def _plain_folder(tmp: Path) -> Path:
    d = tmp / "downloads"
    d.mkdir()
    (d / "weights.bin").write_bytes(b"\x00" * 16)
    (d / "notes.txt").write_text("not a model")
    return d


# --- bad-input matrix --------------------------------------------------------------------------------------
def toy_data(n=8, channels=1, size=28, labels=None, names=None) -> ImageDataset:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(n, channels, size, size, generator=g) * 2 - 1
    y = torch.arange(n) % 2 if labels is None else torch.as_tensor(labels)
    return ImageDataset(x, y, names)


class _ListDataset(torch.utils.data.Dataset):
    """A plain torch dataset of (image, label) pairs, unchecked, as users bring them."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")
    return path


def _folder_of(tmp: Path, layout: dict[str, list[np.ndarray]]) -> Path:
    for cls, arrays in layout.items():
        (tmp / "root" / cls).mkdir(parents=True, exist_ok=True)
        for i, arr in enumerate(arrays):
            _png(tmp / "root" / cls / f"{i}.png", arr)
    return tmp / "root"


def _gray(h=8, w=8, v=100):
    return np.full((h, w), v, np.uint8)


def _truncated_jpeg(tmp: Path) -> Path:
    folder = tmp / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(folder / "ok.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(folder / "full.jpg", quality=90)
    data = (folder / "full.jpg").read_bytes()
    (folder / "full.jpg").unlink()
    (folder / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])  # header intact, scan data cut short
    return folder


DEEP = np.array([[0, 1000, 32768, 65535], [7, 40000, 12345, 65534]], dtype=np.uint16)


def _deep_png(tmp: Path) -> Path:
    folder = tmp / "deep"
    folder.mkdir()
    Image.fromarray(DEEP).save(folder / "d.png")
    assert Image.open(folder / "d.png").mode.startswith("I;16")
    return folder


def _check_deep(ds: ImageDataset) -> None:
    assert ds.images.shape == (1, 1, 2, 4)
    expected = torch.from_numpy(DEEP / 65535.0 * 2 - 1).float()
    assert torch.allclose(ds.images[0, 0], expected, atol=1e-6)  # full 16-bit precision, not 8-bit
    assert len(torch.unique(ds.images)) == DEEP.size


def _rgba_folder(tmp: Path) -> Path:
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[...] = (0, 0, 255, 255)  # opaque blue
    arr[0, 0] = (255, 0, 0, 0)  # fully transparent red -> white
    arr[1, 1] = (0, 0, 0, 128)  # half-transparent black -> mid gray
    return _folder_of(tmp, {"x": [arr]})


def _check_rgba(ds: ImageDataset) -> None:
    x = ds.images[0]
    assert ds.images.shape == (1, 3, 4, 4)  # documented rule: composited on white, then RGB
    assert x[:, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert x[:, 2, 2].tolist() == [-1.0, -1.0, 1.0]
    assert torch.allclose((x[:, 1, 1] + 1) * 127.5, torch.full((3,), 127.0), atol=1.0)


def _cyclegan(a, b):
    cfg = CycleGANConfig(steps=2, g_kwargs=dict(CYCLE_G), d_kwargs=dict(CYCLE_D))
    return lambda: CycleGANRecipe(a, b, cfg, device="cpu")


def _mixed(real, synthetic, **kw):
    return lambda: MixedDataset(real, synthetic, **({"ratio": 0.5} | kw))


def _translator(a) -> TranslatorModel:
    return TranslatorModel.from_pretrained(a["translator"], device="cpu")


BAD_INPUT_ROWS: list[Row] = [
    # --- channels ---------------------------------------------------------------------------------------------
    Row("channels-rgb-into-gray-generator", "MixedDataset", "RGB 28 px real data + a 1-channel generator",
        lambda tmp, a: _mixed(toy_data(channels=3), a["gen"]),
        ValueError, r"expected channels=3 \(from the real data\), found channels=1 in the generator"),
    Row("channels-cyclegan-domains-1-vs-3", "CycleGANRecipe", "domain A gray, domain B RGB",
        lambda tmp, a: _cyclegan(toy_data(channels=1, size=16), toy_data(channels=3, size=16)),
        ValueError, r"expected the same channel count in A and B.*found A=1 and B=3"),
    Row("channels-translate-rgb-into-gray-translator", "TranslatorModel.translate", "RGB batch, channels_a=1",
        lambda tmp, a: lambda: _translator(a).translate(torch.zeros(2, 3, 16, 16)),
        ValueError, r"images: expected 1 channel\(s\), found 3"),
    Row("channels-gray-real-into-rgb-generator", "MixedDataset", "RGB generator + gray real data",
        lambda tmp, a: _mixed(toy_data(channels=1), a["gen_rgb"]),
        ValueError, r"expected channels=1 \(from the real data\), found channels=3 in the generator"),
    # --- sizes ------------------------------------------------------------------------------------------------
    Row("size-real-32-into-generator-28", "MixedDataset", "32 px real data + a 28 px generator",
        lambda tmp, a: _mixed(toy_data(size=32), a["gen"]),
        ValueError, r"expected image_size=\(32, 32\) \(from the real data\), found image_size=\(28, 28\)"),
    Row("size-cyclegan-domains-32-vs-16", "CycleGANRecipe", "domain A 32 px, domain B 16 px",
        lambda tmp, a: _cyclegan(toy_data(size=32), toy_data(size=16)),
        ValueError, r"expected square images of one size in A and B, found A \(32, 32\) and B \(16, 16\)"),
    Row("size-folder-of-mixed-sizes", "load_image_dir(size=None)", "8x8 and 8x12 PNGs, no resize",
        lambda tmp, a: (lambda d: lambda: load_image_dir(d, size=None, channels=1))(
            _folder_of(tmp, {"x": [_gray(8, 8), _gray(8, 12)]}) / "x"),
        ValueError, r"size: expected one image size in '.*' \(pass size= to resize\), found 2 shapes"),
    Row("size-paired-a-16-b-32", "PairedDataset", "A at 16 px, B at 32 px",
        lambda tmp, a: lambda: PairedDataset(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 32, 32)),
        ValueError, r"b: expected the spatial size of a \(16, 16\), found \(32, 32\)"),
    # --- classes and labels -----------------------------------------------------------------------------------
    Row("class-empty-in-cgan", "CGANRecipe", "3 class names, no image of class 'b'",
        lambda tmp, a: lambda: CGANRecipe(toy_data(6, size=16, labels=[0, 2, 0, 2, 0, 2], names=["a", "b", "c"]),
                                          CGANConfig(g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D)), device="cpu"),
        ValueError, r"data: expected every class to have images, found none for \['b'\]"),
    Row("class-empty-folder", "load_image_folder", "root/cats has PNGs, root/dogs is empty",
        lambda tmp, a: (lambda r: lambda: load_image_folder(r, size=8))(
            _folder_of(tmp, {"cats": [_gray()], "dogs": []})),
        ValueError, r"expected image files .* in class folder '.*dogs', found none"),
    Row("labels-out-of-range", "ImageDataset", "label 5 with 2 class names",
        lambda tmp, a: lambda: ImageDataset(torch.zeros(3, 1, 4, 4), [0, 1, 5], ["a", "b"]),
        ValueError, r"labels: expected class indices in \[0, 2\) for 2 class names, found maximum 5"),
    Row("labels-negative", "from_arrays", "label -1",
        lambda tmp, a: lambda: from_arrays(np.zeros((2, 4, 4, 1), np.uint8), [0, -1]),
        ValueError, r"labels: expected class indices >= 0, found minimum -1"),
    Row("labels-out-of-range-sample", "GeneratorModel.sample", "labels [0, 7] for a 2-class generator",
        lambda tmp, a: lambda: GeneratorModel.from_pretrained(a["gen"]).sample(2, labels=[0, 7]),
        ValueError, r"labels: expected class indices in \[0, 1\], found range \[0, 7\]"),
    Row("labels-real-beyond-generator", "MixedDataset", "a torch dataset with label 4, 2-class generator",
        lambda tmp, a: _mixed(_ListDataset(torch.zeros(3, 1, 28, 28), [0, 1, 4]), a["gen"]),
        ValueError, r"expected num_classes=5 \(from the real data\), found num_classes=2 in the generator"),
    Row("classes-generator-2-real-3", "MixedDataset", "3-class real data + a 2-class generator",
        lambda tmp, a: _mixed(toy_data(6, labels=[0, 1, 2, 0, 1, 2]), a["gen"]),
        ValueError, r"expected num_classes=3 \(from the real data\), found num_classes=2 in the generator"),
    Row("classes-names-differ", "MixedDataset", "real classes ['b', 'a'], generator ['a', 'b']",
        lambda tmp, a: _mixed(toy_data(names=["b", "a"]), a["gen"]),
        ValueError, r"expected class_names=\['b', 'a'\] \(from the real data\), found class_names=\['a', 'b'\]"),
    # --- non-finite pixels ------------------------------------------------------------------------------------
    Row("pixels-nan-from-arrays", "from_arrays", "float array with a NaN",
        lambda tmp, a: lambda: from_arrays(np.where(np.eye(4)[None, :, :, None] > 0, np.nan, 0.5).astype(np.float32)),
        ValueError, r"images: expected finite pixel values, found 4 NaN/Inf value\(s\)"),
    Row("pixels-inf-image-dataset", "ImageDataset", "tensor with +Inf",
        lambda tmp, a: lambda: ImageDataset(torch.tensor([[[[0.0, float("inf")]]]]), [0]),
        ValueError, r"images: expected finite pixel values, found 1 NaN/Inf value\(s\)"),
    Row("pixels-nan-translate", "TranslatorModel.translate", "a batch with NaN",
        lambda tmp, a: lambda: _translator(a).translate(torch.full((1, 1, 16, 16), float("nan"))),
        ValueError, r"images: expected finite pixel values, found 256 NaN/Inf value\(s\)"),
    Row("pixels-nan-real-items-mixed", "MixedDataset", "a torch dataset whose images are NaN",
        lambda tmp, a: _mixed(_ListDataset(torch.full((4, 1, 28, 28), float("nan")), [0, 1, 0, 1]), a["gen"]),
        ValueError, r"expected finite pixel values, found .*NaN"),
    # --- files ------------------------------------------------------------------------------------------------
    Row("file-truncated-jpeg", "load_image_dir", "a JPEG cut to 2/3 of its bytes",
        lambda tmp, a: (lambda d: lambda: load_image_dir(d, size=16))(_truncated_jpeg(tmp)),
        ValueError, r"path: could not read image file '.*cut\.jpg': OSError: image file is truncated"),
    Row("file-truncated-jpeg-skip", "load_image_dir(on_error='skip')", "the same folder, skipping bad files",
        lambda tmp, a: (lambda d: lambda: _collect_warnings(lambda: load_image_dir(d, size=16, on_error="skip")))(
            _truncated_jpeg(tmp)),
        None, check=lambda res: (len(res[0]) == 1 and any("cut.jpg" in w for w in res[1])) or _fail(res)),
    Row("file-16-bit-png", "load_image_dir(channels=1)", "a 16-bit gray PNG (positive: loads at full precision)",
        lambda tmp, a: (lambda d: lambda: load_image_dir(d, size=None, channels=1))(_deep_png(tmp)),
        None, check=_check_deep),
    Row("file-rgba-png", "load_image_folder(channels=3)", "an RGBA PNG (positive: composited on white)",
        lambda tmp, a: (lambda r: lambda: load_image_folder(r, size=None, channels=3))(_rgba_folder(tmp)),
        None, check=_check_rgba),
    Row("folder-empty", "load_image_dir", "an empty folder",
        lambda tmp, a: (lambda d: lambda: load_image_dir(d, size=8))(_mkdir(tmp / "empty")),
        ValueError, r"path: expected image files \(.*'\.png'.*\) in '.*empty', found none"),
    Row("folder-empty-domain", "load_unpaired", "domain B folder with no images",
        lambda tmp, a: (lambda r: lambda: load_unpaired(r / "x", _mkdir(tmp / "B"), size=8))(
            _folder_of(tmp, {"x": [_gray()]})),
        ValueError, r"b: expected image files in '.*B' or its class folders, found none"),
    Row("npz-unknown-keys", "load_npz", "an npz holding only 'foo'",
        lambda tmp, a: (lambda p: lambda: load_npz(p))(_npz(tmp, foo=np.zeros(3))),
        ValueError, r"expected MedMNIST keys .* or digits keys .* found \['foo'\]"),
    Row("npz-digits-missing-labels", "load_digits", "an npz with 'images' but no 'labels'",
        lambda tmp, a: (lambda p: lambda: load_digits(p))(_npz(tmp, images=np.zeros((2, 4, 4), np.uint8))),
        ValueError, r"expected keys \['images', 'labels'\] in '.*', found keys \['images'\] \(missing \['labels'\]\)"),
    # --- models where data was expected -------------------------------------------------------------------------
    Row("model-non-synthaug-dir-load-model", "load_model", "a folder of unrelated files",
        lambda tmp, a: (lambda d: lambda: load_model(d))(_plain_folder(tmp)),
        ValueError, r"is not a synthaug model directory \(expected config\.json, found \["),
    Row("model-non-synthaug-dir-synthetic", "SyntheticDataset", "a folder of unrelated files as the generator",
        lambda tmp, a: (lambda d: lambda: SyntheticDataset(d, n=4))(_plain_folder(tmp)),
        ValueError, r"is not a synthaug model directory \(expected config\.json, found \["),
    Row("model-non-synthaug-dir-mixed", "MixedDataset", "a folder of unrelated files as the generator",
        lambda tmp, a: (lambda d: _mixed(toy_data(), d))(_plain_folder(tmp)),
        ValueError, r"is not a synthaug model directory \(expected config\.json, found \["),
    Row("model-missing-dir", "TranslatorModel.from_pretrained", "a path that does not exist",
        lambda tmp, a: lambda: TranslatorModel.from_pretrained(tmp / "nope"),
        FileNotFoundError, r"expected a synthaug model directory, found no directory at '.*nope'"),
    # --- memorisation guard arguments ------------------------------------------------------------------------
    Row("guard-on-the-fly", "SyntheticDataset", "drop_near_copies with mode='on_the_fly'",
        lambda tmp, a: lambda: SyntheticDataset(a["gen"], n=4, mode="on_the_fly", drop_near_copies=0.3,
                                                reference=toy_data()),
        ValueError, r"drop_near_copies: expected mode='memory' .*found mode='on_the_fly'"),
    Row("guard-reference-wrong-channels", "SyntheticDataset", "RGB reference for a gray generator",
        lambda tmp, a: lambda: SyntheticDataset(a["gen"], n=4, drop_near_copies=0.3, reference=toy_data(channels=3)),
        ValueError, r"reference: expected 1 channel\(s\), found 3"),
    Row("guard-reference-missing", "SyntheticDataset", "drop_near_copies without reference",
        lambda tmp, a: lambda: SyntheticDataset(a["gen"], n=4, drop_near_copies=0.3),
        TypeError, r"reference: expected the real training images .* found NoneType"),
    Row("guard-threshold-out-of-range", "SyntheticDataset", "drop_near_copies=2",
        lambda tmp, a: lambda: SyntheticDataset(a["gen"], n=4, drop_near_copies=2, reference=toy_data()),
        ValueError, r"drop_near_copies: expected a distance-ratio threshold in \(0, 1\] .*found 2"),
]


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _npz(tmp: Path, **arrays) -> Path:
    p = tmp / "data.npz"
    np.savez(p, **arrays)
    return p


def _collect_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught]


def _fail(res):
    raise AssertionError(f"unexpected result {res!r}")


def check_row(row: Row, tmp: Path, assets: dict) -> tuple[bool, str]:
    """Run one row outside pytest: ``(ok, what happened)``. ``ok`` means refused with the expected type and a
    message matching ``row.match`` (or, for a positive row, loaded and passed ``row.check``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    call = row.build(tmp, assets)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except Exception as e:  # noqa: BLE001 - the row decides what counts
        msg = f"{type(e).__name__}: {e}"
        if row.exc is None:
            return False, f"expected to load, raised {msg}"
        if not isinstance(e, row.exc):
            return False, f"expected {getattr(row.exc, '__name__', row.exc)}, raised {msg}"
        if not re.search(row.match, str(e), flags=re.S):
            return False, f"raised {msg!r}, which does not match {row.match!r}"
        return True, msg
    if row.exc is not None:
        return False, f"accepted silently (expected {getattr(row.exc, '__name__', row.exc)})"
    try:
        row.check(result)
    except AssertionError as e:
        return False, f"loaded, but the check failed: {e}"
    return True, "loaded as documented"


# ============================================================================ 5. memorisation guard
class ReplayGenerator(torch.nn.Module):
    """A stand-in generator that returns a fixed bank of images in order (and records the labels asked for)."""

    def __init__(self, bank: torch.Tensor):
        super().__init__()
        self.bank, self.pos, self.z_dim, self.asked = bank, 0, 4, []

    def forward(self, z, y, truncation=1.0):
        out = self.bank[self.pos:self.pos + len(z)]
        self.pos += len(z)
        self.asked.append(y.clone())
        return out


def distinct_training_images(real: torch.Tensor, min_gap: float = 2.0) -> torch.Tensor:
    """Indices of training images whose nearest other training image is at least ``min_gap`` away (pixel L2 in
    [-1, 1]; BreastMNIST neighbours are typically ~6 apart, but the split holds near-duplicate pairs < 1 apart,
    for which the audit floors its denominator: see the near-duplicate test below)."""
    d = torch.cdist(real.flatten(1).double(), real.flatten(1).double())
    d.fill_diagonal_(float("inf"))
    return (d.min(1).values >= min_gap).nonzero().flatten()


def planted_set(real: torch.Tensor, novel: torch.Tensor, seed: int = 0, n_each: int = 6):
    """Synthetic bank: ``novel`` images with ``n_each`` exact copies and ``n_each`` near-copies (copy + N(0, 0.02)
    noise, 1% of the pixel range) of distinct training images, shuffled. Returns (bank, planted positions)."""
    g = torch.Generator().manual_seed(seed)
    pool = distinct_training_images(real)
    pick = pool[torch.randperm(len(pool), generator=g)[: 2 * n_each]]
    exact = real[pick[:n_each]]
    near = (real[pick[n_each:]] + 0.02 * torch.randn(real[pick[n_each:]].shape, generator=g)).clamp(-1, 1)
    bank = torch.cat([novel, exact, near])
    order = torch.randperm(len(bank), generator=g)
    planted = (order >= len(novel)).nonzero().flatten()  # where the copies landed in the shuffled bank
    return bank[order], set(planted.tolist())


def novel_images() -> torch.Tensor:
    """Real ultrasound images that are in no training set: held-out val images, mirrored (BreastMNIST's splits
    share near-duplicates, so unmirrored val images can be genuine near-copies of training images)."""
    return load_breastmnist(split="val", n_per_class=12, seed=0).images.flip(-1)


def guarded_dataset(real: ImageDataset, bank: torch.Tensor, threshold=1 / 3):
    gen = ReplayGenerator(bank)
    cfg = {"format": "synthaug", "kind": "cgan", "image_size": int(real.images.shape[-1]),
           "channels": int(real.images.shape[1]), "num_classes": real.num_classes,
           "class_names": list(real.class_names)}
    model = GeneratorModel(gen, cfg, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = SyntheticDataset(model, n=len(bank), batch_size=len(bank), drop_near_copies=threshold, reference=real)
    return ds, gen, [str(w.message) for w in caught]


# ============================================================================ training processes
def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(REPO))
    env.pop("SYNTHAUG_DEVICE", None)
    return env


def launch(args: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, str(SCRIPT), *args], stdout=f, stderr=subprocess.STDOUT,
                                env=_env(), cwd=str(REPO), start_new_session=True)


def last_step(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [0]
    for line in path.read_text().splitlines():
        try:
            steps.append(int(json.loads(line)["step"]))
        except (json.JSONDecodeError, KeyError):
            pass
    return steps[-1]


def latest_pointer(out: Path) -> dict | None:
    p = out / "checkpoints" / "latest.json"
    return json.loads(p.read_text()) if p.is_file() else None


