"""A trained image classifier as a model directory: :class:`ClassifierModel` (a translator's task classifier, or one
a user saved), the nets of :mod:`synthaug.nets.classifiers`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..checks import check_config_fields
from ..io import load_state_into, read_model_config, write_model_dir
from ..nets.classifiers import LeNet, ResNet18Small, SmallCNN, build_classifier
from ..registry import model_kinds
from ..utils import get_device
from .base import ModelDirectory, module_device

__all__ = ["ClassifierModel", "classifier_spec", "predict_proba"]


def classifier_spec(net: torch.nn.Module, image_size: int | None = None) -> dict:
    """How to rebuild ``net`` with :func:`synthaug.nets.classifiers.build_classifier`: ``{"arch", "in_channels",
    "num_classes", "image_size", "width"}``. ``net`` is a ``SmallCNN``, ``LeNet`` or ``resnet18_small`` of
    :mod:`synthaug.nets.classifiers`; ``image_size`` (the input size) is needed where the net does not tell it
    (ResNet-18; LeNet, where it is checked). Anything else raises ``TypeError``: such a net cannot be stored."""
    what = (f"a classifier of synthaug.nets.classifiers (small_cnn, lenet or resnet18_small, as built by "
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
    elif isinstance(net, ResNet18Small) or (type(net).__name__ == "ResNet"  # or torchvision's, as built before
                                            and isinstance(getattr(net, "maxpool", None), torch.nn.Identity)):
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


class ClassifierModel(ModelDirectory):
    """A trained image classifier as a model directory: ``config.json`` (kind ``"classifier"``: architecture,
    image size, channels, class names, training facts) and ``classifier.safetensors``.

    The architecture is one of :mod:`synthaug.nets.classifiers` (``small_cnn``, ``lenet``, ``resnet18_small``), so
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
        """Wrap a trained classifier of :mod:`synthaug.nets.classifiers` (see :func:`classifier_spec`)."""
        spec = classifier_spec(net, image_size)
        names = [str(c) for c in class_names] if class_names is not None else \
            [str(i) for i in range(spec["num_classes"])]
        if len(names) != spec["num_classes"]:
            raise ValueError(f"class_names: expected {spec['num_classes']} names (the classifier's outputs), "
                             f"found {len(names)}")
        cfg = {"kind": cls.kind, "classifier": spec, "image_size": spec["image_size"],
               "channels": spec["in_channels"], "num_classes": spec["num_classes"], "class_names": names,
               "info": dict(info or {})}
        return cls(net, cfg, device=device if device is not None else module_device(net))

    @classmethod
    def from_pretrained(cls, path, device=None) -> "ClassifierModel":
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
        return predict_proba(self.net, images, batch_size, self.device)


@torch.no_grad()
def predict_proba(net: torch.nn.Module, images: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    """Softmax probabilities (N, K), float32 on the CPU, of ``net`` (in eval mode while it runs) on float NCHW
    ``images``, ``batch_size`` at a time on ``device``."""
    was = net.training
    net.eval()
    out = [torch.softmax(net(images[i:i + batch_size].to(device)).float(), dim=1).cpu()
           for i in range(0, len(images), batch_size)]
    net.train(was)
    return torch.cat(out) if out else torch.empty(0, 0)
