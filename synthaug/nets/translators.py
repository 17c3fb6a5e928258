"""Image-to-image translators: ResNet and U-Net generators, PatchGAN discriminators (CycleGAN / Pix2Pix).

The layouts follow Zhu et al. (CycleGAN) and Isola et al. (Pix2Pix). All nets take and give float32 NCHW
images in [-1, 1]; constructor arguments are plain JSON values so a model directory can rebuild them with
``create_net(arch, **kwargs)``. Every constructor applies :func:`init_weights` with the papers' N(0, 0.02).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..checks import check_bool, check_choice, check_int
from .layers import check_batch, norm_layer
from .registry import register

__all__ = [
    "ResnetGenerator",
    "UNetGenerator",
    "PatchDiscriminator",
    "MultiScaleDiscriminator",
    "init_weights",
    "min_input_size",
    "receptive_field",
]

NORMS = ("instance", "batch", "none")
INITS = ("normal", "xavier", "kaiming", "orthogonal")


def _check_divisible(h: int, w: int, factor: int, what: str) -> None:
    if h % factor or w % factor:
        nh, nw = -(-h // factor) * factor, -(-w // factor) * factor
        raise ValueError(f"x: expected height and width divisible by {what} = {factor}, found {h}x{w}; "
                         f"pad or resize to {nh}x{nw}")


# ----------------------------------------------------------------------------- initialisation
def init_weights(net: nn.Module, init: str = "normal", gain: float = 0.02) -> nn.Module:
    """Re-initialise ``net`` in place and return it.

    Conv/ConvTranspose/Linear weights: ``normal`` N(0, gain), ``xavier`` (xavier_normal, gain),
    ``kaiming`` (kaiming_normal, fan_in) or ``orthogonal`` (gain); their biases 0. Norm layers with
    affine weights: weight ~ N(1, gain), bias 0. Spectrally normalised convs re-initialise their original
    weight; their singular-value estimate then catches up over the next few training-mode forwards.
    """
    check_choice("init", init, INITS)
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not gain > 0:
        raise ValueError(f"gain: expected a positive number, found {gain!r}")

    def weight_of(m: nn.Module) -> torch.Tensor:
        if parametrize.is_parametrized(m, "weight"):
            return m.parametrizations.weight.original
        return m.weight

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                w = weight_of(m)
                if init == "normal":
                    nn.init.normal_(w, 0.0, gain)
                elif init == "xavier":
                    nn.init.xavier_normal_(w, gain=gain)
                elif init == "kaiming":
                    nn.init.kaiming_normal_(w, a=0, mode="fan_in")
                else:
                    nn.init.orthogonal_(w, gain=gain)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
                nn.init.normal_(m.weight, 1.0, gain)
                nn.init.zeros_(m.bias)
    return net


# ----------------------------------------------------------------------------- ResNet generator
class _StyledNorm(nn.Module):
    """A norm layer followed by a per-image, per-channel affine ``(1 + gamma) * h + beta`` whose ``gamma, beta``
    the generator sets from its noise vector before each forward (AdaIN, as in MUNIT's decoder); with no style set
    it is the plain norm."""

    def __init__(self, norm: str, channels: int):
        super().__init__()
        self.norm, self.channels, self.style = norm_layer(norm, channels), channels, None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.norm(h)
        if self.style is None:
            return h
        gamma, beta = self.style
        return h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class _ResidualBlock(nn.Module):
    """x + [reflect-pad, 3x3 conv, norm, ReLU, (dropout 0.5), reflect-pad, 3x3 conv, norm](x)."""

    def __init__(self, channels: int, norm: str, dropout: bool, styled: bool = False):
        super().__init__()
        bias = norm == "none"  # a bias right before a normalisation is cancelled by it
        make_norm = _StyledNorm if styled else norm_layer
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(norm, channels),
                  nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register("translator", "resnet")
class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet translator: encoder, ``n_blocks`` residual blocks at 1/2**n_downsampling, decoder.

    Layout: reflect-pad + 7x7 conv; ``n_downsampling`` stride-2 3x3 convs (channels doubling); residual
    blocks; as many upsampling stages; reflect-pad + 7x7 conv + tanh. Upsampling (``upsample="nearest"``, the
    default) is nearest-neighbour x2 followed by reflect-pad + 3x3 conv rather than a stride-2 transposed conv:
    same parameter count, but no checkerboard artefacts from uneven kernel overlap (Odena et al., 2016), which
    show clearly on small images such as 16-32 px digits. ``upsample="transposed"`` is the reference CycleGAN's
    stride-2 3x3 transposed conv (``output_padding=1``): a quarter of the upsampling FLOPs, about 13% of the
    whole net at ngf 64 / 9 blocks.

    Input size: H and W must be divisible by 2**n_downsampling, and the reflection pads need every padded
    map larger than its pad: the 7x7 stems need >= 4 px and the residual blocks a bottleneck >= 2 px, so the
    minimum is max(4, 2 * 2**n_downsampling) (8 px for the default n_downsampling=2).

    Noise (off by default; a translation is then a function of its input): ``noise_maps`` > 0 adds that many
    per-pixel N(0, 1) maps to the input (textures can vary), ``noise_dim`` > 0 draws a per-image style vector
    z ~ N(0, I) that a 2-layer MLP maps to a scale and shift of every residual-block and upsampling norm (AdaIN, as
    in MUNIT; colours and textures can vary). One input then has many translations, as in PixelDA (Bousmalis et
    al., 2017), where the target domain varies in ways the source image cannot tell (MNIST -> MNIST-M). The noise
    is drawn from torch's global RNG unless given (``forward(x, noise=make_noise(...))``);
    ``TranslatorModel.translate(..., seed=)`` draws it from a seeded generator. :meth:`features` (CUT's PatchNCE)
    runs with zero noise.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 n_downsampling: int = 2, norm: str = "instance", dropout: bool = False, upsample: str = "nearest",
                 noise_dim: int = 0, noise_maps: int = 0):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.out_channels = check_int("out_channels", out_channels, 1)
        check_int("ngf", ngf, 1)
        self.n_blocks = check_int("n_blocks", n_blocks, 1)
        self.n_downsampling = check_int("n_downsampling", n_downsampling, 0)
        check_choice("norm", norm, NORMS)
        check_bool("dropout", dropout)
        check_choice("upsample", upsample, ("nearest", "transposed"))
        self.noise_dim = check_int("noise_dim", noise_dim, 0)
        self.noise_maps = check_int("noise_maps", noise_maps, 0)
        bias = norm == "none"
        styled = noise_dim > 0

        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels + noise_maps, ngf, 7, bias=bias),
                  norm_layer(norm, ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(n_downsampling):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias), norm_layer(norm, ch * 2),
                       nn.ReLU(True)]
            ch *= 2
        layers += [_ResidualBlock(ch, norm, dropout, styled) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            if upsample == "nearest":
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                           nn.Conv2d(ch, ch // 2, 3, bias=bias)]
            else:
                layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)]
            layers += [(_StyledNorm if styled else norm_layer)(norm, ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self._styled = [m for m in self.model.modules() if isinstance(m, _StyledNorm)]
        if styled:
            width = sum(2 * m.channels for m in self._styled)
            self.style_mlp = nn.Sequential(nn.Linear(noise_dim, 4 * ngf), nn.ReLU(True), nn.Linear(4 * ngf, width))
        init_weights(self)

    @property
    def stochastic(self) -> bool:
        """Whether a translation depends on noise as well as on the input (``noise_dim`` or ``noise_maps`` > 0)."""
        return self.noise_dim > 0 or self.noise_maps > 0

    def make_noise(self, n: int, height: int, width: int, generator: torch.Generator | None = None,
                   device=None) -> dict[str, torch.Tensor]:
        """The noise of ``n`` translations at ``height x width``: ``{"z": (n, noise_dim), "maps": (n, noise_maps, H,
        W)}``, standard normal, from ``generator`` (None: torch's global RNG)."""
        return {"z": torch.randn(n, self.noise_dim, generator=generator).to(device),
                "maps": torch.randn(n, self.noise_maps, height, width, generator=generator).to(device)}

    def _with_noise(self, x: torch.Tensor, noise: dict | None, zero: bool = False) -> torch.Tensor:
        """Set the styled norms from ``noise["z"]`` and return ``x`` with the noise maps appended."""
        if not self.stochastic:
            return x
        n, _, h, w = x.shape
        if noise is None:
            noise = ({"z": x.new_zeros(n, self.noise_dim), "maps": x.new_zeros(n, self.noise_maps, h, w)} if zero
                     else self.make_noise(n, h, w, device=x.device))
        z, maps = noise["z"].to(x), noise["maps"].to(x)
        if z.shape != (n, self.noise_dim) or maps.shape != (n, self.noise_maps, h, w):
            raise ValueError(f"noise: expected z {(n, self.noise_dim)} and maps {(n, self.noise_maps, h, w)} for "
                             f"input {tuple(x.shape)}, found z {tuple(z.shape)} and maps {tuple(maps.shape)}")
        if self.noise_dim:
            params = self.style_mlp(z).split([2 * m.channels for m in self._styled], dim=1)
            for m, p in zip(self._styled, params):
                m.style = p.chunk(2, dim=1)
        return torch.cat([x, maps], 1) if self.noise_maps else x

    @property
    def min_size(self) -> int:
        """Smallest valid height/width: max(4, 2 * 2**n_downsampling)."""
        return max(4, 2 * 2**self.n_downsampling)

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this, 2**n_downsampling (``TranslatorModel.translate`` pads native
        inputs to it)."""
        return 2**self.n_downsampling

    def _check_input(self, x: torch.Tensor) -> None:
        h, w = check_batch(x, self.in_channels)
        m = self.min_size
        if h < m or w < m:
            raise ValueError(f"image too small for the network depth: expected at least {m}x{m} px "
                             f"(n_downsampling={self.n_downsampling}; the reflection pads need a bottleneck "
                             f">= 2 px), found {h}x{w}")
        _check_divisible(h, w, 2**self.n_downsampling, "2**n_downsampling")

    def forward(self, x: torch.Tensor, noise: dict | None = None) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]. ``noise``: see
        :meth:`make_noise` (only for a stochastic net; None draws it)."""
        self._check_input(x)
        if noise is not None and not self.stochastic:
            raise ValueError("noise: this translator takes no noise (noise_dim = noise_maps = 0), found some")
        try:
            return self.model(self._with_noise(x, noise))
        finally:
            for m in self._styled:
                m.style = None

    def _feature_index(self) -> dict[str, int]:
        """Encoder map name -> index of the layer of ``self.model`` that outputs it (-1: the input)."""
        d = self.n_downsampling
        index = {"input": -1, "stem": 3}
        index.update({f"down{i + 1}": 6 + 3 * i for i in range(d)})
        index.update({f"block{i + 1}": 4 + 3 * d + i for i in range(self.n_blocks)})
        return index

    @property
    def feature_layers(self) -> list[str]:
        """The maps :meth:`features` returns, input to bottleneck: ``input``, ``stem`` (the 7x7 conv stage),
        ``down1``, ``down2``, ... (each downsampling stage) and ``block1``, ``block2``, ... (each residual block),
        every one after its norm and ReLU."""
        return list(self._feature_index())

    def features(self, x: torch.Tensor, layers) -> list[torch.Tensor]:
        """The encoder maps named ``layers`` (see :attr:`feature_layers`) of input ``x``, in that order, running
        the net only as deep as the last of them (CUT's PatchNCE)."""
        self._check_input(x)
        index = self._feature_index()
        unknown = [n for n in layers if n not in index]
        if unknown or not layers:
            raise ValueError(f"layers: expected names among {list(index)}, found {unknown or list(layers)}")
        wanted = {index[n] for n in layers}
        maps = {-1: x}
        try:
            x = self._with_noise(x, None, zero=True)
            for i, layer in enumerate(self.model[:max(wanted) + 1]):
                x = layer(x)
                if i in wanted:
                    maps[i] = x
        finally:
            for m in self._styled:
                m.style = None
        return [maps[index[n]] for n in layers]


# ----------------------------------------------------------------------------- U-Net generator
def _depth_from_size(image_size) -> int:
    check_int("image_size", image_size, 2)
    if image_size & (image_size - 1):
        up = 1 << image_size.bit_length()
        fits = (image_size & -image_size).bit_length() - 1  # largest k with image_size % 2**k == 0
        hint = f" or pass num_downs explicitly (num_downs={fits} fits {image_size} px)" if fits else ""
        raise ValueError(f"image_size: expected a power of two to derive num_downs = log2(image_size), "
                         f"found {image_size}; resize or pad the images to {up}x{up} and use "
                         f"image_size={up}{hint}")
    return image_size.bit_length() - 1


@register("translator", "unet")
class UNetGenerator(nn.Module):
    """Pix2Pix's U-Net: ``num_downs`` stride-2 4x4 convs down, as many transposed convs up, skip connections.

    Encoder widths are ngf * (1, 2, 4, 8, 8, ...); each decoder stage sees its own output concatenated with
    the encoder map of the same size. Encoder: LeakyReLU(0.2) + conv + norm (no norm on the first and the
    innermost conv); decoder: ReLU + transposed conv + norm, tanh at the end. With ``dropout`` the three
    decoder stages after the innermost one (and any further ones at full width ngf*8) get Dropout(0.5),
    which is Pix2Pix's noise source: at num_downs=8 this is exactly the original layout, and shallower nets
    for small images keep some dropout too. ``num_downs`` defaults to log2(image_size) (a 1x1 bottleneck);
    H and W must be divisible by 2**num_downs.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_downs: int | None = None, ngf: int = 64,
                 norm: str = "batch", dropout: bool = True, image_size: int | None = None):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.out_channels = check_int("out_channels", out_channels, 1)
        check_int("ngf", ngf, 1)
        check_choice("norm", norm, NORMS)
        check_bool("dropout", dropout)
        if num_downs is None:
            if image_size is None:
                raise ValueError("num_downs: expected an int >= 1, or image_size to derive it from, found neither")
            num_downs = _depth_from_size(image_size)
        check_int("num_downs", num_downs, 1)
        if image_size is not None:
            check_int("image_size", image_size, 1)
            if image_size % 2**num_downs:
                raise ValueError(f"image_size: expected a multiple of 2**num_downs = {2**num_downs}, "
                                 f"found {image_size}")
        self.num_downs = num_downs
        self.image_size = image_size

        d = num_downs
        width = [ngf * min(2**i, 8) for i in range(d)]  # output channels of encoder stage i
        bias = norm == "none"
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i in range(d):
            c_in = in_channels if i == 0 else width[i - 1]
            first, innermost = i == 0, i == d - 1
            has_norm = not (first or innermost)
            down = [] if first else [nn.LeakyReLU(0.2)]  # not in place: its input is also a kept skip
            down.append(nn.Conv2d(c_in, width[i], 4, stride=2, padding=1, bias=bias or not has_norm))
            if has_norm:
                down.append(norm_layer(norm, width[i]))
            self.downs.append(nn.Sequential(*down))

            up_in = width[i] if innermost else 2 * width[i]
            if first:
                up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, out_channels, 4, stride=2, padding=1), nn.Tanh()]
            else:
                up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, c_in, 4, stride=2, padding=1, bias=bias),
                      norm_layer(norm, c_in)]
                if dropout and not innermost and (i >= d - 4 or width[i - 1] == width[i] == ngf * 8):
                    up.append(nn.Dropout(0.5))
            self.ups.append(nn.Sequential(*up))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""
        h, w = check_batch(x, self.in_channels)
        _check_divisible(h, w, 2**self.num_downs, "2**num_downs")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.ups[-1](skips[-1])
        for i in range(self.num_downs - 2, -1, -1):
            x = self.ups[i](torch.cat([skips[i], x], dim=1))
        return x


# ----------------------------------------------------------------------------- PatchGAN discriminators
def _patch_conv_specs(n_layers: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of each conv of a PatchDiscriminator with ``n_layers``."""
    return [(4, 2, 1)] * n_layers + [(4, 1, 1), (4, 1, 1)]


def receptive_field(n_layers: int) -> int:
    """Receptive field in pixels of one output logit of a PatchDiscriminator (70 at n_layers=3)."""
    check_int("n_layers", n_layers, 1)
    rf, jump = 1, 1
    for k, s, _ in _patch_conv_specs(n_layers):
        rf += (k - 1) * jump
        jump *= s
    return rf


def min_input_size(n_layers: int) -> int:
    """Smallest height/width a PatchDiscriminator with ``n_layers`` accepts: 3 * 2**n_layers.

    Each stride-2 conv maps H to floor(H / 2) and each of the two stride-1 convs to H - 1, so the output
    has floor(H / 2**n_layers) - 2 >= 1 rows (12 px at n_layers=2, 24 px at 3).
    """
    check_int("n_layers", n_layers, 1)
    return 3 * 2**n_layers


@register("translation_discriminator", "patchgan")
class PatchDiscriminator(nn.Module):
    """PatchGAN: a fully convolutional classifier of overlapping patches, returning (N, 1, h, w) logits.

    ``n_layers`` stride-2 4x4 convs (widths ndf * (1, 2, 4, 8, 8, ...)), one stride-1 4x4 conv, and a
    stride-1 4x4 conv to one channel; LeakyReLU(0.2) between, norm on all but the first and last conv.
    n_layers=3 gives the 70x70 PatchGAN; see :func:`receptive_field` and :func:`min_input_size`.
    For Pix2Pix pass in_channels = input channels + output channels and feed the concatenated pair.
    ``spectral_norm`` wraps every conv in ``torch.nn.utils.parametrizations.spectral_norm``.
    """

    min_input_size = staticmethod(min_input_size)
    receptive_field = staticmethod(receptive_field)

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 spectral_norm: bool = False):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        check_int("ndf", ndf, 1)
        self.n_layers = check_int("n_layers", n_layers, 1)
        check_choice("norm", norm, NORMS)
        check_bool("spectral_norm", spectral_norm)
        bias = norm == "none"

        layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1  # the last widening conv keeps the resolution
            layers += [nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=bias), norm_layer(norm, out),
                       nn.LeakyReLU(0.2, True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights(self)
        if spectral_norm:  # after init, so the power-iteration estimate starts from the final weights
            for m in self.model:
                if isinstance(m, nn.Conv2d):
                    _spectral_norm(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, 1, h, w) patch logits (no sigmoid)."""
        h, w = check_batch(x, self.in_channels)
        m = min_input_size(self.n_layers)
        if h < m or w < m:
            fits = (min(h, w) // 3).bit_length() - 1  # largest n_layers with 3 * 2**n_layers <= size
            hint = f"; n_layers={fits} accepts it" if fits >= 1 else ""
            raise ValueError(f"image too small for the discriminator depth: expected at least {m}x{m} px for "
                             f"n_layers={self.n_layers}, found {h}x{w}{hint}")
        return self.model(x)


@register("translation_discriminator", "multiscale_patchgan")
class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` independent PatchDiscriminators, scale k seeing the input average-pooled k times.

    Each pooling is a 3x3 stride-2 average (count_include_pad=False), halving the size (rounding up), as in
    pix2pixHD. ``forward`` returns a list of patch-logit tensors, finest scale first.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, num_scales: int = 2,
                 norm: str = "instance", spectral_norm: bool = False):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.n_layers = check_int("n_layers", n_layers, 1)
        self.num_scales = check_int("num_scales", num_scales, 1)
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(in_channels, ndf, n_layers, norm, spectral_norm) for _ in range(num_scales))

    @property
    def min_size(self) -> int:
        """Smallest height/width whose coarsest scale still fits one PatchDiscriminator."""
        return (min_input_size(self.n_layers) - 1) * 2 ** (self.num_scales - 1) + 1

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, in_channels, H, W) -> list of ``num_scales`` (N, 1, h_k, w_k) logits, finest first."""
        h, w = check_batch(x, self.in_channels)
        m = self.min_size
        if h < m or w < m:
            raise ValueError(f"image too small for the discriminator depth: expected at least {m}x{m} px for "
                             f"n_layers={self.n_layers} at num_scales={self.num_scales}, found {h}x{w}")
        outs = []
        for k, disc in enumerate(self.discriminators):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(disc(x))
        return outs
