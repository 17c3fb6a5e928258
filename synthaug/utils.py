"""Shared helpers: device choice, seeding, image <-> tensor conversion, labelled PNG grids."""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

__all__ = [
    "get_device",
    "seed_everything",
    "seed_worker",
    "global_rng_kept",
    "to_tensor_images",
    "to_uint8_images",
    "check_images",
    "check_value_range",
    "parse_value_range",
    "MODEL_RANGE",
    "CONVERT_HINT",
    "save_grid",
    "allocate_counts",
    "ema_with_warmup",
    "keep_freed_memory",
]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string): every timing names its CPU."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "LD_PRELOAD")
_malloc_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Let this process keep the memory PyTorch frees on the CPU for its next tensors (glibc on Linux; once).

    glibc hands allocations of more than a few hundred KiB back to the OS when freed, so each training step pays
    a page fault per 4 KiB of every activation it allocates again: about a tenth of a small net's step on the CPU
    measured (``benchmarks/bench_cpu_defaults.py``, cases ``*_keep_freed_memory``). Raising the mmap and trim
    thresholds (to 32 MiB and 2 GiB, glibc's largest) keeps that memory in the process; numbers are unchanged
    (PyTorch aligns every CPU tensor itself). The price: a resident size that stays near the peak. Called by the
    training engines on a CPU device. Returns whether it is in effect: False off glibc, or when the environment sets
    malloc's own ``MALLOC_*`` variables or an ``LD_PRELOAD`` (a user's allocator choice wins)."""
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    _malloc_tuned = False
    if not sys.platform.startswith("linux") or any(os.environ.get(k) for k in _MALLOC_ENV):
        return False
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    _malloc_tuned = bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    return _malloc_tuned


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` if given, else the best available: cuda, then mps, then cpu.

    The environment variable ``SYNTHAUG_DEVICE`` overrides the automatic choice.
    """
    device = device or os.environ.get("SYNTHAUG_DEVICE")
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: expected an available device, found {device!r} but CUDA is not available")
        if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device: expected an available device, found {device!r} but MPS is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (all devices); return a CPU ``torch.Generator`` seeded with ``seed``."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed: expected an int, found {type(seed).__name__}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def global_rng_kept():
    """Restore python's, numpy's and torch's global RNG states afterwards (work inside, such as training a helper
    classifier or reading sample items through a random transform, leaves the caller's random stream as it was)."""
    py, npy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng():
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: derive numpy/python seeds from torch's per-worker seed.

    torch reseeds its own RNG in each worker; numpy's and python's are reseeded here so random
    transforms (albumentations included) differ between workers yet repeat under the same base seed.
    A dataset with ``reseed(seed)`` (synthaug's) is reseeded; for a MONAI dataset the random state of its
    transforms is reseeded with MONAI's ``set_rnd``.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is None:
        return
    dataset = info.dataset
    while isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset
    if hasattr(dataset, "reseed"):
        dataset.reseed(seed)
    elif "monai" in sys.modules:  # MONAI transforms hold their own random state: reseed it per worker
        from monai.data.utils import set_rnd

        set_rnd(dataset, seed)


_PROGRESS = contextvars.ContextVar("synthaug_progress", default=True)
_QUICK_WARNED: set[int] = set()


def quick_steps(steps: int, minimum: int = 1) -> int:
    """``steps`` under the smoke-test switch ``SYNTHAUG_QUICK``: unset, empty or 0, as given; a positive integer N
    caps every step budget of the library at N (never below ``minimum``): training runs (the Trainer's run
    length, whatever the config says), a progressive schedule's phases, the classifiers of ``train_classifier``
    (downstream arms, the task classifier, the pseudo-labeller, feature encoders) and the SRGAN content encoder.
    For checking that a script or the README's code runs (``tests/test_readme.py`` runs every README block with
    ``SYNTHAUG_QUICK=2``); the models it makes mean nothing, and a warning says so once per process."""
    text = os.environ.get("SYNTHAUG_QUICK", "").strip()
    if not text or text == "0":
        return steps
    if not text.isdigit():
        raise ValueError(f"SYNTHAUG_QUICK: expected a positive number of steps (or 0 / unset: off), found {text!r}")
    cap = max(int(text), int(minimum))
    if cap < steps and cap not in _QUICK_WARNED:
        _QUICK_WARNED.add(cap)
        import warnings

        warnings.warn(f"SYNTHAUG_QUICK={text}: every step budget is capped at {cap} steps (a smoke test; the models "
                      "and numbers it makes mean nothing)", stacklevel=2)
    return min(steps, cap)


@contextlib.contextmanager
def progress_default(enabled: bool):
    """Within the block, a ``progress=None`` switch means ``enabled``: for phases run inside a call that has no
    ``progress=`` of its own, such as the task classifier f_S a translation recipe trains at construction::

        with synthaug.utils.progress_default(False):
            recipe = CycleGANRecipe(mnist, usps, CycleGANConfig(lambda_task=1.0))   # f_S trains without a bar
    """
    token = _PROGRESS.set(bool(enabled))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def progress_enabled(progress: bool | None) -> bool:
    """A ``progress=`` switch resolved: True or False as given, None as :func:`progress_default` says."""
    return _PROGRESS.get() if progress is None else bool(progress)


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", enabled: bool | None = True, **kwargs):
    """A tqdm progress bar on stderr with the elapsed time, the rate and the time left: the one every long phase of
    the library shows (training, helper classifiers, bulk translation and upscaling, downstream arms). It is
    disabled when ``enabled`` is False (the ``progress=`` switch of the calling function; None: the default of
    :func:`progress_default`, on unless a block turned it off), under torchrun on every rank but 0 (``RANK``), and
    everywhere by tqdm's own ``TQDM_DISABLE=1``. Written to a file or pipe (a background job's log), it redraws at
    most every 30 s instead of many times a second. ``kwargs`` go to ``tqdm``."""
    from tqdm.auto import tqdm

    enabled = progress_enabled(enabled)
    main_rank = int(os.environ.get("RANK", "0") or 0) == 0
    if not getattr(sys.stderr, "isatty", lambda: False)():
        kwargs.setdefault("mininterval", 30.0)
    return tqdm(total=total, desc=desc, unit=unit, disable=not (enabled and main_rank), dynamic_ncols=True,
                **kwargs)


def allocate_counts(total: int, weights) -> np.ndarray:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainder; ties to the
    lower index), e.g. synthetic samples per class following the real class frequencies."""
    weights = np.asarray(weights, dtype=float)
    exact = int(total) * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[:int(total) - counts.sum()]] += 1
    return counts


def check_images(x: torch.Tensor, name: str = "images", channels: int | None = None,
                 size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Validate a float NCHW batch: 4-D, finite, optional channel count and spatial size. Returns ``x``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, found {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D batch (N, C, H, W), found shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channel(s), found {x.shape[1]} (shape {tuple(x.shape)})")
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(x.shape[-2:]) != hw:
            raise ValueError(f"{name}: expected spatial size {hw}, found {tuple(x.shape[-2:])}")
    # a sum is finite only if every value is (IEEE); only a non-finite sum (or an overflow) needs the full check
    if x.is_floating_point() and not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name}: expected finite pixel values, found {bad} NaN/Inf value(s)")
    return x


#: The value range of model data: float pixels in [-1, 1] (see :func:`check_value_range`).
MODEL_RANGE = (-1.0, 1.0)
#: How to bring other data into :data:`MODEL_RANGE` (the ``fix`` of the entry points' messages).
CONVERT_HINT = ("convert [0, 1] images with x * 2 - 1 and 0..255 ones with x / 127.5 - 1 (or use "
                "synthaug.utils.to_tensor_images / synthaug.augment.to_model_range)")


def parse_value_range(value_range) -> tuple[float, float]:
    """A ``value_range`` argument: ``(-1, 1)`` (model data) or ``(0, 1)``, as a pair of floats."""
    t = tuple(value_range)
    if t not in ((0, 1), (-1, 1)):
        raise ValueError(f"value_range: expected (0, 1) or (-1, 1), found {t}")
    return float(t[0]), float(t[1])


def check_value_range(x: torch.Tensor, name: str = "images", value_range: tuple[float, float] | None = None,
                      fix: str = "") -> tuple[float, float]:
    """Enforce the library's one value-range rule on a sample ``x`` of outside data; return its range.

    The rule: images the library makes or trains on are float in [-1, 1] (:data:`MODEL_RANGE`) -- an
    ``ImageDataset``, ``SyntheticDataset`` and ``MixedDataset`` items, ``GeneratorModel.sample``,
    ``TranslatorModel.translate`` (in and out), the nets, and the ``transform`` of ``SyntheticDataset`` /
    ``MixedDataset``. The translator transforms for other frameworks (``GANTransform``, ``GANTranslate``,
    ``RandGANTranslate``) take and give those frameworks' images instead: uint8, or float in [0, 1]. Data in
    another range is converted explicitly, never guessed: :func:`to_tensor_images` and ``from_arrays(value_range=)``
    (uint8, uint16, [0, 1] -> [-1, 1]), :func:`synthaug.augment.to_model_range` (PIL, uint8, [0, 1] -> [-1, 1]),
    :func:`to_uint8_images` (back to 0..255), ``MixedDataset(value_range=(0, 1))`` (every item in [0, 1]).

    ``value_range`` says which range ``x`` is in: ``(-1, 1)`` or ``(0, 1)``, and then ``x`` must lie in it; or
    None (not said: model data is assumed), and then ``x`` must lie in [-1, 1] and must not look like [0, 1]
    data -- no value below 0 while some are above 0 (e.g. ``ToTensor`` output). Otherwise ``ValueError`` names
    the range found and, with ``fix``, how to convert.
    """
    if value_range is not None:
        value_range = parse_value_range(value_range)
    if x.numel() == 0:
        return value_range or MODEL_RANGE
    lo, hi = float(x.min()), float(x.max())
    low, high = value_range or MODEL_RANGE
    tail = f"; {fix}" if fix else ""
    if lo < low or hi > high:
        raise ValueError(f"{name}: expected float pixels in [{low:g}, {high:g}], found range [{lo:.4g}, {hi:.4g}]"
                         f"{tail}")
    if value_range is None and lo >= 0.0 and hi > 0.0:
        raise ValueError(f"{name}: values look like [0, 1] data (min {lo:.3f}, max {hi:.3f}), but synthaug images "
                         f"are float in [-1, 1]{tail}")
    return value_range or MODEL_RANGE


def to_tensor_images(images, channels_last: bool | None = None) -> torch.Tensor:
    """Convert images at the boundary to float32 NCHW in [-1, 1].

    Accepts numpy or torch; uint8 (0..255), uint16 (0..65535) or float in [0, 1]; shapes HW, HWC, NHWC
    (numpy, channels last) or CHW/NCHW (torch, channels first). ``channels_last`` overrides the guess.
    """
    if isinstance(images, np.ndarray):
        arr = images
        if channels_last is None:
            channels_last = True
        t = torch.from_numpy(np.ascontiguousarray(arr))
    elif isinstance(images, torch.Tensor):
        t = images
        if channels_last is None:
            channels_last = False
    else:
        raise TypeError(f"images: expected a numpy array or torch tensor, found {type(images).__name__}")
    if t.ndim == 2:
        t = t[None, :, :, None] if channels_last else t[None, None]
    elif t.ndim == 3:
        t = t[None] if (channels_last and t.shape[-1] in (1, 3, 4)) or not channels_last else t[..., None]
        if channels_last and t.ndim == 4 and t.shape[-1] not in (1, 3, 4):
            raise ValueError(f"images: expected HWC with 1, 3 or 4 channels, found shape {tuple(images.shape)}")
    elif t.ndim != 4:
        raise ValueError(f"images: expected 2-D to 4-D image data, found shape {tuple(images.shape)}")
    if channels_last:
        t = t.permute(0, 3, 1, 2)
    dtype = t.dtype
    if dtype == torch.uint8:
        t = t.float() / 127.5 - 1.0
    elif dtype in (torch.uint16, torch.int32) and isinstance(images, np.ndarray) and images.dtype == np.uint16:
        t = t.float() / 32767.5 - 1.0
    elif t.is_floating_point():
        t = t.float()
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(f"images: expected finite pixel values, found {bad} NaN/Inf value(s)")
        lo, hi = float(t.min()), float(t.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"images: expected float pixels in [0, 1], found range [{lo:.3g}, {hi:.3g}]")
        t = t * 2.0 - 1.0
    else:
        raise TypeError(f"images: expected uint8, uint16 or float pixels, found dtype {dtype}")
    return t.contiguous()


def to_uint8_images(t: torch.Tensor, channels_last: bool = True) -> np.ndarray:
    """Float images in [-1, 1] (NCHW or CHW) -> uint8 numpy, NHWC (or NCHW if ``channels_last=False``)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor, found {type(t).__name__}")
    x = ((t.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    if channels_last:
        x = x.permute(0, 2, 3, 1) if x.ndim == 4 else x.permute(1, 2, 0)
    return x.numpy()


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8, row_labels: Sequence[str] | None = None,
              title: str | None = None, dpi: int = 100) -> Path:
    """Save images in [-1, 1] (NCHW) as a PNG grid with ``nrow`` images per row.

    With ``row_labels`` (one per row) or ``title`` the grid is drawn with matplotlib (at ``dpi``) so the rows
    are named; otherwise ``torchvision.utils.save_image`` writes it directly.
    """
    from torchvision.utils import make_grid, save_image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = images.detach().float().cpu().clamp(-1, 1)
    if not row_labels and not title:
        save_image(images, str(path), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1), padding=2, pad_value=1.0)
    arr = grid.permute(1, 2, 0).numpy()
    h, w = arr.shape[:2]
    scale = max(2.0, 8.0 / max(w / 100, 1))
    fig, ax = plt.subplots(figsize=(w / 100 * scale * 0.5 + 1.5, h / 100 * scale * 0.5 + 0.6), dpi=dpi)
    ax.imshow(arr if arr.shape[2] == 3 else arr[..., 0], cmap=None if arr.shape[2] == 3 else "gray",
              interpolation="nearest")
    if row_labels:
        n_rows = (len(images) + nrow - 1) // nrow
        cell = h / n_rows
        ax.set_yticks([cell * (i + 0.5) for i in range(min(n_rows, len(row_labels)))])
        ax.set_yticklabels(list(row_labels)[:n_rows])
    else:
        ax.set_yticks([])
    ax.set_xticks([])
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight", dpi=dpi)  # long titles and row labels are kept, not cut off
    plt.close(fig)
    return path


def ema_with_warmup(decay: float):
    """``multi_avg_fn`` for ``AveragedModel``: EMA whose decay ramps up as min(decay, (1 + n) / (10 + n)).

    A fixed 0.999 from the first step would leave half of the exported weights at their random
    initialisation after 700 steps (0.999^700 = 0.5); the ramp lets short CPU runs export a usable EMA.
    """

    @torch.no_grad()
    def update(ema_params, current_params, num_averaged) -> None:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        if torch.is_floating_point(ema_params[0]):
            torch._foreach_lerp_(ema_params, current_params, 1.0 - d)
        else:  # integer buffers (BatchNorm's num_batches_tracked) follow the model
            for e, c in zip(ema_params, current_params):
                e.copy_(c)

    return update
