"""The typed model every source returns and every later stage reads.

Sources know Zotero; the vault knows Obsidian; both meet only here. Everything is frozen so a
snapshot can be hashed, compared and shared between the planner and tests without surprises.

Normalisations every source must apply (so sqlite and API sources give identical notes):
- timestamps: UTC ISO 8601 with a Z, `2016-06-27T10:00:00Z`;
- `Item.fields`: Zotero field names (`title`, `date`, `publicationTitle`, `DOI`, `url`,
  `abstractNote`, `extra`, …) → the text the user typed (for `date`, the original text, not
  the sqlite multipart `2016-00-00 2016` form); empty fields are left out;
- creators in Zotero's order; a single-field name has `first_name == ""` and `name_only=True`;
- annotation colours lower-case `#rrggbb`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

_PAGE_INDEX = re.compile(r'"pageIndex"\s*:\s*(\d+)')

ANNOTATION_TYPES = ("highlight", "note", "image", "ink", "underline", "text")
# Zotero 7's item types that get notes (`attachment`: a standalone file), for checking names
# a user types (`[templates.by_type]`)
ITEM_TYPES = (
    "artwork", "attachment", "audioRecording", "bill", "blogPost", "book", "bookSection",
    "case", "computerProgram", "conferencePaper", "dataset", "dictionaryEntry", "document",
    "email", "encyclopediaArticle", "film", "forumPost", "hearing", "instantMessage",
    "interview", "journalArticle", "letter", "magazineArticle", "manuscript", "map",
    "newspaperArticle", "patent", "podcast", "preprint", "presentation", "radioBroadcast",
    "report", "standard", "statute", "thesis", "tvBroadcast", "videoRecording", "webpage",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Library:
    """A Zotero library: the user's own (`user`) or a group (`group`, with `group_id`)."""

    kind: str = "user"
    group_id: int | None = None

    @property
    def uri_part(self) -> str:
        """The middle of a `zotero://` URI: `library` or `groups/<id>`."""
        return "library" if self.kind == "user" else f"groups/{self.group_id}"


@dataclass(frozen=True, slots=True)
class Creator:
    creator_type: str
    first_name: str
    last_name: str
    name_only: bool = False

    @property
    def display(self) -> str:
        """`First Last` (or the single-field name), as people write it."""
        if self.name_only or not self.first_name:
            return self.last_name
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class Annotation:
    key: str
    attachment_key: str
    annotation_type: str  # one of ANNOTATION_TYPES
    text: str = ""
    comment: str = ""
    color: str = "#ffd400"
    page_label: str = ""
    sort_index: str = ""
    position: str = ""  # Zotero's JSON text: {"pageIndex": N, "rects": [...]}
    tags: tuple[str, ...] = ()
    date_added: str = ""
    date_modified: str = ""
    # Image/ink annotations: Zotero's rendered PNG in its cache, when the source can see one
    # (`<data dir>/cache/library/KEY.png`); the bridge copies it into the vault.
    image_path: str = ""

    @property
    def page_index(self) -> int | None:
        """0-based page index from `position`, when it has one."""
        match = _PAGE_INDEX.search(self.position) if self.position else None
        return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class Attachment:
    key: str
    title: str = ""
    content_type: str = ""
    link_mode: str = ""  # imported_file, imported_url, linked_file, linked_url, embedded_image
    path: str = ""
    annotations: tuple[Annotation, ...] = ()


@dataclass(frozen=True, slots=True)
class ChildNote:
    """A Zotero note that belongs to an item (`itemNotes` with a parent): its HTML as stored."""

    key: str
    html: str = ""
    date_added: str = ""
    date_modified: str = ""


@dataclass(frozen=True, slots=True)
class Item:
    """One regular Zotero item (not an attachment, note or annotation) — or a standalone
    file (`item_type` "attachment", no parent item), which is its own one attachment."""

    key: str
    item_type: str
    fields: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    creators: tuple[Creator, ...] = ()
    tags: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()  # full paths, "Parent/Child"
    attachments: tuple[Attachment, ...] = ()
    related: tuple[str, ...] = ()  # keys of related items (dc:relation), sorted
    citation_key: str = ""
    trashed: bool = False
    date_added: str = ""
    date_modified: str = ""
    library: Library = Library()
    version: int = 0
    notes: tuple[ChildNote, ...] = ()  # child notes not in the trash, oldest first

    @property
    def title(self) -> str:
        return self.fields.get("title", "")

    @property
    def year(self) -> int | None:
        """The first four-digit year in Zotero's free-form `date` field."""
        match = re.search(r"(?<!\d)(\d{4})(?!\d)", self.fields.get("date", ""))
        return int(match.group(1)) if match else None

    @property
    def annotations(self) -> tuple[Annotation, ...]:
        return tuple(a for att in self.attachments for a in att.annotations)


@runtime_checkable
class ItemStream(Protocol):
    """A snapshot's items: a `Sequence[Item]` with more, gone through as often as needed.

    Equal to the tuple a whole read would return. A source too large to hold as objects at
    once builds them each time they are gone through (the sqlite source's `_StreamedItems`);
    the others hold them whole (`Items`). `heads()` goes through them lighter (no
    attachments, annotations or relations: enough to name notes); `warnings` grows with items
    that failed to build while streaming; `close()` lets go of what the stream holds open (it
    also happens when the stream is garbage-collected)."""

    @property
    def warnings(self) -> Sequence[str]: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Item]: ...

    def heads(self) -> Iterator[Item]: ...

    def close(self) -> None: ...


class Items(tuple[Item, ...]):
    """The `ItemStream` of items held whole: a tuple (equal to one, and hashable), whose
    lighter pass is itself, with no late warnings and nothing to close."""

    __slots__ = ()

    @property
    def warnings(self) -> Sequence[str]:
        return ()

    def heads(self) -> Iterator[Item]:
        return iter(self)

    def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class LibrarySnapshot:
    """What one `source.read()` returned.

    `items` holds the items that changed since the cursor passed to `read` (all of them when
    `since` was None), as an `ItemStream`; a tuple of items given here is held as `Items`.
    `all_keys` is the set of every regular item key (standalone files included) that still
    exists in the library (trashed included), so the planner can find permanent deletions by
    comparison; it is None when the source cannot tell (then nothing is considered erased).
    `cursor` is opaque to everyone but the source; pass it back as `since` next time.
    """

    items: ItemStream
    all_keys: frozenset[str] | None
    cursor: str | None = None
    library: Library = Library()
    incremental: bool = False
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.items, ItemStream):  # a plain tuple of items: held whole
            object.__setattr__(self, "items", Items(self.items))

    def close(self) -> None:
        """Let go of what the items hold open (a streaming source's private copy)."""
        self.items.close()
