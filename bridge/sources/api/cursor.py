"""The web source's cursor: the library version *and* the tree of regular items → their
attachment and annotation keys (and the collection keys).

With it a sync costs one request when nothing changed, and a deleted annotation is findable:
`/deleted` names only its key, the tree names its paper. Local reads keep a digest of the data
instead (`LOCAL_CURSOR_PREFIX`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

CURSOR_PREFIX = "zob-api:"
LOCAL_CURSOR_PREFIX = "zob-local:"


@dataclass
class WebCursor:
    """Library version + regular item → child keys + collection keys (see module docstring)."""

    version: int
    tree: dict[str, list[str]] = field(default_factory=dict)
    collections: list[str] = field(default_factory=list)

    def encode(self) -> str:
        body = {
            "v": 1,
            "version": self.version,
            "tree": {k: sorted(v) for k, v in sorted(self.tree.items())},
            "collections": sorted(self.collections),
        }
        return CURSOR_PREFIX + json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> WebCursor | None:
        if not text.startswith(CURSOR_PREFIX):
            return None
        try:
            body = json.loads(text[len(CURSOR_PREFIX) :])
            tree = {str(k): [str(c) for c in v] for k, v in body["tree"].items()}
            return cls(int(body["version"]), tree, [str(c) for c in body["collections"]])
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def child_parents(self) -> dict[str, str]:
        return {child: parent for parent, kids in self.tree.items() for child in kids}


class LibraryChanged(Exception):
    """The library version moved while a listing was paged through: read it again."""
