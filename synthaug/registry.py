"""Name -> class registries, one per role (generator, discriminator, translator, translation discriminator,
recipe, loss), so configs, config.json and the command line can name what they build."""

from __future__ import annotations

from typing import Callable


class Registry:
    """Classes of one ``role`` by name; ``check(name, cls)`` vets a class before it is accepted."""

    def __init__(self, role: str, check: Callable[[str, type], None] | None = None):
        self.role = role
        self._check = check
        self._classes: dict[str, type] = {}

    def add(self, name: str, cls: type) -> type:
        """Register ``cls`` as ``name``; a name taken by another class, or a class failing the check, raises."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.role} name: expected a non-empty string, found {name!r}")
        if name in self._classes and self._classes[name] is not cls:
            raise ValueError(f"{self.role} name {name!r} is already registered to {self._classes[name].__name__}")
        if self._check is not None:
            self._check(name, cls)
        self._classes[name] = cls
        return cls

    def get(self, name: str) -> type:
        """The class registered as ``name``; unknown names raise ``ValueError`` listing the known ones."""
        if name not in self._classes:
            raise ValueError(f"{self.role}: expected one of {self.names()}, found {name!r}")
        return self._classes[name]

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._classes)

    def __contains__(self, name) -> bool:
        return name in self._classes


# Kinds of model directory (config.json's "kind") by the role of the model they hold, i.e. the class of
# synthaug.models that loads them ("generator": GeneratorModel, "translator": TranslatorModel, "upscaler":
# UpscalerModel, "classifier": ClassifierModel). The one list of them: synthaug.models reads it without importing
# training code, and a recipe (which writes its registered name as the kind) is checked against it when it
# registers, under the role it declares (Recipe.exports, one of RECIPE_EXPORTS); a recipe of a new name adds its
# kind here.
MODEL_ROLES = ("generator", "translator", "upscaler", "classifier")
RECIPE_EXPORTS = ("generator", "translator", "upscaler")  # the roles a recipe's save_pretrained may write
_MODEL_KINDS: dict[str, str] = {
    "cgan": "generator",
    "cyclegan": "translator",
    "pix2pix": "translator",
    "cut": "translator",
    "fastcut": "translator",
    "srgan": "upscaler",
    "classifier": "classifier",
}


def model_kinds(role: str | None = None) -> tuple[str, ...]:
    """The model directory kinds holding a model of ``role`` (None: every kind), in registration order."""
    if role is not None and role not in MODEL_ROLES:
        raise ValueError(f"role: expected one of {list(MODEL_ROLES)}, found {role!r}")
    return tuple(k for k, r in _MODEL_KINDS.items() if role is None or r == role)


def check_model_kind(kind: str, role: str) -> None:
    """Raise unless ``kind`` may name model directories of ``role``: it is new, or listed under that role."""
    if role not in MODEL_ROLES:
        raise ValueError(f"model kind {kind!r}: expected a role in {list(MODEL_ROLES)}, found {role!r}")
    have = _MODEL_KINDS.get(kind, role)
    if have != role:
        raise ValueError(f"model kind {kind!r}: expected the kind of {role} directories, found the kind of {have} "
                         "directories")


def add_model_kind(kind: str, role: str) -> None:
    """Make ``kind`` name model directories of ``role`` (see :func:`check_model_kind`)."""
    check_model_kind(kind, role)
    _MODEL_KINDS[kind] = role
