"""torchvision v2: :class:`GANTransform` applies a trained translator with probability ``p``.

Generators are not transforms (a sample of the same class needs the label): use them through
:class:`~synthaug.augment.SyntheticDataset` / :class:`~synthaug.augment.MixedDataset`.
"""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import Transform
from torchvision.transforms.v2.functional import pil_to_tensor, to_pil_image

from ..checks import check_probability
from .handle import ModelHandle

__all__ = ["GANTransform"]


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
        if x.ndim < 3:
            raise ValueError(f"inpt: expected an image (..., C, H, W), found shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x01 = x.float() / 255.0
        elif x.is_floating_point():
            x01 = x
        else:
            raise TypeError(f"inpt: expected uint8 or float pixels (torchvision convention), found dtype {x.dtype}")
        lead = x.shape[:-3]
        y = self.handle.translate01(x01.reshape(-1, *x.shape[-3:]), self.direction, name="inpt")
        y = y.reshape(*lead, *y.shape[-3:]).to(x.device)
        if x.dtype == torch.uint8:
            return (y * 255.0).round().clamp(0, 255).to(torch.uint8)
        return y.to(x.dtype)
