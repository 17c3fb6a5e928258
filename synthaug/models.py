"""Trained models as directories: ``config.json`` + ``*.safetensors``, loadable without training code or data.

:class:`GeneratorModel` wraps a class-conditional generator (``sample``); :class:`TranslatorModel` wraps
one or two image-to-image generators (``translate``, and ``translate_labelled`` with a label check);
:class:`UpscalerModel` wraps a super-resolution net (``upscale``);
:class:`ClassifierModel` wraps an image classifier (a translator's task classifier, or one a user saved).
:func:`load_model` reads any of them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_bool, check_choice, check_config_fields, check_int, check_number, check_probability
from .io import load_state_into, read_model_config, read_nets, write_model_dir, write_nets
from .nets.layers import check_z_threshold, truncated_normal
from .registry import model_kinds
from .utils import (
    CONVERT_HINT,
    check_images,
    check_value_range,
    get_device,
    parse_value_range,
    progress_bar,
    to_uint8_images,
)

TASK_CLASSIFIER_DIR = "task_classifier"  # a translator's task classifier: a classifier model directory inside it

#: Working memory (MB) one forward pass of :meth:`UpscalerModel.upscale` may use; larger images are tiled.
UPSCALE_MEMORY_MB = 512


def _check_model_input(images: torch.Tensor, value_range) -> bool:
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


def _check_matches(model, noun: str, what: str, **want) -> None:
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


class GeneratorModel:
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

    kind = property(lambda self: self.config["kind"])
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
        _check_matches(self, "generator", what, image_size=image_size, channels=channels, num_classes=num_classes)

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


def classifier_spec(net: torch.nn.Module, image_size: int | None = None) -> dict:
    """How to rebuild ``net`` with :func:`synthaug.eval.classifier.build_classifier`: ``{"arch", "in_channels",
    "num_classes", "image_size", "width"}``. ``net`` is a ``SmallCNN``, ``LeNet`` or ``resnet18_small`` of
    :mod:`synthaug.eval.classifier`; ``image_size`` (the input size) is needed where the net does not tell it
    (ResNet-18; LeNet, where it is checked). Anything else raises ``TypeError``: such a net cannot be stored."""
    from .eval.classifier import LeNet, SmallCNN, build_classifier

    what = (f"a classifier of synthaug.eval.classifier (small_cnn, lenet or resnet18_small, as built by "
            f"build_classifier), found {type(net).__name__}")
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"classifier: expected {what}")
    if isinstance(net, SmallCNN):
        spec = {"arch": "small_cnn", "in_channels": net.in_channels, "num_classes": net.num_classes,
                "image_size": net.image_size, "width": int(net.body[0][0].out_channels)}
    elif isinstance(net, LeNet):
        side = int(round((net.fc[1].in_features / 50) ** 0.5))
        size = image_size if image_size is not None else (side * 2 + 4) * 2 + 4
        if ((int(size) - 4) // 2 - 4) // 2 != side:
            raise ValueError(f"image_size: expected a size this LeNet was built for (its fc layer reads {side}x{side} "
                             f"maps), found {size}")
        spec = {"arch": "lenet", "in_channels": int(net.body[0].in_channels), "num_classes": int(net.head.out_features),
                "image_size": int(size), "width": 32}
    elif type(net).__name__ == "ResNet" and isinstance(getattr(net, "maxpool", None), torch.nn.Identity):
        if image_size is None:
            raise ValueError("image_size: needed to describe a resnet18_small classifier (it takes any size)")
        spec = {"arch": "resnet18_small", "in_channels": int(net.conv1.in_channels),
                "num_classes": int(net.fc.out_features), "image_size": int(image_size), "width": 32}
    else:
        raise TypeError(f"classifier: expected {what}")
    own = net.state_dict()
    with torch.random.fork_rng(devices=[]):  # building a net to compare draws init weights: not from the caller's RNG
        rebuilt = build_classifier(**spec).state_dict()
    if set(own) != set(rebuilt) or any(own[k].shape != rebuilt[k].shape for k in own):
        raise TypeError(f"classifier: expected {what} (its weights do not fit build_classifier({spec}))")
    return spec


class ClassifierModel:
    """A trained image classifier as a model directory: ``config.json`` (kind ``"classifier"``: architecture,
    image size, channels, class names, training facts) and ``classifier.safetensors``.

    The architecture is one of :mod:`synthaug.eval.classifier` (``small_cnn``, ``lenet``, ``resnet18_small``), so
    the directory loads without training code. Wrap a trained net with :meth:`from_module`. Calling the model
    gives class logits (``model.net`` is the ``nn.Module``, in eval mode); :meth:`predict_proba` gives
    probabilities. A translator trained with a task loss holds its classifier as such a directory
    (``task_classifier/``), loaded as :attr:`TranslatorModel.task_classifier`.
    """

    kind = "classifier"
    role = "classifier"

    def __init__(self, net: torch.nn.Module, config: dict, device=None):
        self.device = get_device(device)
        self.net = net.to(self.device).eval()
        self.config = config

    num_classes = property(lambda self: int(self.config["num_classes"]))
    image_size = property(lambda self: int(self.config["image_size"]))
    channels = property(lambda self: int(self.config["channels"]))
    class_names = property(lambda self: list(self.config["class_names"]))

    @classmethod
    def from_module(cls, net: torch.nn.Module, class_names: Sequence[str] | None = None,
                    image_size: int | None = None, info: dict | None = None, device=None) -> "ClassifierModel":
        """Wrap a trained classifier of :mod:`synthaug.eval.classifier` (see :func:`classifier_spec`)."""
        spec = classifier_spec(net, image_size)
        names = [str(c) for c in class_names] if class_names is not None else \
            [str(i) for i in range(spec["num_classes"])]
        if len(names) != spec["num_classes"]:
            raise ValueError(f"class_names: expected {spec['num_classes']} names (the classifier's outputs), "
                             f"found {len(names)}")
        cfg = {"kind": cls.kind, "classifier": spec, "image_size": spec["image_size"],
               "channels": spec["in_channels"], "num_classes": spec["num_classes"], "class_names": names,
               "info": dict(info or {})}
        return cls(net, cfg, device=device if device is not None else _module_device(net))

    @classmethod
    def from_pretrained(cls, path, device=None) -> "ClassifierModel":
        from .eval.classifier import build_classifier

        path = Path(path)
        cfg = read_model_config(path, required=("kind", "classifier", "image_size", "channels", "num_classes",
                                                "class_names"), kinds=model_kinds("classifier"),
                                hint=" (expected a classifier directory)")
        check_config_fields(cfg, path, ("image_size", "channels", "num_classes"), names="class_names")
        spec = cfg["classifier"]
        try:
            net = build_classifier(**spec)
        except (TypeError, ValueError) as e:
            raise ValueError(f"model: {str(path / 'config.json')!r}: classifier: cannot build {spec!r} ({e})") \
                from None
        load_state_into(net, path / "classifier.safetensors", "classifier")
        return cls(net, cfg, device=device)

    def save_pretrained(self, path) -> Path:
        """Write config.json + classifier.safetensors."""
        return write_model_dir(path, self.config, {"classifier": self.net.state_dict()})

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.to(self.device))

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities ``(N, num_classes)`` (float32, CPU) of float NCHW images in [-1, 1]."""
        return _predict_proba(self.net, images, batch_size, self.device)


def _module_device(net: torch.nn.Module) -> torch.device:
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def _predict_proba(net: torch.nn.Module, images: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    was = net.training
    net.eval()
    out = [torch.softmax(net(images[i:i + batch_size].to(device)).float(), dim=1).cpu()
           for i in range(0, len(images), batch_size)]
    net.train(was)
    return torch.cat(out) if out else torch.empty(0, 0)


def _label_report(labels: torch.Tensor, keep: torch.Tensor, class_names: list[str], **head) -> dict:
    """Checked / kept / kept fraction, overall and per class (classes without images: fraction None)."""
    k = len(class_names)
    checked = torch.bincount(labels, minlength=k)
    kept = torch.bincount(labels[keep], minlength=k)
    per_class = {name: {"checked": int(checked[i]), "kept": int(kept[i]),
                        "kept_fraction": float(kept[i]) / int(checked[i]) if int(checked[i]) else None}
                 for i, name in enumerate(class_names)}
    n, m = len(labels), int(keep.sum())
    return {**head, "checked": n, "kept": m, "kept_fraction": m / n if n else None, "per_class": per_class}


def translator_directions(nets) -> list[str]:
    """The directions (``"A2B"``, ``"B2A"``) of a translator whose nets (or config.json ``"nets"`` section) are
    ``nets``: one per generator ``G_<direction>``."""
    return sorted(k[2:] for k in nets if k.startswith("G_"))


def check_direction(direction, directions: list[str], kind: str) -> str:
    """``direction`` if it is one of a ``kind`` translator's ``directions``; a one-sided translator (CUT,
    FastCUT, Pix2Pix) asked for B2A says so."""
    if direction not in directions:
        if directions == ["A2B"] and direction == "B2A":
            raise ValueError(f"direction: this {kind!r} translator is one-sided (A2B only), found 'B2A'; "
                             "for B -> A train one with the domains swapped")
        raise ValueError(f"direction: expected one of {directions}, found {direction!r}")
    return direction


class TranslatorModel:
    """A trained image-to-image translator (CycleGAN: both directions; Pix2Pix, CUT, FastCUT: A2B only).

    A translator trained with a task loss (``lambda_task > 0``) carries its frozen source classifier as
    :attr:`task_classifier` (a :class:`ClassifierModel`, else None); :meth:`translate_labelled` uses it by default
    to keep only the translations whose label it still recognises.
    """

    role = "translator"

    def __init__(self, nets: dict[str, torch.nn.Module], config: dict, device=None,
                 task_classifier: ClassifierModel | None = None):
        self.device = get_device(device)
        self.nets = {k: v.to(self.device).eval() for k, v in nets.items()}
        self.config = config
        self.task_classifier = task_classifier

    kind = property(lambda self: self.config["kind"])
    image_size = property(lambda self: int(self.config["image_size"]))
    channels_a = property(lambda self: int(self.config["channels_a"]))
    channels_b = property(lambda self: int(self.config["channels_b"]))

    @classmethod
    def from_pretrained(cls, path, device=None) -> "TranslatorModel":
        """Load a model directory. :meth:`translate` takes images of any size (see its ``size_policy``); to check
        the training size and channels against your data, call :meth:`check_compatible`."""
        path = Path(path)
        cfg = read_model_config(path, required=("kind", "nets", "image_size", "channels_a", "channels_b"),
                                kinds=model_kinds("translator"),
                                hint=" (expected a translator; load generators with GeneratorModel or load_model)")
        check_config_fields(cfg, path, ("image_size", "channels_a", "channels_b"))
        task = None
        if isinstance(cfg.get("task_consistency"), dict):
            sub = path / TASK_CLASSIFIER_DIR
            if not sub.is_dir():
                raise ValueError(f"model {str(path)!r}: config.json records a task loss but its classifier "
                                 f"directory {str(sub)!r} is missing")
            task = ClassifierModel.from_pretrained(sub, device=device)
        return cls(read_nets(path, cfg), cfg, device=device, task_classifier=task)

    def save_pretrained(self, path) -> Path:
        out = write_nets(path, self.config, self.nets)
        if self.task_classifier is not None:
            self.task_classifier.save_pretrained(Path(path) / TASK_CLASSIFIER_DIR)
        return out

    def directions(self) -> list[str]:
        return translator_directions(self.nets)

    def check_compatible(self, image_size=None, channels_a=None, channels_b=None, what: str = "data") -> None:
        """Raise ``ValueError`` if the training size or a domain's channels differ from the given ones (None:
        unchecked)."""
        _check_matches(self, "translator", what, image_size=image_size, channels_a=channels_a,
                       channels_b=channels_b)

    @property
    def full_resolution(self) -> bool:
        """True if every translator of the model declares itself resolution-independent (``full_resolution = True``
        on its class, e.g. ``lptn``): :meth:`translate` then runs it at the input's own size by default."""
        return all(getattr(net, "full_resolution", False) for net in self.nets.values())

    def resolve_size_policy(self, size_policy: str | None = None) -> str:
        """``size_policy`` checked, or for None the default: ``"native"`` if :attr:`full_resolution`, else
        ``"resize"``."""
        if size_policy is None:
            return "native" if self.full_resolution else "resize"
        return check_choice("size_policy", size_policy, ("resize", "native"))

    @torch.no_grad()
    def translate(self, images: torch.Tensor, direction: str = "A2B", batch_size: int = 16,
                  size_policy: str | None = None, match_scale: bool = True, seed: int = 0, *, value_range=None,
                  progress: bool = False) -> torch.Tensor:
        """Translate float images in [-1, 1] (NCHW or CHW) from one domain to the other. Returns float32 CPU tensors
        of the input's spatial size, in [-1, 1] (or in ``value_range``); ``progress``: a bar over the images with
        the time left. Deterministic: the same image gives the same output (eval mode, no noise), so neighbouring
        video frames are translated alike. A stochastic translator (``noise_dim`` /
        ``noise_maps`` > 0) draws the noise of the i-th image from a generator seeded with ``seed`` (the same
        images and seed give the same translations whatever ``batch_size``; another seed, other translations).

        Value range (the rule of :func:`synthaug.utils.check_value_range`): ``value_range=None`` (default) takes
        model data in [-1, 1] and refuses values outside it and data that looks like [0, 1] (nothing below 0, e.g.
        ``ToTensor`` output), which must be converted first; ``(-1, 1)`` states the range (an image with no dark
        pixel is then taken as it is); ``(0, 1)`` takes [0, 1] data and gives [0, 1] translations.

        Size policy: ``"resize"`` resizes inputs to the (square) training size, translates, and resizes the result
        back to the input size, so non-square inputs are squeezed for the net and restored after; ``"native"`` runs
        the fully-convolutional net at the input size. None (default): ``"native"`` for a full-resolution
        translator (:attr:`full_resolution`: ``lptn``), else ``"resize"``.

        Native size takes any height and width of at least the net's ``min_size``: a net whose sizes must be
        multiples of ``size_multiple`` (``resnet``: 2**n_downsampling) gets the image reflect-padded to the next
        multiple and its output cropped back; a net with other limits (``unet``) raises its own error. For a
        pyramid translator (``lptn``) ``match_scale=True`` deepens its pyramid (``extra_levels_for``) so that the low
        band it translates has the scale of the training images, which synthaug's loaders make by resizing a frame's
        shorter side to ``image_size``; pass ``match_scale=False`` for a net trained on crops at the frames' own scale.
        """
        name = f"G_{check_direction(direction, self.directions(), self.kind)}"
        size_policy = self.resolve_size_policy(size_policy)
        check_bool("match_scale", match_scale)
        squeeze = images.ndim == 3
        if squeeze:
            images = images[None]
        c_in = self.channels_a if direction == "A2B" else self.channels_b
        check_images(images, "images", channels=c_in)
        check_bool("progress", progress)
        unit = _check_model_input(images, value_range)
        if unit:
            images = images * 2.0 - 1.0
        h, w = images.shape[-2:]
        net = self.nets[name]
        run, pad = net, None
        if size_policy == "native":
            m = getattr(net, "min_size", 1)
            if min(h, w) < m:
                arch = getattr(net, "arch_name", type(net).__name__)
                raise ValueError(f"images: expected at least {m}x{m} px for native-size translation with this {arch} "
                                 f"translator, found {h}x{w}; use size_policy='resize'")
            if match_scale and hasattr(net, "extra_levels_for"):  # a pyramid translator (lptn)
                extra = net.extra_levels_for(h, w, self.image_size)
                run = lambda x: net(x, extra_levels=extra)  # noqa: E731
            k = getattr(net, "size_multiple", 1)
            if h % k or w % k:
                ph, pw = -h % k, -w % k
                pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        noise = None
        if getattr(net, "stochastic", False):
            check_int("seed", seed, 0)
            nh, nw = ((self.image_size, self.image_size) if size_policy == "resize"
                      else (h + (pad[2] + pad[3] if pad else 0), w + (pad[0] + pad[1] if pad else 0)))
            noise = net.make_noise(len(images), nh, nw, torch.Generator().manual_seed(int(seed)))
        outs = []
        bar = progress_bar(len(images), f"translate {direction}", unit="img", enabled=progress, leave=False)
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(self.device).float()
            if size_policy == "resize" and (h, w) != (self.image_size, self.image_size):
                x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                  antialias=True, align_corners=False)
            if pad is not None:
                x = F.pad(x, pad, mode="reflect")
            if noise is not None:
                y = net(x, noise={k: v[i:i + batch_size].to(self.device) for k, v in noise.items()}).float()
            else:
                y = run(x).float()
            if pad is not None:
                y = y[..., pad[2]:pad[2] + h, pad[0]:pad[0] + w]
            if y.shape[-2:] != (h, w):
                y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
            outs.append(y.clamp(-1, 1).cpu())
            bar.update(len(x))
        bar.close()
        out = torch.cat(outs)
        if unit:
            out = (out + 1.0) * 0.5
        return out[0] if squeeze else out

    def _label_checker(self, classifier, min_confidence):
        """(nn.Module or None, its class names or None, its input size or None) for ``translate_labelled``."""
        if isinstance(classifier, str):
            if classifier != "task":
                raise ValueError(f"classifier: expected 'task', a ClassifierModel, an nn.Module or None, found "
                                 f"{classifier!r}")
            if self.task_classifier is None:
                raise ValueError("classifier: expected a classifier to check labels with, found 'task' but this "
                                 "translator has no task classifier (it was trained without lambda_task); pass "
                                 "classifier=<ClassifierModel or nn.Module>, or classifier=None to keep every "
                                 "translation")
            classifier = self.task_classifier
        if classifier is None:
            if min_confidence is not None:
                raise ValueError(f"min_confidence: needs a classifier, found classifier=None with min_confidence="
                                 f"{min_confidence!r}")
            return None, None, None
        if isinstance(classifier, ClassifierModel):
            return classifier.net, classifier.class_names, classifier.image_size
        if isinstance(classifier, torch.nn.Module):
            return classifier, None, None
        raise TypeError(f"classifier: expected 'task', a ClassifierModel, an nn.Module returning logits or None, "
                        f"found {type(classifier).__name__}")

    def translate_labelled(self, images: torch.Tensor, labels, direction: str = "A2B", classifier="task",
                           min_confidence: float | None = None, class_names: Sequence[str] | None = None,
                           batch_size: int = 16, size_policy: str | None = None, *, value_range=None,
                           progress: bool = True):
        """Translate a labelled set and keep the translations whose label survived; returns
        ``(images, labels, report)`` (the kept ones, in input order).

        ``classifier``: ``"task"`` (default: this translator's :attr:`task_classifier`), a :class:`ClassifierModel`,
        an ``nn.Module`` returning class logits, or None (no check: every translation is kept). With
        ``min_confidence=None`` a translation is kept when the classifier's top class is its label (the label is
        preserved); with a probability p it is kept when the classifier gives its label a probability >= p
        (:class:`~synthaug.augment.SampleFilter`). ``report``: the rule, and ``checked`` / ``kept`` /
        ``kept_fraction`` overall and in ``per_class`` (keyed by ``class_names``, else the classifier's, else the
        indices; a class with no images has fraction None). ``value_range``: as in :meth:`translate` (the kept
        translations come back in it). ``progress`` (default on, as the Trainer's): a bar over the translated images
        with the time left.
        """
        net, clf_names, clf_size = self._label_checker(classifier, min_confidence)
        if min_confidence is not None:
            check_probability("min_confidence", min_confidence)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
            raise ValueError(f"images: expected a float batch (N, C, H, W) of at least one image, found "
                             f"{type(images).__name__} of shape {tuple(getattr(images, 'shape', ()))}")
        y = torch.as_tensor(labels)
        if y.is_floating_point() or y.dtype == torch.bool:
            raise TypeError(f"labels: expected integer class indices, found dtype {y.dtype}")
        y = y.to(torch.int64).reshape(-1)
        if len(y) != len(images):
            raise ValueError(f"labels: expected one label per image ({len(images)}), found {len(y)}")
        if _check_model_input(images, value_range):
            images = images * 2.0 - 1.0
        names = [str(c) for c in class_names] if class_names is not None else clf_names
        device = _module_device(net) if net is not None else None
        if net is not None:  # one image first: a classifier that does not fit fails before the whole set runs
            first = self.translate(images[:1], direction=direction, size_policy=size_policy, value_range=(-1, 1))
            if clf_size is not None and tuple(first.shape[-2:]) != (clf_size, clf_size):
                raise ValueError(f"images: the classifier reads {clf_size}x{clf_size} images, found translations of "
                                 f"{tuple(first.shape[-2:])}; resize the inputs to {clf_size} first")
            k = int(_predict_proba(net, first, 1, device).shape[-1])
            if names is not None and len(names) != k:
                raise ValueError(f"class_names: expected {k} names (the classifier's class outputs), found "
                                 f"{len(names)}")
        else:
            k = len(names) if names is not None else int(y.max()) + 1
        if int(y.min()) < 0 or int(y.max()) >= k:
            raise ValueError(f"labels: expected class indices in [0, {k - 1}] ({k} classes), found range "
                             f"[{int(y.min())}, {int(y.max())}]")
        out = self.translate(images, direction=direction, batch_size=batch_size, size_policy=size_policy,
                             value_range=(-1, 1), progress=progress)
        head = {"direction": direction, "rule": None, "min_confidence": min_confidence}
        if net is None:
            keep = torch.ones(len(y), dtype=torch.bool)
        elif min_confidence is None:
            head["rule"] = "label preserved (classifier's top class == label)"
            keep = _predict_proba(net, out, 256, device).argmax(1) == y
        else:
            from .augment.filtering import SampleFilter

            head["rule"] = f"classifier's probability of the label >= {float(min_confidence):g}"
            keep = SampleFilter(net, float(min_confidence), device=device)(out, y)
        report = _label_report(y, keep, names or [str(i) for i in range(k)], **head)
        out = out[keep]
        if value_range is not None and parse_value_range(value_range) == (0.0, 1.0):
            out = (out + 1.0) * 0.5
        return out, y[keep], report

    def translated_dataset(self, data, direction: str = "A2B", classifier="task",
                           min_confidence: float | None = None, batch_size: int = 16, size_policy: str | None = None,
                           *, progress: bool = True):
        """A :class:`~synthaug.augment.SyntheticDataset` of the label-checked translations of ``data`` (an
        ``ImageDataset``: ``.images``, ``.labels``, ``.class_names``), ready for ``MixedDataset(real, pool, ...,
        allow_short=True)``. Arguments as in :meth:`translate_labelled` (``progress``, on by default: a bar over the
        translated images with the time left); its per-class counts are the dataset's
        ``filter_report`` and the whole report is ``model_config["label_check"]``."""
        from .augment.datasets import SyntheticDataset

        for attr in ("images", "labels", "class_names"):
            if not hasattr(data, attr):
                raise TypeError(f"data: expected a labelled ImageDataset (.images, .labels, .class_names), found "
                                f"{type(data).__name__} without .{attr}")
        x, y, report = self.translate_labelled(data.images, data.labels, direction, classifier=classifier,
                                               min_confidence=min_confidence, class_names=data.class_names,
                                               batch_size=batch_size, size_policy=size_policy, value_range=(-1, 1),
                                               progress=progress)
        if len(y) == 0:
            raise ValueError(f"data: the label check kept none of the {len(data.labels)} translations ({report})")
        ds = SyntheticDataset.from_tensors(x, y, data.class_names, source={
            "source": "translator", "kind": self.kind, "direction": direction, "label_check": report})
        ds.filter_report = report["per_class"]
        return ds


class UpscalerModel:
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

    kind = property(lambda self: self.config["kind"])
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
        _check_matches(self, "upscaler", what, channels=channels, scale=scale)

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
        unit = _check_model_input(images, value_range)
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


def load_model(path, device=None) -> GeneratorModel | TranslatorModel | UpscalerModel | ClassifierModel:
    """Load any synthaug model directory (generator, translator, upscaler or classifier) by its ``kind``."""
    cfg = read_model_config(path)
    for cls in (GeneratorModel, TranslatorModel, UpscalerModel, ClassifierModel):
        if cfg["kind"] in model_kinds(cls.role):
            return cls.from_pretrained(path, device=device)
    raise ValueError(f"model {str(path)!r}: expected kind in {model_kinds()}, found {cfg['kind']!r}")
