"""A trained class-conditional generator: :class:`GeneratorModel` (``sample``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..checks import check_choice, check_config_fields, check_int, check_number
from ..io import read_model_config, read_nets, write_nets
from ..nets.layers import check_z_threshold, truncated_normal
from ..registry import model_kinds
from ..utils import get_device, to_uint8_images
from .base import ModelDirectory, check_matches

__all__ = ["GeneratorModel"]


class GeneratorModel(ModelDirectory):
    """A trained class-conditional generator (the EMA weights) ready to sample from."""

    role = "generator"  # loads the model directory kinds of this role (synthaug.registry.model_kinds)

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
    def from_pretrained(cls, path, device=None) -> "GeneratorModel":
        """Load a model directory. A generator makes images of the size, channels and classes it was trained on;
        to check them against your data, call :meth:`check_compatible` (resize data with
        :func:`synthaug.data.resized`)."""
        path = Path(path)
        cfg = read_model_config(path, required=("kind", "nets", "image_size", "channels", "num_classes",
                                                "class_names"), kinds=model_kinds("generator"),
                                hint=" (expected a generator; load translators with TranslatorModel or load_model)")
        check_config_fields(cfg, path, ("image_size", "channels", "num_classes"), names="class_names")
        nets = read_nets(path, cfg)
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
        return write_nets(path, self.config, {"generator": self.generator})

    def check_compatible(self, image_size=None, channels=None, num_classes=None, what: str = "data") -> None:
        """Raise ``ValueError`` if the model's size/channels/classes differ from the given ones (None: unchecked;
        ``image_size`` an int or an ``(h, w)`` pair)."""
        check_matches(self, "generator", what, image_size=image_size, channels=channels, num_classes=num_classes)

    def balanced_labels(self, n: int) -> torch.Tensor:
        """``n`` labels cycling through the classes (counts differ by at most one)."""
        return torch.arange(n, dtype=torch.int64) % self.num_classes

    @torch.no_grad()
    def sample(self, n: int, labels: int | Sequence[int] | torch.Tensor | None = None, truncation: float = 1.0,
               seed: int | None = None, output: str = "float", batch_size: int = 256,
               generator: torch.Generator | None = None, z_threshold: float | None = None):
        """Draw ``n`` images; returns ``(images, labels)``.

        ``labels``: None for class-balanced, an int for one class, or one label per image. ``output="float"``
        gives float32 NCHW in [-1, 1] (CPU); ``"uint8"`` gives a numpy uint8 NHWC array. The same ``seed``
        (or the same ``generator`` state) gives the same images.

        Two truncation tricks trade variety for typical samples; each means the same for every generator, and
        they combine:

        * ``z_threshold`` (None = off, else > 0): how ``z`` is drawn. Entries with ``|z| > z_threshold`` are
          redrawn until inside (BigGAN's truncated normal; :func:`synthaug.nets.layers.truncated_normal`); 2 is
          mild, 0.5 strong. The other entries are those of the plain draw of the same seed.
        * ``truncation`` (in [0, 1], 1 = off): the generator's own latent truncation, applied in its forward:
          ``dcgan`` and ``biggan`` scale ``z`` by it, ``style`` moves ``w`` toward its class's running average
          (StyleGAN's psi). ``truncation=t`` with ``z_threshold=2`` is BigGAN's published sampling
          ``t * truncnorm(-2, 2)``.
        """
        n = check_int("n", n, 0)
        check_choice("output", output, ("float", "uint8"))
        check_number("truncation", truncation, 0.0, 1.0)
        z_threshold = check_z_threshold(z_threshold)
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
            z = truncated_normal((len(yb), self.z_dim), z_threshold, generator=generator)
            outs.append(self.generator(z.to(self.device), yb.to(self.device), truncation=truncation).float().cpu())
        images = torch.cat(outs) if outs else torch.empty(0, self.channels, self.image_size, self.image_size)
        images = images.clamp(-1, 1)
        if output == "uint8":
            return to_uint8_images(images), y
        return images, y
