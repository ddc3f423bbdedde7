"""Method lineage: which paper proposes which method, and which methods extend which.

Edges come from Zotero (tags `proposes:X` / `extends:Y`, Extra lines `proposes: X` /
`extends: Y; Z`) and from the user's own `proposes` / `extends` properties in paper notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.model import Item

_SPLIT = re.compile(r"[;,]")


@dataclass(frozen=True)
class ItemEdges:
    proposes: tuple[str, ...] = ()
    extends: tuple[str, ...] = ()


def _names(text: str) -> list[str]:
    return [n.strip() for n in _SPLIT.split(text) if n.strip()]


def _dedupe(names: list[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.casefold(), name)
    return tuple(seen.values())


def item_edges(
    item: Item, proposes_prefix: str = "proposes:", extends_prefix: str = "extends:"
) -> ItemEdges:
    """The methods an item proposes and extends, from its tags and Extra field."""
    proposes: list[str] = []
    extends: list[str] = []
    for tag in item.tags:
        lowered = tag.lower()
        if lowered.startswith(proposes_prefix.lower()):
            proposes.extend(_names(tag[len(proposes_prefix) :]))
        elif lowered.startswith(extends_prefix.lower()):
            extends.extend(_names(tag[len(extends_prefix) :]))
    for line in item.fields.get("extra", "").splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "proposes":
            proposes.extend(_names(value))
        elif key == "extends":
            extends.extend(_names(value))
    return ItemEdges(_dedupe(proposes), _dedupe(extends))


def is_lineage_tag(
    tag: str, proposes_prefix: str = "proposes:", extends_prefix: str = "extends:"
) -> bool:
    lowered = tag.lower()
    return lowered.startswith(proposes_prefix.lower()) or lowered.startswith(extends_prefix.lower())
