"""A Laplacian-pyramid translator (after LPTN, Liang et al., CVPR 2021): translate the low-frequency band, keep the
detail.

The input is split by a fixed Laplacian pyramid (:class:`LaplacianPyramid`) into ``levels`` high-frequency bands and
a low-frequency residual at 1/2**levels of the size. A small residual CNN translates the residual (colour, tone,
haze live there); the bands are not generated but *kept*, each multiplied by a predicted mask, and the pyramid is
collapsed again. Edges and object outlines of the input therefore survive by construction, and because the heavy
work runs at 1/2**levels of the size, large frames translate fast.

Written from the paper's idea; it is not the authors' code. Differences: the pyramid takes any size without padding
(each level halves the size rounding up; the expansion is cropped to the finer level), so no mirrored content enters
the low band; the low band is translated by a residual in tanh space and the bands by ``band * (1 + mask)``, so a
net whose output layers are zero is exactly the identity (and a freshly initialised one nearly so); and the pyramid
can be deepened at inference (``extra_levels``) so a net trained on small images sees, at full frame size, a low
band of the scale it was trained on.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_choice, check_int
from .layers import check_batch
from .registry import register
from .translators import init_weights

__all__ = ["LaplacianPyramid", "LPTNTranslator", "MAX_LEVELS"]

MAX_LEVELS = 8
_LIMIT = 1.0 - 1e-3  # the low band is clamped to this before atanh, so the tanh-space residual stays finite
_MASK_HIDDEN = 16    # hidden units of a band's 1x1 mask refinement (LPTN's value)


class LaplacianPyramid(nn.Module):
    """A fixed (not learned) Laplacian pyramid on NCHW tensors of any size and channel count.

    ``down``: blur with the 5x5 binomial kernel ([1, 4, 6, 4, 1] / 16 in each direction, reflect padding) and keep
    every second row and column (the size halves, rounding up). ``up(x, size)``: insert zeros between the samples,
    crop to ``size`` and blur with 4x the kernel. ``decompose(x, levels)`` returns ``[band_0, ..., band_{levels-1},
    low]``, finest first, with ``band_k = g_k - up(g_{k+1})`` for the Gaussian levels ``g``; ``reconstruct``
    inverts it exactly (up to float rounding) whatever ``up`` does, since it adds back what was subtracted.
    Each blurred level needs at least 3 px in each direction. Runs in float32 even under autocast.
    """

    def __init__(self):
        super().__init__()
        k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
        self.register_buffer("kernel", torch.outer(k, k)[None, None], persistent=False)

    def _blur(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        n, c, h, w = x.shape
        y = F.conv2d(F.pad(x.reshape(n * c, 1, h, w), (2, 2, 2, 2), mode="reflect"),
                     self.kernel.to(dtype=x.dtype) * gain)
        return y.reshape(n, c, h, w)

    def down(self, x: torch.Tensor) -> torch.Tensor:
        """Blur and subsample by 2: (H, W) -> (ceil(H / 2), ceil(W / 2))."""
        with torch.autocast(x.device.type, enabled=False):
            return self._blur(x.float())[..., ::2, ::2]

    def up(self, x: torch.Tensor, size) -> torch.Tensor:
        """Expand by 2 to ``size`` (at most twice ``x``'s size): zero insertion, crop, blur with 4x the kernel."""
        h, w = int(size[0]), int(size[1])
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            z = x.new_zeros(x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3])
            z[..., ::2, ::2] = x
            return self._blur(z[..., :h, :w], gain=4.0)

    def lowpass(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        """The low-frequency residual of ``x``: ``levels`` times :meth:`down`."""
        for _ in range(levels):
            x = self.down(x)
        return x

    def decompose(self, x: torch.Tensor, levels: int) -> list[torch.Tensor]:
        """``[band_0 (input size), ..., band_{levels-1}, low (about 1/2**levels of the size)]``."""
        pyramid, g = [], x.float()
        for _ in range(levels):
            smaller = self.down(g)
            pyramid.append(g - self.up(smaller, g.shape[-2:]))
            g = smaller
        return pyramid + [g]

    def reconstruct(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        """Collapse ``[band_0, ..., low]`` (as from :meth:`decompose`) into one image of band_0's size."""
        x = pyramid[-1]
        for band in reversed(pyramid[:-1]):
            x = self.up(x, band.shape[-2:]) + band
        return x


def _norm(norm: str, channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False) if norm == "instance" else nn.Identity()


def _conv3(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3)]


class _Block(nn.Module):
    """x + conv3(LeakyReLU(conv3(x))), reflect padding (LPTN's residual block)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(*_conv3(channels, channels), nn.LeakyReLU(0.2), *_conv3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _LowBranch(nn.Module):
    """The low-frequency translator: stem (conv, norm, LeakyReLU), residual blocks, conv head; its output ``f`` is a
    residual in tanh space, ``tanh(atanh(x) + f)``, which stays in (-1, 1) and is ``x`` when ``f = 0``."""

    def __init__(self, c_in: int, c_out: int, ngf: int, n_blocks: int, norm: str):
        super().__init__()
        self.stem = nn.Sequential(*_conv3(c_in, ngf), _norm(norm, ngf), nn.LeakyReLU(0.2))
        self.blocks = nn.ModuleList(_Block(ngf) for _ in range(n_blocks))
        self.head = nn.Sequential(*_conv3(ngf, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        for block in self.blocks:
            y = block(y)
        f = self.head(y).float()
        with torch.autocast(x.device.type, enabled=False):  # atanh near +-1 needs float32
            return torch.tanh(torch.atanh(x.float().clamp(-_LIMIT, _LIMIT)) + f)


@register("translator", "lptn")
class LPTNTranslator(nn.Module):
    """Laplacian-pyramid translator (LPTN-like): the low band translated, the high-frequency bands kept and masked.

    ``forward(x)`` decomposes ``x`` with ``n_levels`` levels (:class:`LaplacianPyramid`). The low-frequency residual
    (about 1/2**n_levels of the size) goes through a residual CNN of width ``ngf`` with ``n_blocks`` blocks (instance
    norm after the stem with ``norm="instance"``), added to its input in tanh space so it stays in range. A mask net
    (width ``mask_width``, ``mask_blocks`` blocks) reads [upsampled low band, upsampled translated low band, the
    coarsest band] and predicts a mask ``m``; each band, coarsest first, becomes ``band * (1 + m)``, the mask being
    upsampled (bilinear) to the next finer band and refined there by a light 1x1-conv net (``m + r_k(m)``). The
    pyramid is collapsed and clamped to [-1, 1]. Everything the net changes at full resolution is a per-pixel gain
    on the input's own detail, so edges and objects cannot move or vanish unless the mask drives them to zero.

    Size: any H and W of at least :attr:`min_size` (2**n_levels + 1) px; the output has the input's size, nothing is
    padded, resized or cropped. ``forward(x, extra_levels=k)`` decomposes with ``n_levels + k`` levels: the CNNs
    then run on the same *relative* scale as with ``n_levels`` on an image 2**k times smaller (the k finest bands use
    the upsampled mask without a refinement of their own). :meth:`extra_levels_for` picks ``k`` for a frame from the
    training size; ``TranslatorModel.translate`` does that by default.

    ``in_channels`` must equal ``out_channels``, or be 1 (a gray input's bands then serve every output channel).
    ``ngf`` / ``n_blocks`` carry the ResNet translator's names, so the translation recipes' default ``g_kwargs``
    fit. For CUT / FastCUT, :meth:`features` gives the low-band CNN's maps (:attr:`feature_layers`).
    """

    full_resolution = True  # TranslatorModel.translate runs it at the input's own size by default

    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_levels: int = 3, ngf: int = 32,
                 n_blocks: int = 4, mask_width: int = 32, mask_blocks: int = 2, norm: str = "instance"):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.out_channels = check_int("out_channels", out_channels, 1)
        if in_channels not in (1, out_channels):
            raise ValueError(f"out_channels: expected {in_channels} (= in_channels; the input's bands are kept, so "
                             f"lptn maps C channels to C, or 1 to any), found {out_channels}")
        self.n_levels = check_int("n_levels", n_levels, 1)
        if n_levels > MAX_LEVELS:
            raise ValueError(f"n_levels: expected an int in [1, {MAX_LEVELS}], found {n_levels}")
        check_int("ngf", ngf, 1)
        self.n_blocks = check_int("n_blocks", n_blocks, 0)
        check_int("mask_width", mask_width, 1)
        check_int("mask_blocks", mask_blocks, 0)
        check_choice("norm", norm, ("instance", "none"))

        self.pyramid = LaplacianPyramid()
        self.low = _LowBranch(in_channels, out_channels, ngf, n_blocks, norm)
        self.mask = nn.Sequential(*_conv3(2 * in_channels + out_channels, mask_width), nn.LeakyReLU(0.2),
                                  *(_Block(mask_width) for _ in range(mask_blocks)), *_conv3(mask_width, out_channels))
        self.refine = nn.ModuleList(
            nn.Sequential(nn.Conv2d(out_channels, _MASK_HIDDEN, 1), nn.LeakyReLU(0.2),
                          nn.Conv2d(_MASK_HIDDEN, out_channels, 1)) for _ in range(n_levels))
        init_weights(self)

    @property
    def min_size(self) -> int:
        """Smallest valid height/width: 2**n_levels + 1 (every blurred level >= 3 px, the low band >= 2 px)."""
        return 2**self.n_levels + 1

    def extra_levels_for(self, height: int, width: int, trained_size: int) -> int:
        """Extra pyramid levels for a ``height`` x ``width`` frame when the net was trained on ``trained_size`` px
        images made from such frames by resizing the shorter side (synthaug's loaders): ``round(log2(min(height,
        width) / trained_size))``, at least 0 and at most what the frame's size allows."""
        short = min(check_int("height", height, 1), check_int("width", width, 1))
        check_int("trained_size", trained_size, 1)
        want = round(math.log2(short / trained_size)) if short > trained_size else 0
        fits = max(0, (short - 1).bit_length() - 1 - self.n_levels)  # largest k with 2**(n_levels + k) < short
        return max(0, min(want, fits))

    def _check_input(self, x: torch.Tensor, extra_levels: int = 0) -> int:
        """Validate ``x`` for ``n_levels + extra_levels`` levels; return that number of levels."""
        h, w = check_batch(x, self.in_channels)
        extra = check_int("extra_levels", extra_levels, 0)
        levels = self.n_levels + extra
        m = 2**levels + 1
        if h < m or w < m:
            raise ValueError(f"image too small for the pyramid depth: expected at least {m}x{m} px for "
                             f"{levels} levels (n_levels={self.n_levels}, extra_levels={extra}), found {h}x{w}")
        return levels

    def forward(self, x: torch.Tensor, extra_levels: int = 0) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""
        levels = self._check_input(x, extra_levels)
        *bands, low = self.pyramid.decompose(x, levels)
        low_out = self.low(low)
        coarse = bands[-1]
        size = coarse.shape[-2:]
        m = self.mask(torch.cat([self.pyramid.up(low, size), self.pyramid.up(low_out, size), coarse], 1)).float()
        out = []
        for k, band in enumerate(reversed(bands)):  # coarsest first
            if m.shape[-2:] != band.shape[-2:]:
                m = F.interpolate(m, size=band.shape[-2:], mode="bilinear", align_corners=False)
            if k < self.n_levels:
                m = m + self.refine[k](m).float()
            out.append(band * (1.0 + m))
        return self.pyramid.reconstruct(out[::-1] + [low_out]).clamp(-1.0, 1.0)

    @property
    def feature_layers(self) -> list[str]:
        """The maps :meth:`features` returns: ``low`` (the low-frequency band the CNN reads), ``stem`` and
        ``block1``, ``block2``, ... (the low-band CNN after its stem and each residual block)."""
        return ["low", "stem"] + [f"block{i + 1}" for i in range(self.n_blocks)]

    def features(self, x: torch.Tensor, layers) -> list[torch.Tensor]:
        """The low-band CNN's maps named ``layers`` (see :attr:`feature_layers`) of input ``x``, in that order, at
        about 1/2**n_levels of its size (CUT's PatchNCE)."""
        self._check_input(x)
        names = self.feature_layers
        unknown = [n for n in layers if n not in names]
        if unknown or not layers:
            raise ValueError(f"layers: expected names among {names}, found {unknown or list(layers)}")
        deepest = max(names.index(n) for n in layers)
        y = self.pyramid.lowpass(x, self.n_levels)
        maps = {"low": y}
        if deepest >= 1:
            y = maps["stem"] = self.low.stem(y)
            for i, block in enumerate(self.low.blocks[:deepest - 1]):
                y = maps[f"block{i + 1}"] = block(y)
        return [maps[n] for n in layers]
