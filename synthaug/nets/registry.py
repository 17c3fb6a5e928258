"""String registry so configs can name architectures: ``create_net("cgan_dcgan", **kwargs)``."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    """Class decorator: make ``name`` resolvable by :func:`create_net`."""

    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"architecture name {name!r} is already registered to {_REGISTRY[name].__name__}")
        _REGISTRY[name] = cls
        cls.arch_name = name
        return cls

    return deco


def create_net(name: str, **kwargs) -> nn.Module:
    """Build the registered architecture ``name`` with constructor ``kwargs``."""
    if name not in _REGISTRY:
        raise ValueError(f"arch: expected one of {sorted(_REGISTRY)}, found {name!r}")
    return _REGISTRY[name](**kwargs)


def list_nets() -> list[str]:
    """Names of all registered architectures."""
    return sorted(_REGISTRY)
