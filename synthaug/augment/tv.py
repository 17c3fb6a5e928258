"""torchvision v2: :class:`GANTransform` applies a trained translator with probability ``p``; :class:`GANUpscale`
applies a trained upscaler (SRGAN) to every image.

Generators are not transforms (a sample of the same class needs the label): use them through
:class:`~synthaug.augment.SyntheticDataset` / :class:`~synthaug.augment.MixedDataset`.
"""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import Transform
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2.functional import get_size, pil_to_tensor, resize, to_pil_image

from ..checks import check_probability
from .handle import ModelHandle

__all__ = ["GANTransform", "GANUpscale"]


def _is_plain_tensor(obj: Any) -> bool:
    """A tensor that is no tv_tensor: masks, boxes and other tv_tensors pass through untouched."""
    return isinstance(obj, torch.Tensor) and not isinstance(obj, tv_tensors.TVTensor)


class GANTransform(Transform):
    """Translate images with a trained translator (e.g. clear -> fog) with probability ``p``.

    Follows torchvision's conventions: uint8 tensors (0..255) or float tensors in [0, 1], shape
    ``(..., C, H, W)``, or PIL images; the output has the input's type, dtype and range
    (``tv_tensors.Image`` stays an ``Image``, PIL stays PIL). Images of any size are resized to the
    translator's training size and back. Randomness: ``torch.rand`` (torch's global RNG, which
    ``DataLoader`` reseeds per worker), like torchvision's own random transforms.

    Args:
        model: a :class:`~synthaug.models.TranslatorModel` or its directory path (loaded lazily per process;
            inside ``DataLoader`` workers it always runs on CPU).
        direction: ``"A2B"`` or ``"B2A"`` (CycleGAN).
        p: probability of translating a sample.
        device: where to run outside workers (None: the model's device, or automatic for a path).
    """

    _transformed_types = (tv_tensors.Image, _is_plain_tensor, PIL.Image.Image)

    def __init__(self, model, direction: str = "A2B", p: float = 0.5, device=None):
        super().__init__()
        self.p = check_probability("p", p)
        self.handle = ModelHandle(model, "translator", name="model", device=device)
        self.direction = self.handle.check_direction(direction)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"apply": bool(torch.rand(1) < self.p)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not params["apply"]:
            return inpt
        if isinstance(inpt, PIL.Image.Image):
            out = self._translate_tensor(pil_to_tensor(inpt))
            return to_pil_image(out)
        out = self._translate_tensor(inpt.as_subclass(torch.Tensor))
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

    def _translate_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return _through(x, lambda x01: self.handle.translate01(x01, self.direction, name="inpt"))


def _through(x: torch.Tensor, fn) -> torch.Tensor:
    """``fn`` (float NCHW in [0, 1] -> the same) applied to torchvision pixels ``x`` (uint8 or float in [0, 1],
    shape (..., C, H, W)); returns the input's dtype, range and leading shape."""
    if x.ndim < 3:
        raise ValueError(f"inpt: expected an image (..., C, H, W), found shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x01 = x.float() / 255.0
    elif x.is_floating_point():
        x01 = x
    else:
        raise TypeError(f"inpt: expected uint8 or float pixels (torchvision convention), found dtype {x.dtype}")
    lead = x.shape[:-3]
    y = fn(x01.reshape(-1, *x.shape[-3:]))
    y = y.reshape(*lead, *y.shape[-3:]).to(x.device)
    if x.dtype == torch.uint8:
        return (y * 255.0).round().clamp(0, 255).to(torch.uint8)
    return y.to(x.dtype)


class GANUpscale(Transform):
    """Upscale images with a trained upscaler (SRGAN), e.g. low-resolution translator outputs to frame size.

    Deterministic: every image is upscaled (``scale`` times larger), so a batch keeps one size. Images
    (``tv_tensors.Image`` / ``Video``, plain tensors, PIL) go through the net and keep their type, dtype and range:
    uint8 tensors (0..255) or float tensors in [0, 1] of shape ``(..., C, H, W)``, or PIL images. The other spatial
    parts of a sample follow so it stays consistent: ``tv_tensors.Mask`` is resized nearest-neighbour,
    ``BoundingBoxes`` and ``KeyPoints`` are scaled with their canvas (torchvision's ``resize``).

    Args:
        model: an :class:`~synthaug.models.UpscalerModel` or its directory path (loaded lazily per process; inside
            ``DataLoader`` workers it always runs on CPU).
        device: where to run outside workers (None: the model's device, or automatic for a path).
    """

    _transformed_types = (tv_tensors.Image, tv_tensors.Video, _is_plain_tensor, PIL.Image.Image, tv_tensors.Mask,
                          tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)

    def __init__(self, model, device=None):
        super().__init__()
        self.handle = ModelHandle(model, "upscaler", name="model", device=device)
        self.scale = self.handle.scale

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, PIL.Image.Image):
            return to_pil_image(self._upscale_tensor(pil_to_tensor(inpt)))
        if isinstance(inpt, (tv_tensors.Mask, tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)):
            h, w = get_size(inpt)
            return resize(inpt, [h * self.scale, w * self.scale], interpolation=InterpolationMode.NEAREST)
        out = self._upscale_tensor(inpt.as_subclass(torch.Tensor))
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

    def _upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return _through(x, lambda x01: self.handle.upscale01(x01, name="inpt"))
