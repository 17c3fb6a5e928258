"""Style-based class-conditional generator: mapping network, learned constant, noise and AdaIN."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_bool, check_choice, check_int, check_number, check_probability
from .layers import (
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

__all__ = ["StyleGenerator"]

NOISE_MODES = ("random", "const", "none")


def _pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class _StyleLayer(nn.Module):
    """[upsample] conv 3x3 -> per-channel scaled noise -> bias + LeakyReLU -> AdaIN(w)."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, up: str | None):
        super().__init__()
        if up == "transpose":
            self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        elif up == "nearest":
            self.conv = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                      nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
        else:
            self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.noise_strength = nn.Parameter(torch.zeros(1, cout, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        self.affine = nn.Linear(w_dim, 2 * cout)
        nn.init.zeros_(self.affine.bias)  # style scale starts at 1 + 0, bias at 0

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        x = self.conv(x)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
            x = x + self.noise_strength * noise
        elif noise_mode == "const":
            x = x + self.noise_strength * self.noise_const.to(x.dtype)
        x = F.leaky_relu(x + self.bias, 0.2)
        scale, shift = self.affine(w).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return F.instance_norm(x) * (1 + scale) + shift


@register("generator", "style")
class StyleGenerator(nn.Module):
    """Class-conditional style-based generator (StyleGAN-1 flavour, AdaIN rather than modulated conv).

    ``mapping``: pixel-normalised ``z`` concatenated with a pixel-normalised class embedding goes
    through an MLP to ``w``. ``synthesis``: a learned constant (7x7 for 28 px, 4x4 otherwise) then
    one style layer per resolution (``convs_per_res`` of them), each [upsample] conv, per-channel
    learned-scale noise, LeakyReLU, instance norm and a style scale/bias from an affine of its
    ``w``; a 1x1 conv and tanh make the image. Widths as in the DCGAN generator.

    In training mode: ``w_avg`` (one running mean of ``w`` per class, EMA ``w_avg_beta``) is
    updated, and with probability ``mixing_prob`` per sample a second ``z`` of the same class
    supplies the styles from a random crossover layer on (style-mixing regularisation).

    ``noise_mode`` (attribute, not saved in config): ``"random"`` fresh noise each call,
    ``"const"`` a fixed noise image per layer (saved with the weights), ``"none"`` no noise.

    Args:
        num_classes, image_size, channels, z_dim: as for every generator.
        w_dim: size of the intermediate latent ``w``.
        mapping_layers: depth of the mapping MLP.
        base_channels, max_channels: width at the output resolution and cap on any width.
        convs_per_res: style layers per resolution.
        mixing_prob: style-mixing probability in training.
        embed_dim: size of the class embedding fed to the mapping network.
        upsample: ``"transpose"`` (transposed conv 4x4/2, fastest on CPU) or ``"nearest"``.
        w_avg_beta: EMA decay of ``w_avg``.
        progressive: also build a 1x1 toRGB conv for every lower resolution (``to_img_low``), so that
            ``forward(..., resolution=, alpha=)`` can run the progressive-growing schedule. Off, the net
            and its parameter names are exactly those of a net without the option.
    """

    def __init__(self, num_classes: int, image_size: int, channels: int = 1, z_dim: int = 64,
                 w_dim: int = 128, mapping_layers: int = 4, base_channels: int = 16, max_channels: int = 128,
                 convs_per_res: int = 1, mixing_prob: float = 0.9, embed_dim: int = 32,
                 upsample: str = "transpose", w_avg_beta: float = 0.995, progressive: bool = False):
        super().__init__()
        self.num_classes, self.image_size, self.channels = check_net_sizes(num_classes, image_size, channels,
                                                                       base_channels, max_channels)
        self.z_dim = check_int("z_dim", z_dim)
        self.w_dim = check_int("w_dim", w_dim)
        check_int("mapping_layers", mapping_layers)
        check_int("convs_per_res", convs_per_res)
        check_int("embed_dim", embed_dim)
        check_choice("upsample", upsample, ("transpose", "nearest"))
        self.mixing_prob = check_probability("mixing_prob", mixing_prob)
        self.w_avg_beta = check_number("w_avg_beta", w_avg_beta, 0.0, 1.0, high_open=True)
        self.noise_mode = "random"

        self.embed = nn.Embedding(num_classes, embed_dim)
        layers: list[nn.Module] = []
        dim = z_dim + embed_dim
        for _ in range(mapping_layers):
            layers += [nn.Linear(dim, w_dim), nn.LeakyReLU(0.2)]
            dim = w_dim
        self.mapping_net = nn.Sequential(*layers)
        self.register_buffer("w_avg", torch.zeros(num_classes, w_dim))

        start, n_up = start_resolution(image_size)
        widths = [min(max_channels, base_channels * 2 ** (n_up - i)) for i in range(n_up + 1)]
        self.const = nn.Parameter(torch.randn(1, widths[0], start, start))
        style_layers = []
        cin, res = widths[0], start
        for i, cout in enumerate(widths):
            for j in range(convs_per_res):
                up = upsample if (i > 0 and j == 0) else None
                res = res * 2 if up else res
                style_layers.append(_StyleLayer(cin, cout, w_dim, res, up))
                cin = cout
        self.layers = nn.ModuleList(style_layers)
        self.to_img = nn.Conv2d(widths[-1], channels, 1)
        self.convs_per_res = convs_per_res
        self.resolutions = grow_resolutions(image_size)
        self.progressive = check_bool("progressive", progressive)
        if self.progressive:  # built last: every other weight is initialised as in a net without them
            self.to_img_low = nn.ModuleList(nn.Conv2d(widths[k], channels, 1) for k in range(n_up))

    @property
    def num_ws(self) -> int:
        """Number of style inputs (one ``w`` per style layer)."""
        return len(self.layers)

    def _map(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.mapping_net(torch.cat([_pixel_norm(z), _pixel_norm(self.embed(y))], dim=1))

    def _truncate(self, w: torch.Tensor, y: torch.Tensor, t: float) -> torch.Tensor:
        if t == 1.0:
            return w
        avg = self.w_avg[y].to(w.dtype)
        if w.ndim == 3:
            avg = avg.unsqueeze(1)
        return avg + t * (w - avg)

    def mapping(self, z: torch.Tensor, y: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """``w`` (N, w_dim) for latents ``z`` and classes ``y``, truncated toward the class's ``w_avg``."""
        z = check_latent(z, self.z_dim)
        y = check_labels(y, self.num_classes, z.shape[0])
        return self._truncate(self._map(z, y), y, check_truncation(truncation))

    def _rgb(self, k: int, x: torch.Tensor) -> torch.Tensor:
        conv = self.to_img if k == len(self.resolutions) - 1 else self.to_img_low[k]
        return torch.tanh(conv(x))

    def synthesis(self, ws: torch.Tensor, resolution: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Images (N, channels, image_size, image_size) in [-1, 1] from styles ``ws`` (N, num_ws, w_dim).

        ``resolution`` / ``alpha``: the progressive-growing stage, as in :meth:`forward` (the styles of the
        layers above ``resolution`` are ignored).
        """
        want = (self.num_ws, self.w_dim)
        if not isinstance(ws, torch.Tensor) or ws.ndim != 3 or tuple(ws.shape[1:]) != want:
            found = tuple(ws.shape) if isinstance(ws, torch.Tensor) else type(ws).__name__
            raise ValueError(f"ws: expected shape (N, {self.num_ws}, {self.w_dim}), found {found}")
        check_choice("noise_mode", self.noise_mode, NOISE_MODES)
        k, alpha = check_stage(resolution, alpha, self.resolutions, self.progressive)
        n = (k + 1) * self.convs_per_res
        x = prev = self.const.expand(ws.shape[0], -1, -1, -1)
        for i, layer in enumerate(self.layers[:n]):
            if i == n - self.convs_per_res:
                prev = x  # the features of the resolution below
            x = layer(x, ws[:, i], self.noise_mode)
        out = self._rgb(k, x)
        return out if alpha == 1.0 else fade_in(self._rgb(k - 1, prev), out, alpha)

    @torch.no_grad()
    def _update_w_avg(self, w: torch.Tensor, y: torch.Tensor) -> None:
        sums = torch.zeros_like(self.w_avg).index_add_(0, y, w.detach().to(self.w_avg.dtype))
        counts = torch.bincount(y, minlength=self.num_classes).to(sums.dtype).unsqueeze(1)
        mean = sums / counts.clamp(min=1)
        updated = self.w_avg.lerp(mean, 1.0 - self.w_avg_beta)
        self.w_avg.copy_(torch.where(counts > 0, updated, self.w_avg))

    def forward(self, z: torch.Tensor, y: torch.Tensor, truncation: float = 1.0, resolution: int | None = None,
                alpha: float = 1.0) -> torch.Tensor:
        """Images (N, channels, image_size, image_size) in [-1, 1].

        ``truncation`` t moves each ``w`` toward its class's running average:
        ``w_avg[y] + t * (w - w_avg[y])`` (1 = off, 0 = the class average image).

        Progressive growing (``progressive=True`` nets): ``resolution`` (one of ``resolutions``; None = full)
        stops after that resolution's layers; ``alpha`` < 1 fades them in:
        ``(1 - alpha) * upsample(toRGB(previous features)) + alpha * toRGB(features)``.
        """
        z = check_latent(z, self.z_dim)
        y = check_labels(y, self.num_classes, z.shape[0])
        t = check_truncation(truncation)
        check_stage(resolution, alpha, self.resolutions, self.progressive)  # before w_avg moves
        w = self._map(z, y)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if self.training:
            self._update_w_avg(w, y)
            if self.mixing_prob > 0 and self.num_ws > 1:
                n = z.shape[0]
                w2 = self._map(torch.randn_like(z), y)
                cutoff = torch.randint(1, self.num_ws, (n,), device=z.device)
                mixed = torch.rand(n, device=z.device) < self.mixing_prob
                cutoff = torch.where(mixed, cutoff, torch.full_like(cutoff, self.num_ws))
                use_w2 = torch.arange(self.num_ws, device=z.device).unsqueeze(0) >= cutoff.unsqueeze(1)
                ws = torch.where(use_w2.unsqueeze(-1), w2.unsqueeze(1), ws)
        ws = self._truncate(ws, y, t)
        if resolution is None and alpha == 1.0:
            return self.synthesis(ws)
        return self.synthesis(ws, resolution=resolution, alpha=alpha)
