"""Networks: conditional generators and discriminators, image-to-image translators and their discriminators,
super-resolution upscalers and image classifiers, registered by role (see :mod:`.contracts` for what each role
must provide)."""

from .contracts import Classifier, Discriminator, Generator, TranslationDiscriminator, Translator, Upscaler
from .registry import (
    CLASSIFIERS,
    DISCRIMINATORS,
    GENERATORS,
    NETS,
    TRANSLATION_DISCRIMINATORS,
    TRANSLATORS,
    UPSCALERS,
    create_net,
    list_classifiers,
    list_discriminators,
    list_generators,
    list_nets,
    list_translation_discriminators,
    list_translators,
    list_upscalers,
    register,
)

# Importing the modules registers their architectures.
from . import dcgan, discriminators, lptn, style, superres, translators  # noqa: E402,F401
from . import biggan  # noqa: E402,F401  (after dcgan and style: registries list names in registration order)
from .classifiers import ARCHS, LeNet, ResNet18Small, SmallCNN, build_classifier, resnet18_small  # noqa: E402

__all__ = ["create_net", "list_nets", "register", "NETS", "GENERATORS", "DISCRIMINATORS", "TRANSLATORS",
           "TRANSLATION_DISCRIMINATORS", "UPSCALERS", "list_generators", "list_discriminators", "list_translators",
           "list_translation_discriminators", "list_upscalers", "Generator", "Discriminator", "Translator",
           "TranslationDiscriminator", "Upscaler", "Classifier", "CLASSIFIERS", "list_classifiers", "SmallCNN", "LeNet",
           "ResNet18Small", "resnet18_small", "build_classifier", "ARCHS"]
