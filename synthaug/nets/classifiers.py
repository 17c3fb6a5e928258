"""Image classifiers (role ``"classifier"``): the small CNN, the LeNet of the domain-adaptation literature and a
28 px ResNet-18. They are the downstream classifiers of :mod:`synthaug.eval`, the helper classifiers a recipe trains
for itself (pseudo-labeller, task classifier f_S) and the nets of a classifier model directory
(:class:`synthaug.models.ClassifierModel`), so they live here, below training, loading and evaluation alike.

Each is registered (``list_classifiers()``), meets :class:`~synthaug.nets.contracts.Classifier` (``forward(x)``:
logits, ``features(x)``: the penultimate features) and is built by name with :func:`build_classifier`. Training them
is :func:`synthaug.train.classifier.train_classifier`.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_int
from .registry import CLASSIFIERS, register

__all__ = ["SmallCNN", "LeNet", "ResNet18Small", "resnet18_small", "ARCHS", "build_classifier"]


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@register("classifier", "small_cnn")
class SmallCNN(nn.Module):
    """Conv-BN-ReLU stages with 2x2 max-pooling, then global average pooling and a linear head.

    One conv-BN-ReLU per resolution (two at the coarsest), widths ``width, 2*width, 4*width, ...``; the
    number of pooling stages follows ``image_size`` (2 for 28 px, 3 for 64 px). ``features(x)`` returns
    the pooled penultimate features (``num_features = 4 * width`` at 28 px), used by the FID/KID encoder.
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 32):
        super().__init__()
        for name, v, lo in (("in_channels", in_channels, 1), ("num_classes", num_classes, 2),
                            ("image_size", image_size, 8), ("width", width, 1)):
            check_int(name, v, lo)
        self.in_channels, self.num_classes, self.image_size = int(in_channels), int(num_classes), int(image_size)
        n_pool = max(1, min(4, int(math.log2(image_size / 6))))
        widths = [width * 2 ** i for i in range(n_pool + 1)]
        layers: list[nn.Module] = [_conv_bn_relu(in_channels, widths[0])]
        for i in range(n_pool):
            layers += [nn.MaxPool2d(2), _conv_bn_relu(widths[i], widths[i + 1])]
        layers.append(_conv_bn_relu(widths[-1], widths[-1]))
        self.body = nn.Sequential(*layers)
        self.num_features = widths[-1]
        self.head = nn.Linear(self.num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(N, num_features)``."""
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register("classifier", "resnet18_small")
class ResNet18Small(nn.Module):
    """torchvision ResNet-18 (``weights=None``) with a 28 px stem: 3x3 conv, stride 1, no max-pool.

    Built by torchvision and holding its modules under their names (``conv1``, ``bn1``, ``layer1`` ... ``fc``), so
    its weights are torchvision's ResNet-18's, key for key; ``features(x)`` is the pooled 512-d input of ``fc``.
    torchvision is imported when one is built, not with :mod:`synthaug.nets`."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        from torchvision.models import resnet18

        check_int("in_channels", in_channels, 1)
        check_int("num_classes", num_classes, 2)
        net = resnet18(weights=None, num_classes=int(num_classes))
        net.conv1 = nn.Conv2d(int(in_channels), 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        for name, child in net.named_children():
            self.add_module(name, child)
        self.in_channels, self.num_classes = int(in_channels), int(num_classes)
        self.num_features = self.fc.in_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(N, 512)``: torchvision's ResNet forward without ``fc``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def resnet18_small(in_channels: int, num_classes: int) -> nn.Module:
    """torchvision ResNet-18 (``weights=None``) with a 28 px stem: :class:`ResNet18Small`."""
    return ResNet18Small(in_channels, num_classes)


@register("classifier", "lenet")
class LeNet(nn.Module):
    """The LeNet-style digits classifier of the domain-adaptation literature (ADDA, CyCADA): conv5x5(20)-pool-
    conv5x5(50)-dropout-pool-fc(500)-dropout-fc, for 28 px inputs (other sizes work; the fc input follows)."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int = 28, dropout: float = 0.5):
        super().__init__()
        for name, v, lo in (("in_channels", in_channels, 1), ("num_classes", num_classes, 2),
                            ("image_size", image_size, 12)):
            check_int(name, v, lo)
        self.in_channels, self.num_classes = int(in_channels), int(num_classes)
        self.body = nn.Sequential(nn.Conv2d(in_channels, 20, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
                                  nn.Conv2d(20, 50, 5), nn.Dropout2d(dropout), nn.MaxPool2d(2), nn.ReLU(inplace=True))
        side = ((image_size - 4) // 2 - 4) // 2
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(50 * side * side, 500), nn.ReLU(inplace=True),
                                nn.Dropout(dropout))
        self.num_features = 500
        self.head = nn.Linear(500, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(N, 500)``."""
        return self.fc(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


#: The classifiers synthaug ships (the registry, ``list_classifiers()``, also lists any registered later).
ARCHS = ("small_cnn", "resnet18_small", "lenet")


def build_classifier(arch: str, in_channels: int, num_classes: int, image_size: int, width: int = 32) -> nn.Module:
    """A fresh classifier by its registered name: ``"small_cnn"``, ``"resnet18_small"``, ``"lenet"`` or one registered
    later with ``@register("classifier", name)``. ``image_size`` and ``width`` are passed to the constructors that take
    them (``width``: small_cnn's)."""
    if arch not in CLASSIFIERS:
        raise ValueError(f"arch: expected one of {CLASSIFIERS.names()}, found {arch!r}")
    cls = CLASSIFIERS.get(arch)
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in (("image_size", image_size), ("width", width)) if k in params}
    return cls(in_channels=in_channels, num_classes=num_classes, **kwargs)
