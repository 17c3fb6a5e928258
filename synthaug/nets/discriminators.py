"""Class-conditional projection discriminator (optional spectral norm, minibatch std, AC head)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_bool
from .layers import (
    MinibatchStdDev,
    check_net_sizes,
    check_images_input,
    check_labels,
    check_stage,
    grow_resolutions,
    maybe_sn,
    start_resolution,
)
from .registry import register

__all__ = ["ProjectionDiscriminator"]


@register("discriminator", "projection")
class ProjectionDiscriminator(nn.Module):
    """Conv stack with strided downsampling, then global sum pooling and a projection head.

    ``image_size`` is halved by 4x4 stride-2 convs down to 4x4 (7x7 for 28 px); widths double
    at each halving from ``base_channels``, capped at ``max_channels``. The adversarial logit is
    ``linear(h) + <embed(y), h>`` (Miyato & Koyama 2018), with ``h`` the sum-pooled features.

    Args:
        num_classes: number of classes (1 = unconditional; the projection then acts as a bias-free
            second linear term).
        image_size: input size, one of 16, 28, 32, 64, 128.
        channels: input image channels.
        base_channels: width at the input resolution.
        spectral_norm: spectral normalisation on every conv and linear layer.
        mbstd: minibatch standard-deviation feature (group size ``min(4, N)``) before the last conv.
        ac_head: add an auxiliary classifier head (AC-GAN), read by :meth:`forward_with_class`.
        max_channels: cap on any layer's width.
        projection: include the class projection term in the adversarial logit.
        progressive: also build a fromRGB conv for every lower resolution (``from_img_low``), so that
            every forward method takes ``resolution=`` / ``alpha=`` (progressive growing; the input is then
            ``resolution`` px). Off, the net and its parameter names are exactly those of a net without the option.
    """

    def __init__(self, num_classes: int, image_size: int, channels: int = 1, base_channels: int = 16,
                 spectral_norm: bool = True, mbstd: bool = True, ac_head: bool = False,
                 max_channels: int = 128, projection: bool = True, progressive: bool = False):
        super().__init__()
        self.num_classes, self.image_size, self.channels = check_net_sizes(num_classes, image_size, channels,
                                                                       base_channels, max_channels)
        sn = check_bool("spectral_norm", spectral_norm)
        self.use_mbstd = check_bool("mbstd", mbstd)
        self.ac_head = check_bool("ac_head", ac_head)
        self.projection = check_bool("projection", projection)
        _, n_down = start_resolution(image_size)
        widths = [min(max_channels, base_channels * 2**i) for i in range(n_down + 1)]
        self.from_img = maybe_sn(nn.Conv2d(channels, widths[0], 3, 1, 1), sn)
        self.downs = nn.ModuleList(maybe_sn(nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1), sn)
                                   for i in range(n_down))
        self.mbstd = MinibatchStdDev(4) if mbstd else None
        top = widths[-1]
        self.final = maybe_sn(nn.Conv2d(top + int(mbstd), top, 3, 1, 1), sn)
        self.linear = maybe_sn(nn.Linear(top, 1), sn)
        self.embed = maybe_sn(nn.Embedding(num_classes, top), sn) if projection else None
        self.classifier = maybe_sn(nn.Linear(top, num_classes), sn) if ac_head else None
        self.resolutions = grow_resolutions(image_size)
        self.progressive = check_bool("progressive", progressive)
        if self.progressive:  # built last: every other weight is initialised as in a net without them
            self.from_img_low = nn.ModuleList(maybe_sn(nn.Conv2d(channels, widths[j], 3, 1, 1), sn)
                                              for j in range(1, n_down + 1))

    def _from_rgb(self, j: int, x: torch.Tensor) -> torch.Tensor:
        """fromRGB of the input ``j`` halvings below the full resolution."""
        return F.leaky_relu(self.from_img(x) if j == 0 else self.from_img_low[j - 1](x), 0.2)

    def _check_input(self, x, resolution, alpha) -> tuple[torch.Tensor, int, float]:
        k, alpha = check_stage(resolution, alpha, self.resolutions, self.progressive)
        return check_images_input(x, self.channels, self.resolutions[k]), k, alpha

    def features(self, x: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Sum-pooled features ``h`` (N, C) of a validated batch at ``resolution`` (None = full).

        While the top block fades in (``alpha`` < 1) its output is blended with the fromRGB of the input
        average-pooled to the resolution below: ``(1 - alpha) * fromRGB_low(pool(x)) + alpha * block(fromRGB(x))``.
        """
        k, alpha = check_stage(resolution, alpha, self.resolutions, self.progressive)
        j = len(self.resolutions) - 1 - k  # halvings already behind the input
        h = self._from_rgb(j, x)
        if alpha < 1.0:
            h = F.leaky_relu(self.downs[j](h), 0.2)
            low = self._from_rgb(j + 1, F.avg_pool2d(x, 2))
            h = (1.0 - alpha) * low + alpha * h
            j += 1
        for conv in self.downs[j:]:
            h = F.leaky_relu(conv(h), 0.2)
        if self.mbstd is not None:
            h = self.mbstd(h)
        h = F.leaky_relu(self.final(h), 0.2)
        return h.sum(dim=(2, 3))

    def forward_with_class(self, x: torch.Tensor, y: torch.Tensor, resolution: int | None = None,
                           alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(adversarial logits (N,), class logits (N, num_classes) or None without an AC head)``."""
        x, k, alpha = self._check_input(x, resolution, alpha)
        y = check_labels(y, self.num_classes, x.shape[0])
        h = self.features(x, self.resolutions[k], alpha)
        adv = self.linear(h).squeeze(1)
        if self.embed is not None:
            adv = adv + (self.embed(y) * h).sum(dim=1)
        cls = self.classifier(h) if self.classifier is not None else None
        return adv, cls

    def forward_parts(self, x: torch.Tensor, y: torch.Tensor | None = None, resolution: int | None = None,
                      alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The two terms of the adversarial logit, kept apart, and the class logits, from one pass.

        Returns ``(unconditional (N,), projection (N,) or None, class logits (N, num_classes) or None)``:
        ``unconditional = linear(h)`` models the marginal ratio ``log p(x) / q(x)`` and needs no label;
        ``projection = <embed(y), h>`` models ``log p(y|x) / q(y|x)``; it is None without ``y`` or with
        ``projection=False``. ``unconditional + projection`` is :meth:`forward`'s logit. Semi-supervised
        training scores unlabelled real images with the unconditional term alone.
        """
        x, k, alpha = self._check_input(x, resolution, alpha)
        if y is not None:
            y = check_labels(y, self.num_classes, x.shape[0])
        h = self.features(x, self.resolutions[k], alpha)
        uncond = self.linear(h).squeeze(1)
        proj = (self.embed(y) * h).sum(dim=1) if y is not None and self.embed is not None else None
        cls = self.classifier(h) if self.classifier is not None else None
        return uncond, proj, cls

    def forward_unconditional(self, x: torch.Tensor, resolution: int | None = None,
                              alpha: float = 1.0) -> torch.Tensor:
        """The label-free part of the adversarial logit (N,): ``linear(h)``, for images without a class."""
        return self.forward_parts(x, resolution=resolution, alpha=alpha)[0]

    def forward(self, x: torch.Tensor, y: torch.Tensor, resolution: int | None = None,
                alpha: float = 1.0) -> torch.Tensor:
        """Adversarial logits (N,); ``resolution`` / ``alpha``: the progressive-growing stage (see :meth:`features`)."""
        return self.forward_with_class(x, y, resolution=resolution, alpha=alpha)[0]
