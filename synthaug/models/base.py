"""What every model directory shares: ``config.json`` + ``*.safetensors`` read by :meth:`ModelDirectory.from_pretrained`
(loading only: nothing in the folder is executed) and written by ``save_pretrained``; the config's facts as
properties; the compatibility check against data (``check_compatible``); the value-range rule at a model's input.

One module per kind of model builds on it (:mod:`.generator`, :mod:`.translator`, :mod:`.upscaler`,
:mod:`.classifier`); the kinds a class loads are the registry's (:func:`synthaug.registry.model_kinds` of its
``role``), so nothing here imports training code.
"""

from __future__ import annotations

import torch

from ..utils import CONVERT_HINT, check_value_range, parse_value_range

__all__ = ["ModelDirectory", "check_model_input", "check_matches", "module_device"]


class ModelDirectory:
    """Base of the model classes: a model directory's ``config`` (its config.json as a dict) and the ``role`` whose
    directory kinds (:func:`synthaug.registry.model_kinds`) its ``from_pretrained`` loads."""

    role: str = ""
    config: dict

    kind = property(lambda self: self.config["kind"])

    @classmethod
    def from_pretrained(cls, path, device=None):
        """Load a model directory of this class's role."""
        raise NotImplementedError

    def save_pretrained(self, path):
        """Write this model as a directory (config.json + weights)."""
        raise NotImplementedError


def check_model_input(images: torch.Tensor, value_range) -> bool:
    """The value-range rule at ``translate`` / ``upscale``: ``value_range`` None (model data assumed: [-1, 1] and not
    looking like [0, 1]), ``(-1, 1)`` or ``(0, 1)`` (:func:`synthaug.utils.check_value_range`). Returns True for
    ``(0, 1)`` data, which the caller converts to [-1, 1] and back."""
    if not images.is_floating_point():
        raise TypeError(f"images: expected float pixels in [-1, 1], found dtype {images.dtype}; {CONVERT_HINT}")
    stated = None if value_range is None else parse_value_range(value_range)
    fix = CONVERT_HINT + ("; or pass value_range=(0, 1) for [0, 1] data, or value_range=(-1, 1) to state that "
                          "these are model data" if stated is None else "")
    check_value_range(images, "images", stated, fix=fix)
    return stated == (0.0, 1.0)


def check_matches(model, noun: str, what: str, **want) -> None:
    """Raise ``ValueError`` at the first attribute of ``model`` that differs from ``want`` (None: unchecked)."""
    for key, w in want.items():
        if w is None:
            continue
        w = tuple(w) if isinstance(w, (tuple, list)) else w
        have = getattr(model, key)
        if key == "image_size" and isinstance(w, tuple):
            have = (have, have)
        if have != w:
            raise ValueError(f"{noun} does not match the {what}: expected {key}={w!r} (from the {what}), "
                             f"found {key}={have!r} in the {noun}")


def module_device(net: torch.nn.Module) -> torch.device:
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")
