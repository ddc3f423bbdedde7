"""What a rendered note is: the data `bridge.vault.render` makes and the planner and merge read.

Apart from the Jinja2 renderer so that the planner (`bridge.planner`) and the merge
(`bridge.vault.merge`) import plain data types, never the template machinery that loads
templates from disk. `bridge.vault.render` re-exports every name here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bridge.digests import digest

if TYPE_CHECKING:  # the header's renderer is Jinja's: the planner only passes it along
    from bridge.vault.header import HeaderRenderer

BRIDGE_KEYS = (
    "title", "aliases", "authors", "year", "venue", "venue_short", "item_type", "doi", "url",
    "citekey",
    "zotero_key", "zotero", "pdf", "tags", "collections", "proposes", "extends", "related",
    "date_added", "date_modified",
)  # fmt: skip
METHOD_KEYS = ("type", "method_id", "aliases", "proposed_in", "extends")
LIST_KEYS = frozenset({"aliases", "authors", "tags", "collections", "proposes", "extends",
                       "proposed_in", "related"})  # fmt: skip


@dataclass(frozen=True)
class RenderedNote:
    """What the bridge wants a note to contain; `body` is used only when creating it."""

    note_id: str
    kind: str
    properties: dict[str, Any]
    regions: dict[str, str]
    initial_properties: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    owned_keys: tuple[str, ...] = BRIDGE_KEYS
    extra_base: dict[str, Any] = field(default_factory=dict)  # remembered in the state DB
    copies: tuple[tuple[str, str], ...] = ()  # (source file, vault path) to copy alongside
    # region name → the block (heading and region) an existing note gets when that region
    # is new to it: never in the note, never written by the bridge (`merge.add_new_regions`)
    additions: dict[str, str] = field(default_factory=dict)
    # renders the header region again from the note's merged properties (`vault/header.py`)
    header: HeaderRenderer | None = field(default=None, compare=False, repr=False)

    @cached_property
    def core_json(self) -> str:
        """The properties and regions as JSON: hashed for `render_hash`, and stored as the
        merge base as it is (one serialisation per note, not two)."""
        core = {"properties": self.properties, "regions": self.regions}
        return json.dumps(core, sort_keys=True, ensure_ascii=False)

    @cached_property
    def render_hash(self) -> str:
        data = self.core_json.encode()  # a lone surrogate raises: the item is skipped
        return digest(data)


@dataclass(frozen=True)
class LinkNames:
    """Link text for other notes: Zotero key → paper stem, method name → method stem."""

    papers: Mapping[str, str]
    methods: Mapping[str, str]

    def paper(self, key: str) -> str | None:
        return self.papers.get(key)

    def method(self, name: str) -> str:
        return self.methods.get(name.casefold(), name)
