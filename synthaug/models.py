"""Trained models as directories: ``config.json`` + ``*.safetensors``, loadable without training code or data.

:class:`GeneratorModel` wraps a class-conditional generator (``sample``); :class:`TranslatorModel` wraps
one or two image-to-image generators (``translate``). :func:`load_model` reads either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .io import load_state_into, read_model_config, write_model_dir
from .utils import check_images, get_device, to_uint8_images

GENERATOR_KINDS = ("cgan",)
TRANSLATOR_KINDS = ("cyclegan", "pix2pix")


def _build_nets(path: Path, cfg: dict) -> dict[str, torch.nn.Module]:
    from .nets import create_net

    nets = cfg.get("nets")
    if not isinstance(nets, dict) or not nets:
        raise ValueError(f"model: {str(path / 'config.json')!r} has no 'nets' section describing the networks")
    out = {}
    for name, spec in nets.items():
        if not isinstance(spec, dict) or "arch" not in spec or not isinstance(spec.get("kwargs", {}), dict):
            raise ValueError(f"model: net {name!r} in {str(path / 'config.json')!r} needs 'arch' and 'kwargs', "
                             f"found {spec!r}")
        try:
            net = create_net(spec["arch"], **spec.get("kwargs", {}))
        except TypeError as e:
            raise ValueError(f"model: net {name!r}: config.json arguments do not fit architecture "
                             f"{spec['arch']!r} ({e})") from None
        load_state_into(net, path / f"{name}.safetensors", name)
        out[name] = net.eval()
    return out


def _check_fields(cfg: dict, path: Path, ints: tuple[str, ...], names: str | None = None) -> None:
    """Type-check config.json fields so a bad file fails at load, naming the field and the file."""
    where = str(path / "config.json")
    for key in ints:
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"model: {where!r}: {key}: expected a positive int, found {v!r}")
    if names is not None:
        v = cfg.get(names)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"model: {where!r}: {names}: expected a list of strings, found {v!r}")
        if len(v) != cfg["num_classes"]:
            raise ValueError(f"model: {where!r}: {names}: expected {cfg['num_classes']} names (num_classes), "
                             f"found {len(v)}")


def _expect(cfg: dict, path: Path, **expected) -> None:
    for key, want in expected.items():
        if want is None:
            continue
        have = cfg.get(key)
        if isinstance(want, (list, tuple)):
            want = list(want)
        if have != want:
            raise ValueError(f"model {str(path)!r}: expected {key}={want!r}, found {key}={have!r}")


class GeneratorModel:
    """A trained class-conditional generator (the EMA weights) ready to sample from."""

    kind = "cgan"

    def __init__(self, generator: torch.nn.Module, config: dict, device=None):
        self.device = get_device(device)
        self.generator = generator.to(self.device).eval()
        if hasattr(self.generator, "noise_mode"):
            # Style generators sample with their fixed per-layer noise: an image is a function of (z, label)
            # alone, so a seed reproduces it in any process and any batch.
            self.generator.noise_mode = "const"
        self.config = config

    num_classes = property(lambda self: int(self.config["num_classes"]))
    image_size = property(lambda self: int(self.config["image_size"]))
    channels = property(lambda self: int(self.config["channels"]))
    class_names = property(lambda self: list(self.config["class_names"]))
    z_dim = property(lambda self: int(self.generator.z_dim))

    @classmethod
    def from_pretrained(cls, path, *, image_size: int | None = None, channels: int | None = None,
                        num_classes: int | None = None, device=None) -> "GeneratorModel":
        """Load a model directory; the optional arguments are checked against what the model was trained on."""
        path = Path(path)
        cfg = read_model_config(path, required=("kind", "nets", "image_size", "channels", "num_classes",
                                                "class_names"), kinds=GENERATOR_KINDS,
                                hint=" (expected a generator; load translators with TranslatorModel or load_model)")
        _check_fields(cfg, path, ("image_size", "channels", "num_classes"), names="class_names")
        _expect(cfg, path, image_size=image_size, channels=channels, num_classes=num_classes)
        nets = _build_nets(path, cfg)
        if "generator" not in nets:
            raise ValueError(f"model {str(path)!r}: config.json names no 'generator' net, found {sorted(nets)}")
        g = nets["generator"]
        for key in ("image_size", "channels", "num_classes"):
            if getattr(g, key, cfg[key]) != cfg[key]:
                raise ValueError(f"model {str(path)!r}: config.json says {key}={cfg[key]!r} but the generator's "
                                 f"arguments give {key}={getattr(g, key)!r}")
        return cls(g, cfg, device=device)

    def save_pretrained(self, path) -> Path:
        """Write this model as a directory (config.json + generator.safetensors)."""
        return write_model_dir(path, self.config, {"generator": self.generator.state_dict()})

    def check_compatible(self, image_size=None, channels=None, num_classes=None, what: str = "data") -> None:
        """Raise ``ValueError`` if the model's size/channels/classes differ from the given ones."""
        for key, want in (("image_size", image_size), ("channels", channels), ("num_classes", num_classes)):
            if want is None:
                continue
            want = tuple(want) if isinstance(want, (tuple, list)) else want
            have = getattr(self, key)
            if key == "image_size" and isinstance(want, tuple):
                have = (have, have)
            if have != want:
                raise ValueError(f"generator does not match the {what}: expected {key}={want!r} (from the {what}), "
                                 f"found {key}={have!r} in the generator")

    def balanced_labels(self, n: int) -> torch.Tensor:
        """``n`` labels cycling through the classes (counts differ by at most one)."""
        return torch.arange(n, dtype=torch.int64) % self.num_classes

    @torch.no_grad()
    def sample(self, n: int, labels: int | Sequence[int] | torch.Tensor | None = None, truncation: float = 1.0,
               seed: int | None = None, output: str = "float", batch_size: int = 256,
               generator: torch.Generator | None = None):
        """Draw ``n`` images; returns ``(images, labels)``.

        ``labels``: None for class-balanced, an int for one class, or one label per image. ``output="float"``
        gives float32 NCHW in [-1, 1] (CPU); ``"uint8"`` gives a numpy uint8 NHWC array. The same ``seed``
        gives the same images. ``truncation`` < 1 trades diversity for fidelity.
        """
        if n < 0:
            raise ValueError(f"n: expected a non-negative int, found {n}")
        if output not in ("float", "uint8"):
            raise ValueError(f"output: expected 'float' or 'uint8', found {output!r}")
        if not 0.0 <= truncation <= 1.0:
            raise ValueError(f"truncation: expected a value in [0, 1], found {truncation}")
        if labels is None:
            y = self.balanced_labels(n)
        elif isinstance(labels, (int, np.integer)):
            y = torch.full((n,), int(labels), dtype=torch.int64)
        else:
            y = torch.as_tensor(labels, dtype=torch.int64).flatten()
            if len(y) != n:
                raise ValueError(f"labels: expected {n} labels (one per image), found {len(y)}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(f"labels: expected class indices in [0, {self.num_classes - 1}], found range "
                             f"[{int(y.min())}, {int(y.max())}]")
        if generator is None:
            generator = torch.Generator().manual_seed(int(seed)) if seed is not None else torch.Generator()
            if seed is None:
                generator.seed()
        outs = []
        for i in range(0, n, batch_size):
            yb = y[i:i + batch_size]
            z = torch.randn(len(yb), self.z_dim, generator=generator)
            outs.append(self.generator(z.to(self.device), yb.to(self.device), truncation=truncation).float().cpu())
        images = torch.cat(outs) if outs else torch.empty(0, self.channels, self.image_size, self.image_size)
        images = images.clamp(-1, 1)
        if output == "uint8":
            return to_uint8_images(images), y
        return images, y


class TranslatorModel:
    """A trained image-to-image translator (CycleGAN: both directions; Pix2Pix: A2B only)."""

    def __init__(self, nets: dict[str, torch.nn.Module], config: dict, device=None):
        self.device = get_device(device)
        self.nets = {k: v.to(self.device).eval() for k, v in nets.items()}
        self.config = config

    kind = property(lambda self: self.config["kind"])
    image_size = property(lambda self: int(self.config["image_size"]))
    channels_a = property(lambda self: int(self.config["channels_a"]))
    channels_b = property(lambda self: int(self.config["channels_b"]))

    @classmethod
    def from_pretrained(cls, path, *, image_size: int | None = None, channels: int | None = None,
                        device=None) -> "TranslatorModel":
        path = Path(path)
        cfg = read_model_config(path, required=("kind", "nets", "image_size", "channels_a", "channels_b"),
                                kinds=TRANSLATOR_KINDS,
                                hint=" (expected a translator; load generators with GeneratorModel or load_model)")
        _check_fields(cfg, path, ("image_size", "channels_a", "channels_b"))
        _expect(cfg, path, image_size=image_size, channels_a=channels)
        return cls(_build_nets(path, cfg), cfg, device=device)

    def save_pretrained(self, path) -> Path:
        return write_model_dir(path, self.config, {k: v.state_dict() for k, v in self.nets.items()})

    def directions(self) -> list[str]:
        return sorted(k[2:] for k in self.nets if k.startswith("G_"))

    @torch.no_grad()
    def translate(self, images: torch.Tensor, direction: str = "A2B", batch_size: int = 16,
                  size_policy: str = "resize") -> torch.Tensor:
        """Translate float images in [-1, 1] (NCHW or CHW) from one domain to the other.

        Size policy: ``"resize"`` (default) resizes inputs to the (square) training size, translates, and resizes
        the result back to the input size, so non-square inputs are squeezed for the net and restored after;
        ``"native"`` runs the fully-convolutional net at the input size
        (which must fit the net's down-sampling). Returns float32 CPU tensors of the input's spatial size.
        """
        name = f"G_{direction}"
        if name not in self.nets:
            raise ValueError(f"direction: expected one of {self.directions()}, found {direction!r}")
        if size_policy not in ("resize", "native"):
            raise ValueError(f"size_policy: expected 'resize' or 'native', found {size_policy!r}")
        squeeze = images.ndim == 3
        if squeeze:
            images = images[None]
        c_in = self.channels_a if direction == "A2B" else self.channels_b
        check_images(images, "images", channels=c_in)
        h, w = images.shape[-2:]
        net = self.nets[name]
        outs = []
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(self.device).float()
            if size_policy == "resize" and (h, w) != (self.image_size, self.image_size):
                x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                  antialias=True, align_corners=False)
            y = net(x).float()
            if y.shape[-2:] != (h, w):
                y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
            outs.append(y.clamp(-1, 1).cpu())
        out = torch.cat(outs)
        return out[0] if squeeze else out


def load_model(path, **expected) -> GeneratorModel | TranslatorModel:
    """Load any synthaug model directory (generator or translator) by its ``kind``."""
    cfg = read_model_config(path)
    if cfg["kind"] in GENERATOR_KINDS:
        return GeneratorModel.from_pretrained(path, **expected)
    if cfg["kind"] in TRANSLATOR_KINDS:
        return TranslatorModel.from_pretrained(path, **expected)
    raise ValueError(f"model {str(path)!r}: expected kind in {GENERATOR_KINDS + TRANSLATOR_KINDS}, "
                     f"found {cfg['kind']!r}")
