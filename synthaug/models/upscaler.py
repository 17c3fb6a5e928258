"""A trained super-resolution model (SRGAN): :class:`UpscalerModel` (``upscale``, memory-bounded and tiled)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..checks import check_bool, check_config_fields, check_int, check_number
from ..io import read_model_config, read_nets, write_nets
from ..registry import model_kinds
from ..utils import check_images, get_device, progress_bar
from .base import ModelDirectory, check_matches, check_model_input

__all__ = ["UpscalerModel", "UPSCALE_MEMORY_MB"]

#: Working memory (MB) one forward pass of :meth:`UpscalerModel.upscale` may use; larger images are tiled.
UPSCALE_MEMORY_MB = 512


class UpscalerModel(ModelDirectory):
    """A trained super-resolution model (SRGAN): :meth:`upscale` makes images ``scale`` times larger.

    A model directory of kind ``"srgan"``: config.json (``scale``, ``channels``, the training ``crop`` and
    settings) and ``upscaler.safetensors``; a ``content_encoder.safetensors`` next to them is training-only and not
    loaded. The net is fully convolutional: any input size works.
    """

    role = "upscaler"

    def __init__(self, upscaler: torch.nn.Module, config: dict, device=None):
        self.device = get_device(device)
        self.upscaler = upscaler.to(self.device).eval()
        self.config = config
        self._probed: tuple[float, int] | None = None  # (floats per input pixel, receptive radius), see _probe

    scale = property(lambda self: int(self.config["scale"]))
    channels = property(lambda self: int(self.config["channels"]))

    @classmethod
    def from_pretrained(cls, path, device=None) -> "UpscalerModel":
        """Load a model directory (weights from safetensors; nothing in it is executed)."""
        path = Path(path)
        cfg = read_model_config(path, required=("kind", "nets", "scale", "channels"), kinds=model_kinds("upscaler"),
                                hint=" (expected an upscaler; load generators and translators with load_model)")
        check_config_fields(cfg, path, ("scale", "channels"))
        nets = read_nets(path, cfg)
        if "upscaler" not in nets:
            raise ValueError(f"model {str(path)!r}: config.json names no 'upscaler' net, found {sorted(nets)}")
        net = nets["upscaler"]
        for key in ("scale", "channels"):
            if getattr(net, key, cfg[key]) != cfg[key]:
                raise ValueError(f"model {str(path)!r}: config.json says {key}={cfg[key]!r} but the upscaler's "
                                 f"arguments give {key}={getattr(net, key)!r}")
        return cls(net, cfg, device=device)

    def save_pretrained(self, path) -> Path:
        """Write this model as a directory (config.json + upscaler.safetensors)."""
        return write_nets(path, self.config, {"upscaler": self.upscaler})

    def check_compatible(self, channels=None, scale=None, what: str = "data") -> None:
        """Raise ``ValueError`` if the model's channels or scale differ from the given ones (None: unchecked)."""
        check_matches(self, "upscaler", what, channels=channels, scale=scale)

    # --- memory-bounded upscaling -------------------------------------------------------------------------
    @torch.no_grad()
    def _probe(self) -> tuple[float, int]:
        """``(floats per input pixel at the peak of a forward pass, receptive radius in input px)`` of the net,
        measured once on a 16x16 probe with forward hooks (no weights change): the peak is taken as three times the
        largest output of any layer (its input, its output and a skip connection alive at once); the radius is the
        sum over the convolutions of their reach ((kernel - 1) / 2 * dilation) divided by the upsampling factor they
        run at, plus 2 px for bicubic interpolation of the input (``bicubic_skip``). Both are upper bounds."""
        if self._probed is not None:
            return self._probed
        side = 16
        x = torch.zeros(1, self.channels, side, side, device=self.device)
        largest, reach = [float(self.channels)], [2.0]

        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                largest.append(output[0].numel() / (side * side))
            if isinstance(module, torch.nn.Conv2d) and inputs and inputs[0].ndim == 4:
                at = inputs[0].shape[-1] / side  # this conv's resolution relative to the input
                k = max((kk - 1) // 2 * d for kk, d in zip(module.kernel_size, module.dilation))
                reach.append(k / at)

        leaves = [m for m in self.upscaler.modules() if not list(m.children())]
        handles = [m.register_forward_hook(hook) for m in leaves]
        try:
            self.upscaler(x)
        finally:
            for h in handles:
                h.remove()
        self._probed = (3.0 * max(largest), int(math.ceil(sum(reach))))
        return self._probed

    def receptive_radius(self) -> int:
        """How far (in input px) a pixel's output can depend on its neighbours: the default tile ``overlap`` of
        :meth:`upscale`, with which tiled output equals whole-image output."""
        return self._probe()[1]

    def bytes_per_pixel(self) -> float:
        """Working memory of a forward pass per input pixel (bytes, an upper bound; float32)."""
        return 4.0 * self._probe()[0]

    def images_per_pass(self, height: int, width: int, max_memory_mb: float = UPSCALE_MEMORY_MB) -> int:
        """How many ``height x width`` images one forward pass may take within ``max_memory_mb`` of working memory:
        0 if even one image does not fit (:meth:`upscale` then tiles it)."""
        return int(max_memory_mb * 2**20 // (self.bytes_per_pixel() * height * width))

    def _tiles(self, h: int, w: int, tile: int | None, overlap: int, max_memory_mb: float) -> list[tuple[int, ...]]:
        """The tiles of an ``h x w`` image: ``(y0, y1, x0, x1)`` of each kept region (they partition the image)."""
        if tile is None:  # the largest square (with its overlap margins) within the memory budget
            side = math.sqrt(max_memory_mb * 2**20 / self.bytes_per_pixel()) - 2 * overlap
            tile = max(16, int(side))
        ny, nx = math.ceil(h / tile), math.ceil(w / tile)
        ys = [round(i * h / ny) for i in range(ny + 1)]
        xs = [round(j * w / nx) for j in range(nx + 1)]
        return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(ny) for j in range(nx)]

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return self.upscaler(x.to(self.device).float()).float().clamp(-1, 1).cpu()

    @torch.no_grad()
    def upscale(self, images: torch.Tensor, batch_size: int = 16, *, tile: int | None = None,
                overlap: int | None = None, max_memory_mb: float = UPSCALE_MEMORY_MB, value_range=None,
                progress: bool = False) -> torch.Tensor:
        """Upscale float images (NCHW or CHW, any size) ``scale`` times: float32 CPU tensors of shape
        (N, C, H * scale, W * scale), in [-1, 1] (or in ``value_range``).

        Memory is bounded: a forward pass takes at most ``batch_size`` images and no more than fit in
        ``max_memory_mb`` of working memory (:meth:`images_per_pass`); an image too large for that alone (a
        full-size frame at 4x) is cut into tiles, each run with ``overlap`` px of its neighbours around it and
        cropped back, so the output is seamless: with the default ``overlap`` (the net's :meth:`receptive_radius`)
        it equals the whole-image output up to float rounding. ``tile`` (input px) forces tiles of at most that side
        (None: the largest within the budget). Time then grows linearly with the pixels. ``progress``: a bar over the
        forward passes (images or tiles) with the time left.

        Value range, as for :meth:`TranslatorModel.translate`: ``None`` (default) takes model data in [-1, 1] and
        refuses data that looks like [0, 1] (nothing below 0, e.g. ``ToTensor`` output;
        :func:`synthaug.utils.check_value_range`), as does a channel count other than the model's; ``(-1, 1)`` states
        the range (an image with no dark pixel is then taken as it is); ``(0, 1)`` takes and gives [0, 1] data."""
        batch_size = check_int("batch_size", batch_size, 1)
        if tile is not None:
            tile = check_int("tile", tile, 1)
        overlap = self.receptive_radius() if overlap is None else check_int("overlap", overlap, 0)
        check_number("max_memory_mb", max_memory_mb, 0.0, low_open=True)
        check_bool("progress", progress)
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images: expected a float tensor (N, C, H, W) in [-1, 1], found {type(images).__name__}")
        squeeze = images.ndim == 3
        if squeeze:
            images = images[None]
        check_images(images, "images", channels=self.channels)
        unit = check_model_input(images, value_range)
        if unit:
            images = images * 2.0 - 1.0
        n, (h, w), s = len(images), images.shape[-2:], self.scale
        out = torch.empty(n, self.channels, h * s, w * s)
        per_pass = min(batch_size, self.images_per_pass(h, w, max_memory_mb))
        tiles = None
        if tile is not None or per_pass == 0:
            tiles = self._tiles(h, w, tile, overlap, max_memory_mb)
            if len(tiles) == 1:
                tiles, per_pass = None, 1
        total = n * len(tiles) if tiles else math.ceil(n / per_pass)
        with progress_bar(total, f"upscale x{s}", unit="tile" if tiles else "batch", enabled=progress,
                          leave=False) as bar:
            for i in range(0, n, 1 if tiles else per_pass):
                if not tiles:
                    out[i:i + per_pass] = self._run(images[i:i + per_pass])
                    bar.update(1)
                    continue
                for y0, y1, x0, x1 in tiles:
                    ty0, ty1, tx0, tx1 = max(0, y0 - overlap), min(h, y1 + overlap), max(0, x0 - overlap), \
                        min(w, x1 + overlap)
                    y = self._run(images[i:i + 1, :, ty0:ty1, tx0:tx1])
                    out[i:i + 1, :, y0 * s:y1 * s, x0 * s:x1 * s] = \
                        y[..., (y0 - ty0) * s:(y1 - ty0) * s, (x0 - tx0) * s:(x1 - tx0) * s]
                    bar.update(1)
        if unit:
            out = (out + 1.0) * 0.5
        return out[0] if squeeze else out
