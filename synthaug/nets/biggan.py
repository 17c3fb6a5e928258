"""BigGAN-style class-conditional generator, sized for a CPU (Brock et al. 2019, "Large Scale GAN Training")."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_bool, check_int
from .layers import (
    check_image_size,
    check_net_sizes,
    check_labels,
    check_latent,
    check_truncation,
    maybe_sn,
    start_resolution,
)
from .registry import register

__all__ = ["BigGANGenerator", "SelfAttention", "attention_resolutions"]


def _init(module: nn.Module, sn: bool) -> nn.Module:
    """Orthogonal weight init, zero bias (BigGAN's G_init='ortho'), then optional spectral norm."""
    nn.init.orthogonal_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
    return maybe_sn(module, sn)


class ClassConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine; gain ``1 + W_g c`` and bias ``W_b c`` are linear in a condition vector.

    ``c`` is BigGAN's per-block condition: the shared class embedding concatenated with the block's latent chunk.
    """

    def __init__(self, num_features: int, cond_dim: int, sn: bool, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False, eps=eps, momentum=momentum)
        self.gain = _init(nn.Linear(cond_dim, num_features, bias=False), sn)
        self.bias = _init(nn.Linear(cond_dim, num_features, bias=False), sn)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(c)[:, :, None, None]
        return self.bn(x) * gain + self.bias(c)[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``x + gamma * o(softmax(theta(x)^T phi(x)) g(x))``, ``gamma`` starting at 0.

    Keys and values are max-pooled 2x (as in BigGAN), so the cost is a quarter of full attention.
    """

    def __init__(self, channels: int, sn: bool):
        super().__init__()
        key, value = max(1, channels // 8), max(1, channels // 2)
        self.theta = _init(nn.Conv2d(channels, key, 1, bias=False), sn)
        self.phi = _init(nn.Conv2d(channels, key, 1, bias=False), sn)
        self.g = _init(nn.Conv2d(channels, value, 1, bias=False), sn)
        self.o = _init(nn.Conv2d(value, channels, 1, bias=False), sn)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        theta = self.theta(x).flatten(2)                         # (N, k, HW)
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)            # (N, k, HW/4)
        g = F.max_pool2d(self.g(x), 2).flatten(2)                # (N, v, HW/4)
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (N, HW, HW/4)
        o = (g @ attn.transpose(1, 2)).view(n, -1, h, w)
        return x + self.gamma * self.o(o)


class _GBlock(nn.Module):
    """Residual up-block: CBN, ReLU, 2x nearest upsample, conv 3x3, CBN, ReLU, conv 3x3; shortcut 1x1 conv of the
    upsampled input (applied before the upsampling, which is the same for a pointwise conv and 4x cheaper)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, sn: bool):
        super().__init__()
        self.bn1 = ClassConditionalBatchNorm2d(cin, cond_dim, sn)
        self.conv1 = _init(nn.Conv2d(cin, cout, 3, 1, 1), sn)
        self.bn2 = ClassConditionalBatchNorm2d(cout, cond_dim, sn)
        self.conv2 = _init(nn.Conv2d(cout, cout, 3, 1, 1), sn)
        self.shortcut = _init(nn.Conv2d(cin, cout, 1), sn)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(torch.relu(self.bn1(x, c)), scale_factor=2, mode="nearest")
        h = self.conv2(torch.relu(self.bn2(self.conv1(h), c)))
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")


def attention_resolutions(image_size: int) -> list[int]:
    """The resolutions an up-block outputs for ``image_size`` (where self-attention may sit)."""
    start, n_up = start_resolution(check_image_size(image_size))
    return [start * 2 ** (i + 1) for i in range(n_up)]


def _latent_chunks(z_dim: int, parts: int) -> list[int]:
    """``z_dim`` split into ``parts`` near-equal chunk sizes (the first ones one larger when it does not divide)."""
    return [z_dim // parts + (1 if i < z_dim % parts else 0) for i in range(parts)]


@register("generator", "biggan")
class BigGANGenerator(nn.Module):
    """Class-conditional BigGAN-style generator: residual up-blocks, class-conditional BatchNorm from a shared
    class embedding and a hierarchical latent, one self-attention block, spectral norm and orthogonal init.

    ``z`` (N, z_dim) is split into one chunk for the input and one per up-block (``hier=True``): the first goes
    through a linear layer to a ``start x start`` map (7x7 for 28 px, 4x4 otherwise); up-block ``i`` conditions
    both its BatchNorms on ``[shared_embed(y), z_chunk_{i+1}]`` (gain ``1 + W_g c``, bias ``W_b c``). Each
    up-block doubles the resolution; widths halve at each doubling, from ``min(max_channels, base_channels *
    2**doublings)`` down to ``base_channels``. A SAGAN self-attention block follows the up-block whose output
    is ``attn_res`` px. Output: BatchNorm, ReLU, conv 3x3, tanh. Recommended with ``CGANConfig.ortho_reg``
    (BigGAN's orthogonal regularisation; ``default_ortho_reg`` is used when the config leaves it None).

    Args:
        num_classes, image_size, channels: as for every generator (sizes 16, 28, 32, 64, 128).
        z_dim: latent size; at least one entry per chunk (number of up-blocks + 1) with ``hier``.
        base_channels: width at the output resolution.
        max_channels: cap on any layer's width.
        shared_dim: size of the shared class embedding.
        hier: hierarchical latent (chunks of ``z`` feed every block's BatchNorm); False: ``z`` only feeds the
            input layer and the BatchNorms see the class embedding alone.
        attn_res: output resolution of the up-block followed by self-attention (one of
            :func:`attention_resolutions`), ``"auto"`` (the lower middle one: 14 px at 28 px, 16 px at 32 and 64
            px) or None (no attention).
        spectral_norm: spectral normalisation of every conv and linear layer (as in BigGAN's generator).
    """

    default_ortho_reg = 1e-4  # BigGAN's beta for the off-diagonal orthogonal regulariser

    def __init__(self, num_classes: int, image_size: int, channels: int = 1, z_dim: int = 64,
                 base_channels: int = 8, max_channels: int = 64, shared_dim: int = 32, hier: bool = True,
                 attn_res: int | str | None = "auto", spectral_norm: bool = True):
        super().__init__()
        self.num_classes, self.image_size, self.channels = check_net_sizes(num_classes, image_size, channels,
                                                                       base_channels, max_channels)
        self.z_dim = check_int("z_dim", z_dim)
        check_int("shared_dim", shared_dim)
        self.hier = check_bool("hier", hier)
        sn = check_bool("spectral_norm", spectral_norm)
        start, n_up = start_resolution(image_size)
        resolutions = attention_resolutions(image_size)
        if attn_res == "auto":
            attn_res = resolutions[(n_up - 1) // 2]
        elif attn_res is not None and (isinstance(attn_res, bool) or not isinstance(attn_res, int)
                                       or attn_res not in resolutions):
            raise ValueError(f"attn_res: expected one of {resolutions} (an up-block's output resolution at "
                             f"image_size {image_size}), 'auto' or None, found {attn_res!r}")
        self.attn_res = attn_res
        n_chunks = n_up + 1 if hier else 1
        if z_dim < n_chunks:
            raise ValueError(f"z_dim: expected at least {n_chunks} (one latent chunk for the input and one per "
                             f"up-block at image_size {image_size}), found {z_dim}")
        self.chunks = _latent_chunks(z_dim, n_chunks)
        widths = [min(max_channels, base_channels * 2 ** (n_up - i)) for i in range(n_up + 1)]
        self.start = start
        self.shared = nn.Embedding(num_classes, shared_dim)
        nn.init.normal_(self.shared.weight)
        self.linear = _init(nn.Linear(self.chunks[0], widths[0] * start * start), sn)
        cond_dims = [shared_dim + (self.chunks[i + 1] if hier else 0) for i in range(n_up)]
        self.blocks = nn.ModuleList(_GBlock(widths[i], widths[i + 1], cond_dims[i], sn) for i in range(n_up))
        self.attention = nn.ModuleDict(
            {str(i): SelfAttention(widths[i + 1], sn) for i, r in enumerate(resolutions) if r == attn_res})
        self.out_bn = nn.BatchNorm2d(widths[-1])
        self.to_img = _init(nn.Conv2d(widths[-1], channels, 3, 1, 1), sn)

    def forward(self, z: torch.Tensor, y: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """Images (N, channels, image_size, image_size) in [-1, 1].

        ``truncation`` < 1 scales ``z`` toward 0 (``z * truncation``), as the DCGAN generator does; BigGAN's
        truncated-normal latent is drawn by the sampler (``GeneratorModel.sample(z_threshold=...)``), and the
        two together give BigGAN's published sampling ``truncation * truncnorm(-threshold, threshold)``.
        """
        z = check_latent(z, self.z_dim)
        y = check_labels(y, self.num_classes, z.shape[0])
        t = check_truncation(truncation)
        if t != 1.0:
            z = z * t
        zs = torch.split(z, self.chunks, dim=1)
        emb = self.shared(y)
        conds = [torch.cat([emb, zc], dim=1) for zc in zs[1:]] if self.hier else [emb] * len(self.blocks)
        h = self.linear(zs[0]).view(z.shape[0], -1, self.start, self.start)
        for i, block in enumerate(self.blocks):
            h = block(h, conds[i])
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return torch.tanh(self.to_img(torch.relu(self.out_bn(h))))
