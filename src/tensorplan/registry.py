"""Registries merged from the lists of several modules, where a name given twice is a mistake:
the later entry would silently replace the earlier one (an importer lost, an op's properties
never used). The merge refuses it when the package is imported."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

Entry = TypeVar("Entry")


def unique_names(entries: Iterable[tuple[str, Entry]], what: str) -> dict[str, Entry]:
    """`entries` as a dict; ValueError naming the first name that comes twice."""
    registry: dict[str, Entry] = {}
    for name, entry in entries:
        if name in registry:
            raise ValueError(f"{what} '{name}' is registered twice")
        registry[name] = entry
    return registry
