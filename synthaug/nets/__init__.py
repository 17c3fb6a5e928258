"""Networks: conditional generators, discriminators and image-to-image translators, all registered by name."""

from .registry import create_net, list_nets, register

# Importing the modules registers their architectures.
from . import dcgan, discriminators, style, translators  # noqa: E402,F401

__all__ = ["create_net", "list_nets", "register"]
