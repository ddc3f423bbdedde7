"""Rows → model items (`_Builder`), and what changed since a cursor, computed from rows."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from bridge.model import (
    ANNOTATION_TYPES,
    Annotation,
    Attachment,
    ChildNote,
    Item,
)
from bridge.sources.sqlite.cursor import _bbt_digest, _children_digest, _Cursor, _images_digest
from bridge.sources.sqlite.queries import _Rows, _under
from bridge.sources.sqlite.schema import (
    FILE_ITEM_TYPES,
    NON_REGULAR_TYPES,
    _iso,
    _LibraryInfo,
    _link_mode,
    _tag_tuple,
)

# An incremental read looks up the details of the items it returns by itemID; beyond this
# share of the library's rows, scanning the tables whole is cheaper.
DETAILS_BY_ID_SHARE = 0.25


_EXTRA_CITEKEY = re.compile(r"^\s*citation\s*key\s*:\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)
_RELATION_URI = re.compile(
    r"^https?://zotero\.org/(?P<lib>users/(?:local/)?[^/]+|groups/\d+)/items/(?P<key>[0-9A-Z]+)$"
)


class _Builder:
    """Turns grouped rows into model objects, and works out what changed since a cursor."""

    def __init__(
        self,
        rows: _Rows,
        info: _LibraryInfo,
        bbt_keys: dict[str, str],
        image_dir: Path | None = None,
        loader: Callable[[Collection[int] | None], None] | None = None,
        cached_images: set[str] | None = None,
    ) -> None:
        self.rows = rows
        self.loader = loader  # adds details (`_query_details`) when `rows` were read light
        self._detailed: set[int] | None = None  # items with details, when not all have them
        self._digests: dict[int, str] = {}
        self.info = info
        self.bbt_keys = bbt_keys
        self.image_dir = image_dir
        self._cached_images = cached_images  # known already when `rows` are a few items'
        self.warnings: list[str] = []
        self.children: dict[int, list[int]] = defaultdict(list)
        files: set[int] = set()  # standalone files: each is its own one attachment
        for att_id, (parent, _, content_type, _) in rows.attachments.items():
            if parent is None and content_type in FILE_ITEM_TYPES:
                files.add(att_id)
                self.children[att_id].append(att_id)
            elif parent is not None and att_id not in rows.trashed:
                self.children[parent].append(att_id)
        self.regular = [
            item_id
            for item_id, (_, type_name, *_rest) in rows.items.items()
            if type_name not in NON_REGULAR_TYPES or item_id in files
        ]
        self.annotations_of: dict[int, list[int]] = defaultdict(list)
        for ann_id, (att_id, *_rest) in rows.annotations.items():
            self.annotations_of[att_id].append(ann_id)
        self.notes_of: dict[int, list[int]] = defaultdict(list)  # child notes by parent
        for note_id, (parent, _) in rows.notes.items():
            kind = rows.items[note_id][1] if note_id in rows.items else ""
            # (attachments have itemNotes rows too)
            if parent is not None and note_id not in rows.trashed and kind == "note":
                self.notes_of[parent].append(note_id)

    def load_details(self, item_ids: Collection[int] | None) -> None:
        """Make `item(i)` possible for each of `item_ids` (None: every item): their details,
        and those of their attachments and annotations, are read if they were not yet."""
        if self.loader is None:
            return
        family: set[int] | None = None
        if item_ids is not None:
            family = set(item_ids)
            for item_id in item_ids:
                for att_id in self.children.get(item_id, ()):
                    family.add(att_id)
                    family.update(self.annotations_of.get(att_id, ()))
                family.update(self.notes_of.get(item_id, ()))
            if len(family) > DETAILS_BY_ID_SHARE * len(self.rows.items):
                family = None
        self.loader(family)
        self.loader = None  # a second load would add creators, tags… twice
        self._detailed = family

    # -- cursor

    def newest_stamp(self) -> str:
        """The newest local-save time anywhere in the library (items of every kind,
        collections, trash)."""
        rows = self.rows
        times = [row[4] for row in rows.items.values()]
        times += rows.collection_times.values()
        times += rows.trashed.values()
        return max((str(t) for t in times if t), default="")

    def cursor(self, newest: str, boundary: dict[str, str], files: str = "") -> _Cursor:
        max_item_id = max(self.rows.items, default=0)
        return _Cursor.of(
            self.info, time=newest, max_item_id=max_item_id,
            children=self._children_digest(max_item_id), bbt_keys=self.bbt_keys,
            boundary=boundary, images=self.images_digest(), files=files,
        )  # fmt: skip

    def _child_rows(self) -> Iterable[tuple[int, str, int | None]]:
        rows = self.rows
        for table in (rows.attachments, rows.annotations, rows.notes):
            for item_id, (parent, *_rest) in table.items():
                yield item_id, rows.items[item_id][0], parent

    def _children_digest(self, max_item_id: int) -> str:
        if max_item_id not in self._digests:  # the old and new cursor's are usually the same
            self._digests[max_item_id] = _children_digest(self._child_rows(), max_item_id)
        return self._digests[max_item_id]

    def needs_full_read(self, old: _Cursor) -> bool:
        """Changes timestamps cannot show: deleted/moved children, Better BibTeX edits."""
        return (
            old.library_id != self.info.library_id
            or self._children_digest(old.max_item_id) != old.children
            or _bbt_digest(self.bbt_keys) != old.bbt
            or self.images_digest() != old.images
        )

    def cached_images(self) -> set[str]:
        """Keys of image/ink annotations whose rendered PNG is in Zotero's cache.

        Zotero renders that PNG some time after the annotation is saved, touching no row, so
        the set itself goes into the cursor: a new image shows up on the next sync."""
        if self._cached_images is None:
            self._cached_images = set()
            if self.image_dir is not None and self.image_dir.is_dir():
                for ann_id, row in self.rows.annotations.items():
                    key = self.rows.items[ann_id][0]
                    if row[1] in (3, 4) and (self.image_dir / f"{key}.png").is_file():
                        self._cached_images.add(key)
        return self._cached_images

    def images_digest(self) -> str:
        return _images_digest(self.cached_images())

    def touched(self, stamped: Callable[[str], bool]) -> set[int]:
        """Regular items saved at a matching time, or whose attachments, annotations,
        collections (renamed or moved) or trash state changed then."""
        rows = self.rows
        changed: set[int] = set()
        for item_id, (_, _, _, _, client_modified, _) in rows.items.items():
            if stamped(str(client_modified)):
                changed.add(self._top(item_id))
        for item_id, when in rows.trashed.items():
            if stamped(when):
                changed.add(self._top(item_id))
        moved = {cid for cid, when in rows.collection_times.items() if stamped(when)}
        if moved:
            for item_id, cids in rows.collections.items():
                if any(self._under(cid, moved) for cid in cids):
                    changed.add(item_id)
        return changed

    def _top(self, item_id: int) -> int:
        """Walk annotation → attachment (or note) → parent item."""
        for _ in range(2):
            if item_id in self.rows.annotations:
                item_id = self.rows.annotations[item_id][0]
            elif item_id in self.rows.attachments and self.rows.attachments[item_id][0]:
                item_id = self.rows.attachments[item_id][0]
            elif item_id in self.rows.notes and self.rows.notes[item_id][0]:
                item_id = self.rows.notes[item_id][0]
            else:
                break
        return item_id

    def _under(self, cid: int, moved: set[int]) -> bool:
        return _under(self.rows.collection_parents, cid, moved)

    # -- model objects

    def item(self, item_id: int, *, children: bool = True) -> Item:
        """The model item; without `children`, no attachments (nor their annotations)."""
        if self.loader is not None or (
            self._detailed is not None and item_id not in self._detailed
        ):
            raise RuntimeError(f"item {item_id} was built before its details were read")
        rows = self.rows
        key, type_name, added, modified, _, version = rows.items[item_id]
        fields = dict(rows.fields.get(item_id, {}))
        paths = {
            rows.collection_paths[cid]
            for cid in rows.collections.get(item_id, ())
            if cid in rows.collection_paths
        }
        attachments = self._ordered(self.children.get(item_id, ())) if children else []
        return Item(
            key=key,
            item_type=type_name,
            fields=fields,
            creators=tuple(rows.creators.get(item_id, ())),
            tags=_tag_tuple(rows.tags.get(item_id)),
            collections=tuple(sorted(paths)),
            attachments=tuple(self._attachment(att_id) for att_id in attachments),
            related=self._related(item_id),
            citation_key=self._citation_key(key, fields),
            trashed=item_id in rows.trashed,
            date_added=_iso(added),
            date_modified=_iso(modified),
            library=self.info.library,
            version=int(version),
            notes=self._notes(item_id) if children else (),
        )

    def _notes(self, item_id: int) -> tuple[ChildNote, ...]:
        """The item's child notes not in the trash, oldest first."""
        found = []
        for note_id in self._ordered(self.notes_of.get(item_id, ())):
            key, _, added, modified, _, _ = self.rows.items[note_id]
            html = self.rows.notes[note_id][1] or ""
            found.append(ChildNote(key, html, _iso(added), _iso(modified)))
        return tuple(found)

    def _ordered(self, item_ids: Iterable[int]) -> list[int]:
        return sorted(item_ids, key=lambda i: (str(self.rows.items[i][2]), self.rows.items[i][0]))

    def _attachment(self, att_id: int) -> Attachment:
        _, mode, content_type, path = self.rows.attachments[att_id]
        annotations = [self._annotation(a, att_id) for a in self.annotations_of.get(att_id, ())]
        kept = sorted((a for a in annotations if a), key=lambda a: (a.sort_index, a.key))
        return Attachment(
            key=self.rows.items[att_id][0],
            title=self.rows.fields.get(att_id, {}).get("title", ""),
            content_type=content_type,
            link_mode=_link_mode(mode),
            path=path,
            annotations=tuple(kept),
        )

    def _annotation(self, ann_id: int, att_id: int) -> Annotation | None:
        row = self.rows.annotations[ann_id]
        _, kind, text, comment, color, page_label, sort_index, position = row
        key, _, added, modified, _, _ = self.rows.items[ann_id]
        if not isinstance(kind, int) or not 1 <= kind <= len(ANNOTATION_TYPES):
            self.warnings.append(f"annotation {key}: unknown annotation type {kind!r}, skipped")
            return None
        return Annotation(
            key=key,
            attachment_key=self.rows.items[att_id][0],
            annotation_type=ANNOTATION_TYPES[kind - 1],
            text=text or "",
            comment=comment or "",
            color=(color or "#ffd400").lower(),
            page_label=page_label or "",
            sort_index=sort_index or "",
            position=position or "",
            tags=_tag_tuple(self.rows.tags.get(ann_id)),
            date_added=_iso(added),
            date_modified=_iso(modified),
            image_path=str(self.image_dir / f"{key}.png")
            if self.image_dir is not None and key in self.cached_images()
            else "",
        )

    def _related(self, item_id: int) -> tuple[str, ...]:
        keys = set()
        for uri in self.rows.relations.get(item_id, ()):
            match = _RELATION_URI.match(uri)
            if match and self.info.uri_part.match(match["lib"]):
                keys.add(match["key"])
        return tuple(sorted(keys))

    def _citation_key(self, key: str, fields: dict[str, str]) -> str:
        """Native `citationKey` field, then Better BibTeX's database, then `Citation Key:` in
        Extra — the order in which each one is authoritative."""
        if fields.get("citationKey", "").strip():
            return fields["citationKey"].strip()
        if key in self.bbt_keys:
            return self.bbt_keys[key]
        match = _EXTRA_CITEKEY.search(fields.get("extra", ""))
        return match[1] if match else ""
