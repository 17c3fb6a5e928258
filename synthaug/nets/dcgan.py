"""Class-conditional DCGAN generator (conditional BatchNorm or input concatenation)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..checks import check_bool, check_choice, check_int
from .layers import (
    ConditionalBatchNorm2d,
    check_net_sizes,
    check_labels,
    check_latent,
    check_stage,
    check_truncation,
    fade_in,
    grow_resolutions,
    start_resolution,
)
from .registry import register

__all__ = ["CondDCGANGenerator"]


class _UpBlock(nn.Module):
    """Double the resolution (transposed conv 4x4/2, or nearest upsample + conv 3x3), then (C)BN + ReLU."""

    def __init__(self, cin: int, cout: int, num_classes: int, cbn: bool, upsample: str):
        super().__init__()
        if upsample == "transpose":
            self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        else:
            self.conv = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                      nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
        self.norm = ConditionalBatchNorm2d(cout, num_classes) if cbn else nn.BatchNorm2d(cout)
        self.cbn = cbn

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.norm(x, y) if self.cbn else self.norm(x)
        return torch.relu(x)


@register("generator", "dcgan")
class CondDCGANGenerator(nn.Module):
    """Class-conditional DCGAN generator.

    ``z`` (N, z_dim) is projected to a ``start x start`` map (7x7 for 28 px, 4x4 otherwise) and
    doubled in resolution until ``image_size``; widths halve at each doubling, from
    ``min(max_channels, base_channels * 2**doublings)`` down to ``base_channels``.

    Args:
        num_classes: number of classes (1 = unconditional).
        image_size: output size, one of 16, 28, 32, 64, 128.
        channels: output image channels.
        z_dim: latent size.
        base_channels: width at the output resolution.
        max_channels: cap on any layer's width.
        cond: ``"cbn"`` class-dependent BatchNorm gain/bias in every layer, or ``"concat"``
            a learned class embedding concatenated to ``z`` (plain BatchNorm after).
        embed_dim: size of the class embedding for ``cond="concat"``.
        upsample: ``"transpose"`` (transposed conv, fastest on CPU) or ``"nearest"``
            (nearest upsample + 3x3 conv, no checkerboard artefacts).
        progressive: also build a toRGB conv for every lower resolution (``to_img_low``), so that
            ``forward(..., resolution=, alpha=)`` can run the progressive-growing schedule. Off, the net
            and its parameter names are exactly those of a net without the option.
    """

    def __init__(self, num_classes: int, image_size: int, channels: int = 1, z_dim: int = 64,
                 base_channels: int = 16, max_channels: int = 128, cond: str = "cbn", embed_dim: int = 32,
                 upsample: str = "transpose", progressive: bool = False):
        super().__init__()
        self.num_classes, self.image_size, self.channels = check_net_sizes(num_classes, image_size, channels,
                                                                       base_channels, max_channels)
        self.z_dim = check_int("z_dim", z_dim)
        self.cond = check_choice("cond", cond, ("cbn", "concat"))
        check_int("embed_dim", embed_dim)
        check_choice("upsample", upsample, ("transpose", "nearest"))
        start, n_up = start_resolution(image_size)
        widths = [min(max_channels, base_channels * 2 ** (n_up - i)) for i in range(n_up + 1)]
        cbn = cond == "cbn"
        self.start = start
        self.embed = None if cbn else nn.Embedding(num_classes, embed_dim)
        in_dim = z_dim if cbn else z_dim + embed_dim
        self.fc = nn.Linear(in_dim, widths[0] * start * start, bias=False)
        self.fc_norm = ConditionalBatchNorm2d(widths[0], num_classes) if cbn else nn.BatchNorm2d(widths[0])
        self.blocks = nn.ModuleList(
            _UpBlock(widths[i], widths[i + 1], num_classes, cbn, upsample) for i in range(n_up)
        )
        self.to_img = nn.Conv2d(widths[-1], channels, 3, 1, 1)
        self.resolutions = grow_resolutions(image_size)
        self.progressive = check_bool("progressive", progressive)
        if self.progressive:  # built last: every other weight is initialised as in a net without them
            self.to_img_low = nn.ModuleList(nn.Conv2d(widths[k], channels, 3, 1, 1) for k in range(n_up))

    def _rgb(self, k: int, h: torch.Tensor) -> torch.Tensor:
        conv = self.to_img if k == len(self.resolutions) - 1 else self.to_img_low[k]
        return torch.tanh(conv(h))

    def forward(self, z: torch.Tensor, y: torch.Tensor, truncation: float = 1.0, resolution: int | None = None,
                alpha: float = 1.0) -> torch.Tensor:
        """Images (N, channels, image_size, image_size) in [-1, 1].

        ``truncation`` < 1 scales ``z`` toward 0 (``z * truncation``): less variety, more typical
        samples; resampling of outlying ``z`` entries is left to the sampler.

        Progressive growing (``progressive=True`` nets): ``resolution`` (one of ``resolutions``; None = full)
        stops after that resolution's block; ``alpha`` < 1 fades that block in:
        ``(1 - alpha) * upsample(toRGB(previous features)) + alpha * toRGB(features)``.
        """
        z = check_latent(z, self.z_dim)
        y = check_labels(y, self.num_classes, z.shape[0])
        t = check_truncation(truncation)
        k, alpha = check_stage(resolution, alpha, self.resolutions, self.progressive)
        if t != 1.0:
            z = z * t
        cbn = self.cond == "cbn"
        h = self.fc(z if cbn else torch.cat([z, self.embed(y)], dim=1))
        h = h.view(z.shape[0], -1, self.start, self.start)
        h = torch.relu(self.fc_norm(h, y) if cbn else self.fc_norm(h))
        prev = h
        for block in self.blocks[:k]:
            prev, h = h, block(h, y)
        out = self._rgb(k, h)
        return out if alpha == 1.0 else fade_in(self._rgb(k - 1, prev), out, alpha)
