"""Super-resolution nets (SRGAN, Ledig et al., 2017): the SRResNet upscaler, the VGG-style discriminator, the small
autoencoder whose encoder gives the content loss its feature space, and the bicubic degradation the pairs are made
with.

All nets take and give float32 NCHW images in [-1, 1]; constructor arguments are plain JSON values, so a model
directory rebuilds them with ``create_net(arch, **kwargs)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_bool, check_choice, check_int
from ..utils import check_images
from .layers import check_batch, norm_layer
from .registry import register

__all__ = ["SRResNet", "SRDiscriminator", "ContentAutoencoder", "check_scale", "downscale", "bicubic_upscale"]

SR_NORMS = ("batch", "none")
OUTPUTS = ("tanh", "clamp")


def check_scale(scale, name: str = "scale") -> int:
    """``scale`` if it is a power of 2 >= 2 (2, 4, 8, ...): the upscaler is built of x2 PixelShuffle stages."""
    check_int(name, scale, 2)
    if scale & (scale - 1):
        raise ValueError(f"{name}: expected a power of 2 >= 2 (2, 4, 8; one x2 PixelShuffle stage each), found "
                         f"{scale}")
    return int(scale)


def downscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """The degradation the pairs are made with: bicubic downsampling by ``scale`` with antialiasing
    (``F.interpolate(mode="bicubic", antialias=True)``), clamped to [-1, 1] (bicubic overshoots). Height and
    width must be multiples of ``scale`` (see :func:`synthaug.eval.superres.modcrop`)."""
    check_scale(scale)
    h, w = check_images(images, "images").shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"images: expected height and width divisible by scale = {scale}, found {h}x{w}; crop them "
                         f"to {h - h % scale}x{w - w % scale} first (synthaug.eval.superres.modcrop)")
    out = F.interpolate(images.float(), size=(h // scale, w // scale), mode="bicubic", antialias=True,
                        align_corners=False)
    return out.clamp(-1, 1)


def bicubic_upscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """The bicubic baseline: ``images`` upsampled ``scale`` times (``F.interpolate(mode="bicubic")``), clamped to
    [-1, 1]."""
    check_int("scale", scale, 1)
    h, w = check_images(images, "images").shape[-2:]
    out = F.interpolate(images.float(), size=(h * scale, w * scale), mode="bicubic", align_corners=False)
    return out.clamp(-1, 1)


class _SRBlock(nn.Module):
    """x + [conv3, norm, PReLU, conv3, norm](x) (SRResNet's residual block)."""

    def __init__(self, nf: int, norm: str):
        super().__init__()
        bias = norm == "none"
        self.body = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1, bias=bias), norm_layer(norm, nf), nn.PReLU(nf),
                                  nn.Conv2d(nf, nf, 3, padding=1, bias=bias), norm_layer(norm, nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register("upscaler", "srresnet")
class SRResNet(nn.Module):
    """SRGAN's generator (SRResNet): 9x9 conv + PReLU; ``n_blocks`` residual blocks (conv3-norm-PReLU-conv3-norm)
    and a conv3-norm, with a skip around them all; log2(``scale``) stages of conv3 (``nf`` -> 4 ``nf``) +
    PixelShuffle(2) + PReLU; 9x9 conv to ``channels``; then ``output``: ``"tanh"`` (SRGAN) or ``"clamp"`` to
    [-1, 1].

    ``bicubic_skip`` adds the bicubic upsampling of the input to the last conv's output before ``output`` (the net
    learns the residual over bicubic, which trains much faster on a small budget); it needs ``output="clamp"``.
    ``norm``: ``"batch"`` (SRGAN) or ``"none"`` (EDSR's finding: BN can be dropped). Fully convolutional: any
    input size, output ``scale`` times larger.
    """

    def __init__(self, channels: int = 3, scale: int = 4, nf: int = 64, n_blocks: int = 16, norm: str = "batch",
                 output: str = "tanh", bicubic_skip: bool = False):
        super().__init__()
        self.channels = check_int("channels", channels, 1)
        self.scale = check_scale(scale)
        check_int("nf", nf, 1)
        self.n_blocks = check_int("n_blocks", n_blocks, 1)
        check_choice("norm", norm, SR_NORMS)
        self.output = check_choice("output", output, OUTPUTS)
        self.bicubic_skip = check_bool("bicubic_skip", bicubic_skip)
        if bicubic_skip and output != "clamp":
            raise ValueError(f"output: expected 'clamp' with bicubic_skip=True (tanh would squash the bicubic image "
                             f"it adds to), found {output!r}")
        bias = norm == "none"
        self.head = nn.Sequential(nn.Conv2d(channels, nf, 9, padding=4), nn.PReLU(nf))
        self.body = nn.Sequential(*[_SRBlock(nf, norm) for _ in range(n_blocks)],
                                  nn.Conv2d(nf, nf, 3, padding=1, bias=bias), norm_layer(norm, nf))
        ups = []
        for _ in range(self.scale.bit_length() - 1):
            ups += [nn.Conv2d(nf, nf * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(nf)]
        self.upsample = nn.Sequential(*ups)
        self.tail = nn.Conv2d(nf, channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, channels, H, W) in [-1, 1] -> (N, channels, H * scale, W * scale) in [-1, 1]."""
        check_batch(x, self.channels)
        h = self.head(x)
        y = self.tail(self.upsample(h + self.body(h)))
        if self.bicubic_skip:
            y = y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return torch.tanh(y) if self.output == "tanh" else y.clamp(-1, 1)


@register("translation_discriminator", "srgan_vgg")
class SRDiscriminator(nn.Module):
    """SRGAN's VGG-style discriminator, sized by ``ndf`` and ``n_stages``: conv3 + LeakyReLU(0.2), then
    ``n_stages`` pairs of [conv3 stride 2, norm, LReLU] and [conv3 doubling the width (up to 8 ``ndf``), norm,
    LReLU] (SRGAN: ``ndf`` 64, 4 stages, 64 -> 512 channels), then a head of global average pooling and two 1x1
    convs (16 ``ndf`` units, LReLU, 1 logit). SRGAN's head is dense layers over a fixed 96 px crop; the pooling makes
    this one take any size (>= 2**n_stages px). Returns (N, 1) logits (no sigmoid)."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_stages: int = 4, norm: str = "batch"):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        check_int("ndf", ndf, 1)
        self.n_stages = check_int("n_stages", n_stages, 1)
        check_choice("norm", norm, SR_NORMS)
        bias = norm == "none"
        layers = [nn.Conv2d(in_channels, ndf, 3, padding=1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(n_stages):
            out = ndf * min(2 ** (i + 1), 8)
            layers += [nn.Conv2d(ch, ch, 3, stride=2, padding=1, bias=bias), norm_layer(norm, ch),
                       nn.LeakyReLU(0.2, True),
                       nn.Conv2d(ch, out, 3, padding=1, bias=bias), norm_layer(norm, out), nn.LeakyReLU(0.2, True)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, ndf * 16, 1), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(ndf * 16, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, 1) logits."""
        h, w = check_batch(x, self.in_channels)
        m = 2 ** self.n_stages
        if h < m or w < m:
            raise ValueError(f"image too small for the discriminator depth: expected at least {m}x{m} px for "
                             f"n_stages={self.n_stages}, found {h}x{w}")
        return self.head(self.features(x)).flatten(1)


class ContentAutoencoder(nn.Module):
    """The small convolutional autoencoder whose encoder defines SRGAN's content loss here (in place of an
    ImageNet VGG, which cannot be downloaded): trained on the high-resolution crops to reconstruct them, then
    frozen. ``encode(x)``: conv3 + LReLU, conv3 stride 2 + LReLU, conv3 (2 ``width``) + LReLU, conv3 stride 2 +
    LReLU -> (N, 2 width, H/4, W/4) maps; the decoder mirrors it with nearest x2 upsampling and ends in tanh.
    H and W must be multiples of 4 for ``forward`` (the reconstruction); ``encode`` takes any size."""

    def __init__(self, channels: int = 3, width: int = 16):
        super().__init__()
        self.channels = check_int("channels", channels, 1)
        self.width = check_int("width", width, 1)
        w = width
        act = lambda: nn.LeakyReLU(0.2, True)  # noqa: E731
        self.encoder = nn.Sequential(nn.Conv2d(channels, w, 3, padding=1), act(),
                                     nn.Conv2d(w, w, 3, stride=2, padding=1), act(),
                                     nn.Conv2d(w, 2 * w, 3, padding=1), act(),
                                     nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), act())
        self.decoder = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * w, w, 3, padding=1),
                                     act(), nn.Upsample(scale_factor=2, mode="nearest"),
                                     nn.Conv2d(w, channels, 3, padding=1), nn.Tanh())

    @property
    def spec(self) -> dict:
        """Constructor arguments (stored in the weights file's metadata)."""
        return {"channels": self.channels, "width": self.width}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps (N, 2 width, ceil(H/4), ceil(W/4)) of images in [-1, 1]."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x`` (N, channels, H, W), H and W multiples of 4."""
        return self.decoder(self.encoder(x))
