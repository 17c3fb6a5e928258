"""What a net of each role must provide: one :class:`typing.Protocol` per role, checked at registration.

A registered class must be an ``nn.Module`` whose constructor takes keyword arguments (no ``*args``, so they can
be recorded) and accepts the protocol's ``__init__`` arguments by name (the recipes pass them so), and whose
methods take the protocol's parameters: those without a default positionally, those with one by name, as the
recipes and models call them. The annotated attributes are checked on every instance after construction.
"""

from __future__ import annotations

import inspect
from typing import Protocol

import torch
import torch.nn as nn

__all__ = ["Generator", "Discriminator", "Translator", "TranslationDiscriminator", "Upscaler", "Classifier",
           "CONTRACTS",
           "ProgressiveGenerator", "ProgressiveDiscriminator", "PROGRESSIVE_CONTRACTS", "check_class",
           "check_instance", "progressive_problems"]


class Generator(Protocol):
    """Class-conditional generator (role ``"generator"``; ``CGANRecipe``, ``GeneratorModel``).

    ``forward(z, y, truncation)``: latents (N, z_dim) and int64 labels (N,) -> images (N, channels, image_size,
    image_size) in [-1, 1]; ``truncation`` in [0, 1] trades variety for typical samples (1 = off). Optional:
    a ``noise_mode`` attribute (``"random"``, ``"const"`` or ``"none"``); ``GeneratorModel`` sets ``"const"``
    so that a sample depends on (z, label) alone. Optional: progressive growing (:class:`ProgressiveGenerator`).
    """

    num_classes: int
    image_size: int
    channels: int
    z_dim: int

    def __init__(self, num_classes: int, image_size: int, channels: int, **kwargs): ...

    def forward(self, z: torch.Tensor, y: torch.Tensor, truncation: float = 1.0) -> torch.Tensor: ...


class Discriminator(Protocol):
    """Class-conditional discriminator (role ``"discriminator"``; ``CGANRecipe``).

    ``forward(x, y)``: adversarial logits (N,). ``forward_with_class(x, y)``: ``(adversarial logits (N,), class
    logits (N, num_classes) or None)``, the latter for an AC-GAN loss. Optional: ``forward_parts(x, y=None)``
    ``-> (label-free logits, projection term or None, class logits or None)``, needed for semi-supervised training.
    Optional: progressive growing (:class:`ProgressiveDiscriminator`).
    """

    num_classes: int
    image_size: int
    channels: int

    def __init__(self, num_classes: int, image_size: int, channels: int, **kwargs): ...

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def forward_with_class(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]: ...


class Translator(Protocol):
    """Image-to-image generator (role ``"translator"``; the translation recipes, ``TranslatorModel``).

    ``forward(x)``: (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]. A constructor that
    also takes ``image_size`` is given the training size unless the config sets it. Optional, needed by CUT /
    FastCUT: ``features(x, layers)`` -> the encoder maps named ``layers`` (among a ``feature_layers`` attribute).
    Optional, read by ``TranslatorModel.translate``: ``min_size`` (smallest height/width), ``size_multiple`` (height
    and width must be multiples of it; native-size inputs are padded to it) and ``full_resolution = True`` (trained
    small, meant to run at any size: translated at the input's own size by default).
    """

    in_channels: int
    out_channels: int

    def __init__(self, in_channels: int, out_channels: int, **kwargs): ...

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


class TranslationDiscriminator(Protocol):
    """Discriminator of the translation recipes (role ``"translation_discriminator"``).

    ``forward(x)``: (N, in_channels, H, W) -> logits, a tensor of any shape (a patch map) or a list of tensors
    (several scales), as :class:`synthaug.losses.GANLoss` reduces them. Pix2Pix passes input and output
    concatenated, so ``in_channels`` is the sum of both.
    """

    in_channels: int

    def __init__(self, in_channels: int, **kwargs): ...

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]: ...


class Upscaler(Protocol):
    """Super-resolution generator (role ``"upscaler"``; the SRGAN recipe, ``UpscalerModel``).

    ``forward(x)``: (N, channels, H, W) in [-1, 1] -> (N, channels, H * scale, W * scale) in [-1, 1], for any H and
    W (fully convolutional). ``scale`` is a power of 2 >= 2.
    """

    channels: int
    scale: int

    def __init__(self, channels: int, scale: int, **kwargs): ...

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


class Classifier(Protocol):
    """Image classifier (role ``"classifier"``; the downstream arms of :mod:`synthaug.eval`, the recipes' helper
    classifiers, ``ClassifierModel``).

    ``forward(x)``: (N, in_channels, H, W) in [-1, 1] -> class logits (N, num_classes). ``features(x)``: the
    penultimate features (N, num_features) the logits are a linear function of (FID/KID encoders, distance checks).
    A constructor that also takes ``image_size`` (and ``width``) is given them by
    :func:`synthaug.nets.classifiers.build_classifier`.
    """

    in_channels: int
    num_classes: int
    num_features: int

    def __init__(self, in_channels: int, num_classes: int, **kwargs): ...

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def features(self, x: torch.Tensor) -> torch.Tensor: ...


class ProgressiveGenerator(Protocol):
    """What ``CGANConfig.progressive`` (progressive growing) needs of a generator, beyond :class:`Generator`.

    ``progressive=True`` builds an extra toRGB layer for every resolution below ``image_size`` (trained while
    the schedule runs there, then dropped from the exported model); ``resolutions`` lists the resolutions the
    net grows through, ascending, the last being ``image_size``. ``forward(z, y, truncation, resolution, alpha)``
    gives images of ``resolution`` px (None = full); ``alpha`` in [0, 1] fades that resolution's block in,
    ``(1 - alpha) * upsample(lower-resolution image) + alpha * image``. With ``resolution=None, alpha=1`` the
    output equals the plain forward's, and ``progressive=False`` leaves the net as it was without the option.
    """

    resolutions: list[int]

    def __init__(self, num_classes: int, image_size: int, channels: int, progressive: bool = False, **kwargs): ...

    def forward(self, z: torch.Tensor, y: torch.Tensor, truncation: float = 1.0, resolution: int | None = None,
                alpha: float = 1.0) -> torch.Tensor: ...


class ProgressiveDiscriminator(Protocol):
    """What ``CGANConfig.progressive`` needs of a discriminator, beyond :class:`Discriminator`: the mirror of
    :class:`ProgressiveGenerator`. ``progressive=True`` builds a fromRGB layer per lower resolution; ``forward``
    and ``forward_with_class`` (and ``forward_parts``, if the net has it) take images of ``resolution`` px and
    ``alpha``, blending the new top block's output with the fromRGB of the input pooled to the resolution below.
    """

    resolutions: list[int]

    def __init__(self, num_classes: int, image_size: int, channels: int, progressive: bool = False, **kwargs): ...

    def forward(self, x: torch.Tensor, y: torch.Tensor, resolution: int | None = None,
                alpha: float = 1.0) -> torch.Tensor: ...

    def forward_with_class(self, x: torch.Tensor, y: torch.Tensor, resolution: int | None = None,
                           alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None]: ...


PROGRESSIVE_CONTRACTS: dict[str, type] = {"generator": ProgressiveGenerator, "discriminator": ProgressiveDiscriminator}


CONTRACTS: dict[str, type] = {"generator": Generator, "discriminator": Discriminator, "translator": Translator,
                              "translation_discriminator": TranslationDiscriminator, "upscaler": Upscaler,
                              "classifier": Classifier}


def _required_methods(protocol: type) -> dict[str, inspect.Signature]:
    return {k: inspect.signature(v) for k, v in vars(protocol).items()
            if inspect.isfunction(v) and (k == "__init__" or not k.startswith("_"))}


def _missing_params(method: str, want: inspect.Signature, sig: inspect.Signature) -> list[str]:
    """Parameters of ``want`` that a callable with signature ``sig`` cannot take the way callers pass them."""
    wanted = [p for p in list(want.parameters.values())[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    own = list(sig.parameters.values())[1:]
    kinds = {p.kind for p in own}
    by_name = [p.name for p in wanted if p.kind is p.KEYWORD_ONLY or method == "__init__" or p.default is not p.empty]
    positional = [p.name for p in wanted if p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in by_name]
    missing = []
    if inspect.Parameter.VAR_POSITIONAL not in kinds:
        slots = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in own)
        missing += positional[slots:]
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        missing += [n for n in by_name if n not in sig.parameters or sig.parameters[n].kind is
                    inspect.Parameter.POSITIONAL_ONLY]
    return missing


def check_class(role: str, name: str, cls) -> None:
    """Raise ``TypeError`` naming the role and the missing member if ``cls`` cannot fill ``role``."""
    protocol = CONTRACTS[role]
    where = f"{role} {name!r} ({getattr(cls, '__name__', cls)!r})"
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"{where}: expected an nn.Module subclass, found {cls!r}")
    for method, want in _required_methods(protocol).items():
        own = getattr(cls, method, None)
        if not callable(own) or (method != "__init__" and own is getattr(nn.Module, method, None)):
            raise TypeError(f"{where}: missing method {method}{want} required of a {role} "
                            f"(synthaug.nets.contracts.{protocol.__name__})")
        sig = inspect.signature(own)
        if method == "__init__" and any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
            raise TypeError(f"{where}: expected a constructor without *args (its arguments are recorded by name "
                            f"for config.json), found {sig}")
        missing = _missing_params(method, want, sig)
        if missing:
            raise TypeError(f"{where}: {method} must accept {missing}, as a {role} "
                            f"(synthaug.nets.contracts.{protocol.__name__}.{method}{want}); found {method}{sig}")


def check_instance(role: str, name: str, net: nn.Module) -> None:
    """Raise ``TypeError`` if a freshly built ``net`` lacks an attribute its role's contract requires."""
    protocol = CONTRACTS[role]
    missing = [a for a in protocol.__annotations__ if not hasattr(net, a)]
    if missing:
        raise TypeError(f"{role} {name!r} ({type(net).__name__}): missing attribute(s) {missing} required of a "
                        f"{role} (synthaug.nets.contracts.{protocol.__name__}); set them in __init__")


def progressive_problems(role: str, cls) -> list[str]:
    """Why the registered ``role`` class ``cls`` cannot grow progressively (empty if it can): the members of
    :data:`PROGRESSIVE_CONTRACTS` it lacks, e.g. ``["__init__ must accept ['progressive']"]``."""
    problems = []
    protocol = PROGRESSIVE_CONTRACTS[role]
    methods = _required_methods(protocol)
    if role == "discriminator" and callable(getattr(cls, "forward_parts", None)):
        methods["forward_parts"] = inspect.signature(lambda self, x, y=None, resolution=None, alpha=1.0: None)
    for method, want in methods.items():
        own = getattr(cls, method, None)
        if not callable(own):
            problems.append(f"missing method {method}")
            continue
        missing = _missing_params(method, want, inspect.signature(own))
        if missing:
            problems.append(f"{method} must accept {missing}")
    return problems
