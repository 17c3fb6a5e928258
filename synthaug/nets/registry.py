"""Net registries, one per role (generator, discriminator, translator, translation discriminator, upscaler,
classifier), and self-describing nets.

``@register("generator", "dcgan")`` checks the class against the role's contract (:mod:`.contracts`) and makes
every instance record ``net.spec = {"arch": name, "kwargs": <all constructor arguments>}``: the entry of
config.json's ``"nets"`` section that :func:`create_net` rebuilds it from. Arch names are unique across roles.
"""

from __future__ import annotations

import functools
import inspect

import torch.nn as nn

from ..registry import Registry
from .contracts import CONTRACTS, check_class, check_instance

NETS: dict[str, Registry] = {role: Registry(role, functools.partial(check_class, role)) for role in CONTRACTS}
GENERATORS, DISCRIMINATORS = NETS["generator"], NETS["discriminator"]
TRANSLATORS, TRANSLATION_DISCRIMINATORS = NETS["translator"], NETS["translation_discriminator"]
UPSCALERS, CLASSIFIERS = NETS["upscaler"], NETS["classifier"]


def _record_arguments(cls: type, role: str, name: str) -> None:
    """Wrap ``cls.__init__`` so each instance of ``cls`` (not of unregistered subclasses) records its spec."""
    init = cls.__init__
    sig = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self) is not cls:
            return
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(list(bound.arguments.items())[1:])
        for p in sig.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                arguments.update(arguments.pop(p.name))
        self.spec = {"arch": name, "kwargs": arguments}
        check_instance(role, name, self)

    cls.__init__ = __init__


def register(role: str, name: str):
    """Class decorator: register a net class as ``name`` in ``role``'s registry (see :data:`NETS`)."""
    if role not in NETS:
        raise ValueError(f"role: expected one of {sorted(NETS)}, found {role!r}")

    def deco(cls):
        for other in NETS.values():
            if other is not NETS[role] and name in other:
                raise ValueError(f"arch name {name!r} is already registered as a {other.role} "
                                 f"({other.get(name).__name__})")
        if name in NETS[role] and NETS[role].get(name) is cls:
            return cls
        NETS[role].add(name, cls)
        _record_arguments(cls, role, name)
        cls.arch_name = name
        return cls

    return deco


def create_net(name: str, **kwargs) -> nn.Module:
    """Build the net registered as ``name`` (any role) with constructor ``kwargs``, e.g. from config.json."""
    for registry in NETS.values():
        if name in registry:
            return registry.get(name)(**kwargs)
    raise ValueError(f"arch: expected one of {list_nets()}, found {name!r}")


def list_nets() -> list[str]:
    """Names of all registered nets, every role."""
    return sorted(n for registry in NETS.values() for n in registry.names())


def list_generators() -> list[str]:
    """Names of the registered class-conditional generators."""
    return GENERATORS.names()


def list_discriminators() -> list[str]:
    """Names of the registered class-conditional discriminators."""
    return DISCRIMINATORS.names()


def list_translators() -> list[str]:
    """Names of the registered image-to-image generators."""
    return TRANSLATORS.names()


def list_translation_discriminators() -> list[str]:
    """Names of the registered discriminators for translation recipes (the SRGAN recipe's too)."""
    return TRANSLATION_DISCRIMINATORS.names()


def list_upscalers() -> list[str]:
    """Names of the registered super-resolution generators."""
    return UPSCALERS.names()


def list_classifiers() -> list[str]:
    """Names of the registered image classifiers (downstream, helper and task classifiers)."""
    return CLASSIFIERS.names()
