"""Lazy, worker-safe access to model directories, and the small conversions the datasets and transforms share.

A model given as a directory path is loaded lazily, once per process; inside a ``DataLoader`` worker every
model runs on CPU (a CUDA model is never touched in a forked worker: a CPU copy is made in the parent).
"""


from __future__ import annotations

import copy
import os

import numpy as np
import torch
from torch.utils.data import get_worker_info

from ..checks import check_config_fields
from ..io import read_model_config
from ..models import GeneratorModel, TranslatorModel, UpscalerModel, check_direction, translator_directions
from ..registry import model_kinds
from ..utils import check_value_range

__all__ = ["ModelHandle", "reseed_transform", "to_model_range", "as_item_image", "as_label", "block_seed"]


# ----------------------------------------------------------------------------- small helpers
def block_seed(seed: int, block: int) -> int:
    """A 63-bit seed that depends only on ``(seed, block)``."""
    return int(np.random.SeedSequence([seed, block]).generate_state(1, np.uint64)[0]) & (2**63 - 1)


def _in_worker() -> bool:
    return get_worker_info() is not None


def reseed_transform(transform, seed: int) -> None:
    """Reseed a transform's own RNG, if it has one (call from ``reseed``, i.e. once per worker).

    albumentations keeps per-instance generators (``set_random_seed``) that a forked worker copies
    unchanged; MONAI keeps ``self.R`` (``set_random_state``). torchvision v2 draws from torch's global
    RNG, which ``DataLoader`` already reseeds per worker, so nothing is done for it.
    """
    if transform is None:
        return
    seed = int(seed) % 2**32
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)
    elif hasattr(transform, "set_random_state"):
        transform.set_random_state(seed=seed)


def to_model_range(image) -> torch.Tensor:
    """An image at a boundary -> float32 CHW in [-1, 1].

    PIL images and uint8 tensors/arrays are scaled from 0..255; float tensors are taken as [0, 1]
    (torchvision's convention) and mapped to [-1, 1]. numpy arrays are read channels first like torch
    (MONAI's layout). Use as ``MixedDataset(real_transform=to_model_range)``.
    """
    t = _pixels(image, "image")
    if t.dtype == torch.uint8:
        return t.float() / 127.5 - 1.0
    if not t.is_floating_point():
        raise TypeError(f"image: expected uint8 or float pixels, found dtype {t.dtype}")
    check_value_range(t, "image", (0, 1))
    return t.float() * 2.0 - 1.0


def _pixels(x, name: str) -> torch.Tensor:
    """PIL -> uint8 CHW tensor; numpy / torch / MetaTensor -> a plain CPU torch tensor (no copy where possible)."""
    from PIL import Image

    if isinstance(x, Image.Image):
        from torchvision.transforms.v2.functional import pil_to_tensor

        return pil_to_tensor(x)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        return x.as_subclass(torch.Tensor) if type(x) is not torch.Tensor else x
    raise TypeError(f"{name}: expected a torch tensor, numpy array or PIL image, found {type(x).__name__}")


def as_item_image(x, name: str = "real image", unit: bool = False) -> torch.Tensor:
    """An item image after ``real_transform`` -> float32 CHW. PIL and uint8 are scaled to [-1, 1] (``unit``:
    to [0, 1]); floats are kept as they are."""
    t = _pixels(x, name)
    if t.dtype == torch.uint8:
        return t.float() / 255.0 if unit else t.float() / 127.5 - 1.0
    if not t.is_floating_point():
        raise TypeError(f"{name}: expected a float CHW image in [-1, 1] (or PIL / uint8), found dtype {t.dtype}")
    if t.ndim != 3:
        raise ValueError(f"{name}: expected a CHW image, found shape {tuple(t.shape)}")
    return t.float()


def as_label(y, name: str = "label") -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if t.numel() != 1 or t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError(f"{name}: expected one integer class index, found {y!r}")
    return t.reshape(()).to(torch.int64)


# ----------------------------------------------------------------------------- lazy models
_MODEL_CLASSES = {"generator": GeneratorModel, "translator": TranslatorModel, "upscaler": UpscalerModel}
_USE = {"generator": "generators are used through SyntheticDataset / MixedDataset",
        "translator": "translators are used through the GAN transforms (GANTransform, GANTranslate, RandGANTranslate)",
        "upscaler": "upscalers are used through the upscaling transforms (GANUpscale, GANSuperRes)",
        "classifier": "classifiers are used through ClassifierModel"}


def _check_unit_batch(x: torch.Tensor, channels: int, name: str, where: str) -> None:
    """Raise unless ``x`` is a float NCHW batch of ``channels`` channels with intensities in [0, 1]."""
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected float intensities in [0, 1], found dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channel(s) first (C, H, W){where}, "
                         f"found shape {tuple(x.shape[1:]) if x.ndim == 4 else tuple(x.shape)}")
    if x.numel():
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: expected intensities in [0, 1], found range [{lo:.4g}, {hi:.4g}]; "
                             f"these transforms follow torchvision / albumentations / MONAI (uint8, or float in "
                             f"[0, 1]): convert synthaug's [-1, 1] images with (x + 1) / 2")


class ModelHandle:
    """A model given as an object or a directory path, loaded lazily once per process.

    ``get()`` returns the model to run: inside a ``DataLoader`` worker (or with ``cpu=True`` or
    ``device="cpu"``) a CPU instance, loaded from the path in that process or copied to CPU in the parent
    at construction; otherwise the given model, or the path loaded on ``device`` (None: automatic).
    Pickling drops loaded weights of path-given models, so handles travel cheaply to spawned workers.
    """

    def __init__(self, model, kind: str, name: str = "model", device=None):
        if kind not in _MODEL_CLASSES:
            raise ValueError(f"kind: expected one of {list(_MODEL_CLASSES)}, found {kind!r}")
        self.kind, self.name, self.device = kind, name, device
        cls = _MODEL_CLASSES[kind]
        kinds = model_kinds(kind)
        self.path: str | None = None
        self._model = self._cpu = None
        if isinstance(model, (str, os.PathLike)):
            self.path = str(model)
            self.config = read_model_config(model)
            if self.config["kind"] not in kinds:
                found = next((r for r in _USE if self.config["kind"] in model_kinds(r)), None)
                raise ValueError(f"{name}: expected a {kind} model directory (kind in {list(kinds)}), found kind "
                                 f"{self.config['kind']!r} at {self.path!r}"
                                 + (f"; {_USE[found]}" if found else ""))
            if kind == "generator":
                check_config_fields(self.config, self.path, ("image_size", "channels", "num_classes"),
                                    names="class_names")
            elif kind == "translator":
                check_config_fields(self.config, self.path, ("image_size", "channels_a", "channels_b"))
            else:
                check_config_fields(self.config, self.path, ("scale", "channels"))
        elif isinstance(model, cls):
            self.config = model.config
            self._model = model
            self._cpu = model if model.device.type == "cpu" else self._cpu_copy(model)
        elif isinstance(model, tuple(_MODEL_CLASSES.values())):
            raise TypeError(f"{name}: expected a {cls.__name__} or its directory path, found "
                            f"{type(model).__name__} ({_USE[model.role]})")
        else:
            raise TypeError(f"{name}: expected a {cls.__name__} or a model directory path, found "
                            f"{type(model).__name__}")

    @staticmethod
    def _cpu_copy(model):
        if isinstance(model, GeneratorModel):
            return GeneratorModel(copy.deepcopy(model.generator).cpu(), model.config, device="cpu")
        if isinstance(model, UpscalerModel):
            return UpscalerModel(copy.deepcopy(model.upscaler).cpu(), model.config, device="cpu")
        return TranslatorModel({k: copy.deepcopy(v).cpu() for k, v in model.nets.items()}, model.config,
                               device="cpu")

    def _load(self, device):
        cls = _MODEL_CLASSES[self.kind]
        with torch.random.fork_rng(devices=[]):  # building the nets draws init weights: keep the user's stream
            return cls.from_pretrained(self.path, device=device)

    def get(self, cpu: bool = False):
        """The model for this process (see the class docstring)."""
        want_cpu = cpu or _in_worker() or (self.device is not None and torch.device(self.device).type == "cpu")
        if not want_cpu:
            if self._model is None and self.path is not None:
                self._model = self._load(self.device)
            if self._model is not None:
                return self._model
        if self._cpu is None:
            if self._model is not None and self._model.device.type == "cpu":
                self._cpu = self._model
            else:
                self._cpu = self._load("cpu")
        return self._cpu

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.path is not None:
            state["_model"] = state["_cpu"] = None
        elif self._model is not None and self._model.device.type != "cpu":
            state["_model"] = None
        return state

    def check_compatible(self, image_size=None, channels=None, num_classes=None, what: str = "data") -> None:
        """``GeneratorModel.check_compatible`` on this process's CPU instance."""
        self.get(cpu=True).check_compatible(image_size=image_size, channels=channels, num_classes=num_classes,
                                            what=what)

    # --- translators -------------------------------------------------------------------------------
    def check_direction(self, direction: str) -> str:
        """``direction`` if the translator has it (:func:`synthaug.models.check_direction`)."""
        return check_direction(direction, translator_directions(self.config.get("nets", {})), self.config["kind"])

    def translate01(self, x: torch.Tensor, direction: str, name: str = "img") -> torch.Tensor:
        """Translate float NCHW images in [0, 1]; returns float32 NCHW in [0, 1] on CPU."""
        c_in = int(self.config["channels_a" if direction == "A2B" else "channels_b"])
        _check_unit_batch(x, c_in, name, f" for direction {direction!r}")
        y = self.get().translate(x.float() * 2.0 - 1.0, direction=direction, value_range=(-1, 1))
        return (y + 1.0) * 0.5

    # --- upscalers ---------------------------------------------------------------------------------
    @property
    def scale(self) -> int:
        """An upscaler's factor (from its config.json)."""
        return int(self.config["scale"])

    def upscale01(self, x: torch.Tensor, name: str = "img") -> torch.Tensor:
        """Upscale float NCHW images in [0, 1]; returns float32 NCHW in [0, 1] on CPU, ``scale`` times larger."""
        _check_unit_batch(x, int(self.config["channels"]), name, "")
        y = self.get().upscale(x.float() * 2.0 - 1.0, value_range=(-1, 1))
        return (y + 1.0) * 0.5


# ----------------------------------------------------------------------------- SyntheticDataset
