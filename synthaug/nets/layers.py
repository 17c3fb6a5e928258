"""Building blocks shared by the GAN networks: argument/input checks, conditional BatchNorm,
minibatch standard deviation, optional spectral norm."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..checks import check_int, check_number

__all__ = [
    "SUPPORTED_SIZES",
    "ConditionalBatchNorm2d",
    "MinibatchStdDev",
    "check_batch",
    "check_image_size",
    "check_images_input",
    "check_labels",
    "check_net_sizes",
    "check_latent",
    "check_stage",
    "check_truncation",
    "fade_in",
    "grow_resolutions",
    "check_z_threshold",
    "maybe_sn",
    "norm_layer",
    "normalize_spectral_norm_vectors",
    "start_resolution",
    "truncated_normal",
]

#: Square image sizes every generator and discriminator supports.
SUPPORTED_SIZES = (16, 28, 32, 64, 128)


def check_image_size(image_size) -> int:
    """Validate ``image_size`` against :data:`SUPPORTED_SIZES`."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size not in SUPPORTED_SIZES:
        raise ValueError(f"image_size: expected one of {list(SUPPORTED_SIZES)}, found {image_size!r}")
    return image_size


def check_net_sizes(num_classes, image_size, channels, base_channels, max_channels) -> tuple[int, int, int]:
    """The size arguments every class-conditional generator and discriminator takes, checked; returns
    ``(num_classes, image_size, channels)``."""
    check_int("base_channels", base_channels)
    check_int("max_channels", max_channels)
    return check_int("num_classes", num_classes), check_image_size(image_size), check_int("channels", channels)


def start_resolution(image_size: int) -> tuple[int, int]:
    """``(start, num_doublings)``: 28 px grows from 7x7, every other size from 4x4."""
    start = 7 if image_size == 28 else 4
    return start, (image_size // start).bit_length() - 1


def grow_resolutions(image_size: int) -> list[int]:
    """The resolutions a generator grows through, ascending: ``[start, 2 * start, ..., image_size]``."""
    start, n = start_resolution(image_size)
    return [start * 2**k for k in range(n + 1)]


def check_stage(resolution, alpha, resolutions: list[int], progressive: bool) -> tuple[int, float]:
    """Validate a progressive-growing stage; returns ``(index of resolution in resolutions, alpha)``.

    ``resolution`` None means the full one. ``alpha`` in [0, 1] is the weight of the new, highest block while it
    fades in (1 = fully in); below 1 it needs a lower resolution to fade from. A net built without
    ``progressive=True`` has no layers for the lower resolutions: full resolution and ``alpha=1`` only.
    """
    full = resolutions[-1]
    r = full if resolution is None else resolution
    if isinstance(r, bool) or not isinstance(r, int) or r not in resolutions:
        raise ValueError(f"resolution: expected one of {resolutions} or None (= {full}), found {resolution!r}")
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"alpha: expected a float in [0, 1], found {type(alpha).__name__}") from None
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"alpha: expected a float in [0, 1], found {alpha!r}")
    k = resolutions.index(r)
    if not progressive and (r != full or a != 1.0):
        raise ValueError(f"resolution/alpha: a net built without progressive=True runs at its full resolution {full} "
                         f"with alpha=1 only, found resolution={r}, alpha={a:g}")
    if a < 1.0 and k == 0:
        raise ValueError(f"alpha: expected 1 at the lowest resolution {r} (there is none below to fade from), "
                         f"found {a:g}")
    return k, a


def fade_in(low: torch.Tensor, high: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(1 - alpha) * upsample(low) + alpha * high``: images of half ``high``'s size blended in (nearest, x2)."""
    return (1.0 - alpha) * F.interpolate(low, scale_factor=2, mode="nearest") + alpha * high


def check_truncation(truncation) -> float:
    """Truncation must be a finite number >= 0 (1 = off, 0 = the average)."""
    try:
        t = float(truncation)
    except (TypeError, ValueError):
        raise TypeError(f"truncation: expected a float >= 0, found {type(truncation).__name__}") from None
    if not (t >= 0.0 and t != float("inf")):
        raise ValueError(f"truncation: expected a finite float >= 0, found {truncation!r}")
    return t


def check_z_threshold(threshold) -> float | None:
    """A truncated-normal threshold must be None (off) or a finite float > 0."""
    t = check_number("z_threshold", threshold, 0.0, low_open=True, optional=True)
    if t is not None and math.isinf(t):
        raise ValueError(f"z_threshold: expected None or a finite float > 0 (entries of z with |z| above it are "
                         f"redrawn), found {threshold!r}")
    return t


#: rounds of redrawing before the remaining entries are drawn by inverse CDF (only tiny thresholds get there)
_RESAMPLE_ROUNDS = 64


def truncated_normal(shape, threshold: float | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal float32 samples of ``shape`` with every entry whose magnitude exceeds ``threshold``
    redrawn until it falls inside (BigGAN's truncation trick; ``None``: a plain normal draw).

    Entries already inside keep the values of the plain draw, so a threshold only changes the outliers. All
    randomness comes from ``generator``: the same generator state gives the same tensor. After
    ``_RESAMPLE_ROUNDS`` rounds (reached only for thresholds far below 1) the entries still outside are drawn
    from the same truncated normal by inverse CDF, so any threshold > 0 finishes quickly.
    """
    t = check_z_threshold(threshold)
    z = torch.randn(shape, generator=generator)
    if t is None:
        return z
    for _ in range(_RESAMPLE_ROUNDS):
        out = z.abs() > t
        k = int(out.sum())
        if k == 0:
            return z
        z[out] = torch.randn(k, generator=generator)
    out = z.abs() > t
    k = int(out.sum())
    if k:
        lo = torch.special.ndtr(torch.tensor(-t, dtype=torch.float64))
        u = torch.rand(k, generator=generator, dtype=torch.float64)
        z[out] = torch.special.ndtri(lo + u * (1 - 2 * lo)).clamp(-t, t).float()
    return z


@torch.no_grad()
def normalize_spectral_norm_vectors(module: nn.Module) -> None:
    """Rescale the power-iteration vectors ``u``, ``v`` of every spectral-norm parametrisation in ``module`` to
    unit length, in place.

    An EMA copy averages these buffers like any other; an average of unit vectors is shorter than 1, and in eval
    mode spectral norm divides by ``u^T W v`` without renormalising, which would overstate the weights. Called
    on the EMA generator after each update; a no-op for nets without spectral norm.
    """
    for m in module.modules():
        params = getattr(m, "parametrizations", None)
        if params is None or "weight" not in params:
            continue
        for p in params["weight"]:
            for name in ("_u", "_v"):
                vec = getattr(p, name, None)
                if isinstance(vec, torch.Tensor) and vec.is_floating_point():
                    vec.div_(vec.norm().clamp_min(1e-12))


def check_labels(y, num_classes: int, n: int | None = None, name: str = "y") -> torch.Tensor:
    """Validate class indices: a 1-D integer tensor of length ``n`` with values in [0, num_classes)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: expected a 1-D int64 tensor of class indices, found {type(y).__name__}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"{name}: expected an integer (int64) tensor of class indices, found dtype {y.dtype}")
    if y.ndim != 1 or (n is not None and y.shape[0] != n):
        want = f"({n},)" if n is not None else "(N,)"
        raise ValueError(f"{name}: expected shape {want}, found {tuple(y.shape)}")
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"{name}: expected class indices in [0, {num_classes - 1}] (num_classes={num_classes}), "
                f"found values in [{lo}, {hi}]"
            )
    return y.long()


def check_latent(z, z_dim: int, name: str = "z") -> torch.Tensor:
    """Validate a latent batch of shape (N, z_dim)."""
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{name}: expected a float tensor of shape (N, {z_dim}), found {type(z).__name__}")
    if z.ndim != 2 or z.shape[1] != z_dim:
        raise ValueError(f"{name}: expected shape (N, {z_dim}), found {tuple(z.shape)}")
    if not z.dtype.is_floating_point:
        raise TypeError(f"{name}: expected a floating-point tensor, found dtype {z.dtype}")
    return z


def check_images_input(x, channels: int, image_size: int, name: str = "x") -> torch.Tensor:
    """Validate a discriminator input batch (N, channels, image_size, image_size)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a float tensor (N, C, H, W), found {type(x).__name__}")
    want = f"(N, {channels}, {image_size}, {image_size})"
    if x.ndim != 4:
        raise ValueError(f"{name}: expected shape {want}, found {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channel(s) (shape {want}), found {x.shape[1]} "
                         f"(shape {tuple(x.shape)})")
    if tuple(x.shape[-2:]) != (image_size, image_size):
        raise ValueError(f"{name}: expected spatial size {image_size}x{image_size} (shape {want}), "
                         f"found {x.shape[-2]}x{x.shape[-1]}")
    return x


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` in spectral normalisation when ``enabled``."""
    return _spectral_norm(module) if enabled else module


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, followed by a class-dependent gain and bias.

    Gains start at 1 and biases at 0, so at initialisation it equals plain BatchNorm.
    """

    def __init__(self, num_features: int, num_classes: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False, momentum=momentum, eps=eps)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.bn(x)
        return out * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class MinibatchStdDev(nn.Module):
    """Append one feature map: the standard deviation across a group of samples, averaged.

    Samples are split into groups of ``min(group_size, N)`` (reduced to a divisor of N when
    needed); each sample gets its group's mean feature std as an extra constant channel, which
    lets the discriminator see a lack of variety (mode collapse).
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8):
        super().__init__()
        self.group_size = check_int("group_size", group_size)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        if g == 1:  # a single sample has no spread; mirror StyleGAN and report zero
            std = x.new_zeros(n, 1, h, w)
        else:
            grouped = x.float().reshape(g, n // g, c, h, w)
            # the biased variance over the group, written out: aten's var over a short leading dim is ~10x slower on
            # CPU (forward + backward), and it was 9% of a default cGAN step (benchmarks/bench_cpu_defaults.py)
            dev = grouped - grouped.mean(dim=0)
            s = (dev.square().mean(dim=0) + self.eps).sqrt().mean(dim=(1, 2, 3))  # (n // g,)
            std = s.to(x.dtype).repeat(g)[:, None, None, None].expand(n, 1, h, w)
        return torch.cat([x, std], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def check_batch(x, channels: int) -> tuple[int, int]:
    """Validate a 4-D batch with ``channels`` channels (a translator's, upscaler's or their discriminators'
    input); return its (H, W)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, found {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x: expected a 4-D batch (N, C, H, W), found shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"x: expected {channels} channel(s), found {x.shape[1]} (shape {tuple(x.shape)})")
    return int(x.shape[2]), int(x.shape[3])


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation layer named ``norm``: ``"instance"`` (affine-free), ``"batch"``, anything else none."""
    if norm == "instance":  # affine-free, as in CycleGAN: statistics per image, nothing to learn
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()
