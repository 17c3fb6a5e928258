"""A trained image-to-image translator: :class:`TranslatorModel` (``translate``, and ``translate_labelled`` with a
label check). Translation gives tensors; a dataset of them is :func:`synthaug.augment.translated_dataset`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ..checks import check_bool, check_choice, check_config_fields, check_int, check_probability
from ..io import read_model_config, read_nets, write_nets
from ..registry import model_kinds
from ..utils import check_images, get_device, parse_value_range, progress_bar
from .base import ModelDirectory, check_matches, check_model_input, module_device
from .classifier import ClassifierModel, predict_proba

__all__ = ["TranslatorModel", "TASK_CLASSIFIER_DIR", "translator_directions", "check_direction"]

TASK_CLASSIFIER_DIR = "task_classifier"  # a translator's task classifier: a classifier model directory inside it


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


class TranslatorModel(ModelDirectory):
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
        check_matches(self, "translator", what, image_size=image_size, channels_a=channels_a,
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
        unit = check_model_input(images, value_range)
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
        if check_model_input(images, value_range):
            images = images * 2.0 - 1.0
        names = [str(c) for c in class_names] if class_names is not None else clf_names
        device = module_device(net) if net is not None else None
        if net is not None:  # one image first: a classifier that does not fit fails before the whole set runs
            first = self.translate(images[:1], direction=direction, size_policy=size_policy, value_range=(-1, 1))
            if clf_size is not None and tuple(first.shape[-2:]) != (clf_size, clf_size):
                raise ValueError(f"images: the classifier reads {clf_size}x{clf_size} images, found translations of "
                                 f"{tuple(first.shape[-2:])}; resize the inputs to {clf_size} first")
            k = int(predict_proba(net, first, 1, device).shape[-1])
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
            keep = predict_proba(net, out, 256, device).argmax(1) == y
        else:  # SampleFilter's confidence rule, without its distance check
            head["rule"] = f"classifier's probability of the label >= {float(min_confidence):g}"
            keep = predict_proba(net, out, 256, device)[torch.arange(len(y)), y] >= float(min_confidence)
        report = _label_report(y, keep, names or [str(i) for i in range(k)], **head)
        out = out[keep]
        if value_range is not None and parse_value_range(value_range) == (0.0, 1.0):
            out = (out + 1.0) * 0.5
        return out, y[keep], report
