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
