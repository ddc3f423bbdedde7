"""`.zotero-bridge/library.json`: the whole library, small, for the Obsidian plugin.

The plugin's "open or create paper note" and "insert citation" pick from *every* item, noted
or not. It reads this index, written after each sync (and after `zob new` through the local
API), so it works without `zob watch` and answers instantly with it.

One row per regular, untrashed item: `key`, `citekey`, `title`, `authors` (display names,
at most `MAX_AUTHORS`), `surnames` (the first three, for an `Author Year` label),
`author_count`, `year`, `venue` (the short form: Zotero's journal abbreviation, else the
venue cut to `MAX_VENUE` characters), `pdf` (the first PDF's attachment key, when the read
saw attachments), and from the paper note when there is one: `note` (its vault path),
`pass` and `status`. Every Zotero string passes `neutralise.prop` (one line, nothing that
starts a link, a template or a tag), so a citation label built from it is inert; a citekey
outside a plain charset is left out. No secret goes in: no API key, no URL with a query.

Bounded: at most `MAX_ITEMS` rows (noted papers first, then the most recently modified), each
string capped. Written whole through `StateFolder.write_atomic` (temp + rename), so the plugin
never reads half a file.

An incremental sync reads only what changed: its rows are merged into the index on disk. When
there is no usable index yet (first run after an upgrade, a damaged file, another source), the
library is read once more in full — the lighter item "heads" when the source streams — to
rebuild it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bridge.config import Config
from bridge.errors import BridgeError
from bridge.model import Item
from bridge.plugin_install import PLUGIN_DIR
from bridge.stamps import digest, iso
from bridge.state import State
from bridge.statefolder import STATE_DIRNAME, StateFileRefused, StateFolder
from bridge.vault import neutralise
from bridge.vault.render import authors, first_pdf, venue

INDEX_NAME = "library.json"
FORMAT = 1
MAX_ITEMS = 50_000  # ~470 B a row: at most ~25 MB
MAX_TITLE = 300
MAX_AUTHORS = 5
MAX_NAME = 80
MAX_VENUE = 60
_CITEKEY = re.compile(r"^[\w:.+\-/]{1,100}$")


def _cap(text: str, limit: int) -> str:
    text = neutralise.prop(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def short_venue(item: Item) -> str:
    short = item.fields.get("journalAbbreviation") or item.fields.get("conferenceName") or ""
    if short and len(short) <= MAX_VENUE:
        return _cap(short, MAX_VENUE)
    return _cap(venue(item) or short, MAX_VENUE)


def item_row(item: Item) -> dict[str, Any]:
    """The index row of one item (its note's part is filled in by `_with_notes`)."""
    names = authors(item)
    surnames = [c.last_name for c in item.creators if c.creator_type in ("author", "")]
    surnames = surnames or [c.last_name for c in item.creators]
    citekey = item.citation_key if _CITEKEY.match(item.citation_key or "") else ""
    pdf = first_pdf(item) if item.attachments else None
    return {
        "key": item.key,
        "citekey": citekey,
        "title": _cap(item.title, MAX_TITLE),
        "authors": [_cap(n, MAX_NAME) for n in names[:MAX_AUTHORS]],
        "surnames": [_cap(n, MAX_NAME) for n in surnames[:3]],
        "author_count": len(names),
        "year": item.year,
        "venue": short_venue(item),
        "item_type": item.item_type,
        "modified": item.date_modified,
        "pdf": pdf.key if pdf else None,
    }


def load(folder: StateFolder) -> dict[str, Any] | None:
    """The index on disk, or None when there is none or it cannot be used."""
    try:
        data = folder.read_small(INDEX_NAME, limit=1 << 30)
    except OSError:
        return None
    if not data:
        return None
    try:
        index = json.loads(data)
    except ValueError:
        return None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        return None
    if not isinstance(index.get("items"), list):
        return None
    return index


def _notes(state: State) -> dict[str, tuple[str, Any, str]]:
    """Paper note id → (path, pass, status), from the facts the sync cached (`paper_meta`)."""
    found: dict[str, tuple[str, Any, str]] = {}
    rows = state.noted_paper_facts()
    for note_id, path, info_json in rows:
        try:
            info = json.loads(info_json)
        except ValueError:
            continue
        raw = str(info.get("reading_pass", "")).strip()
        reading_pass: Any = int(raw) if raw.isdigit() else (raw or None)
        found[note_id] = (path, reading_pass, str(info.get("status") or ""))
    return found


def _with_notes(rows: dict[str, dict[str, Any]], state: State) -> list[dict[str, Any]]:
    """The rows with their notes' part, noted papers first, then the newest; capped."""
    notes = _notes(state)
    for key, row in rows.items():
        path, reading_pass, status = notes.get(key, (None, None, ""))
        row.update(note=path, **{"pass": reading_pass}, status=status)
    ordered = sorted(rows.values(), key=lambda r: r["key"])
    ordered.sort(key=lambda r: str(r.get("modified") or ""), reverse=True)
    ordered.sort(key=lambda r: r["note"] is None)  # stable: keeps the order within each
    return ordered[:MAX_ITEMS]


def _source(source_id: str) -> str:
    return digest(source_id.encode(), size=8)


def _mark(state: State, source: str) -> str:
    """What the index was built from besides the items read: the paper notes' cached facts
    (`paper_meta`, replaced row by row — a new rowid — whenever a note's facts change; a
    note gone drops its row). Two O(1) lookups: this runs at every sync."""
    count, top = state.paper_facts_mark()
    return f"{source}:{count}:{top}"


def _write(folder: StateFolder, state: State, index: dict[str, Any], mark: str) -> None:
    data = json.dumps(index, ensure_ascii=False, separators=(",", ":")).encode()
    folder.write_atomic(INDEX_NAME, data, 0o644)
    with state.transaction():
        state.marks.library_index = _stamped(folder, mark)


def _stamped(folder: StateFolder, mark: str) -> str | None:
    """The mark with the file's size and mtime: a file changed by anyone else (damaged,
    deleted, replaced) no longer matches, and is rebuilt at the next sync."""
    st = folder.lstat(INDEX_NAME)
    return None if st is None else f"{mark}|{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def update(
    folder: StateFolder,
    state: State,
    items: Iterable[Item],
    all_keys: frozenset[str] | None,
    old: dict[str, Any] | None,
    *,
    source_id: str,
) -> int:
    """Merge the items read into `old` (None: replace the index, the items being the whole
    library), add the notes' part, write it. Returns how many rows it holds."""
    rows = {} if old is None else {r["key"]: r for r in old["items"] if isinstance(r, dict)}
    for item in items:
        if item.trashed:
            rows.pop(item.key, None)
        else:
            rows[item.key] = item_row(item)
    if all_keys is not None:
        rows = {key: row for key, row in rows.items() if key in all_keys}
    ordered = _with_notes(rows, state)
    index = {
        "format": FORMAT,
        "generated_at": iso(),
        "complete": True,
        "source": _source(source_id),
        "count": len(ordered),
        "truncated": max(0, len(rows) - len(ordered)),
        "items": ordered,
    }
    _write(folder, state, index, _mark(state, _source(source_id)))
    return len(ordered)


def _usable(index: dict[str, Any] | None, source_id: str) -> bool:
    return index is not None and index.get("source") == _source(source_id)


def light_items(snapshot: Any) -> Iterator[Item]:
    """A snapshot's items, as the lighter heads (no attachments) when the source streams."""
    return iter(snapshot.items.heads())


def _rebuild(folder: StateFolder, state: State, source: Any, source_id: str) -> None:
    """No usable index and only the changes read: read the whole library once more."""
    snapshot = source.read(since=None)
    try:
        update(folder, state, light_items(snapshot), snapshot.all_keys, None, source_id=source_id)
    finally:
        snapshot.close()


def wanted(vault_root: Path) -> bool:
    """Whether anything reads the index: the plugin is installed in the vault, or an index
    is there already (written for it once). A vault without either pays nothing: rewriting
    the whole index is most of a sync that changes one note in a 10,000-item library."""
    return os.path.lexists(vault_root / PLUGIN_DIR) or os.path.lexists(
        vault_root / STATE_DIRNAME / INDEX_NAME
    )


def after_sync(
    source: Any,
    vault_root: Path,
    state: State,
    items: Any,
    all_keys: frozenset[str] | None,
    *,
    complete: bool,
    source_id: str,
) -> list[str]:
    """The sync's one call (`bridge.sync`): bring the index in step with what it read.

    `items`: the snapshot's items as read, before `[filters]` (every item is citable);
    `complete`: they are the whole library. Nothing read and no note's facts changed: the
    file is left as it is, unread (a no-op sync costs two lookups). Returns warnings: the
    index is a convenience, a failure to write it fails no sync — but a planted link or FIFO
    in its place is refused (`StateFileRefused`), as for every file of the state folder."""
    try:
        with StateFolder(vault_root) as folder:
            stream = iter(items.heads() if complete else items)
            first = next(stream, None)
            read = itertools.chain([] if first is None else [first], stream)
            if not complete:
                present = folder.lstat(INDEX_NAME) is not None
                mark = _stamped(folder, _mark(state, _source(source_id)))
                if first is None and mark is not None and state.marks.library_index == mark:
                    return []
                old = load(folder) if present else None
                if not _usable(old, source_id):
                    _rebuild(folder, state, source, source_id)
                    return []
            update(folder, state, read, all_keys, None if complete else old, source_id=source_id)
    except StateFileRefused:
        raise
    except (OSError, BridgeError) as exc:
        message = exc.message if isinstance(exc, BridgeError) else str(exc)
        return [f"the item index for Obsidian ({STATE_DIRNAME}/{INDEX_NAME}) was not"
                f" updated: {message}"]  # fmt: skip
    return []


def refresh_notes(config: Config) -> None:
    """After `zob new` (through the local API): the rows' note, pass and status again, under
    the sync lock, so the plugin sees the new note at once. Nothing when there is no index."""
    from bridge.session import writing

    with writing(config) as session, StateFolder(session.vault_root) as folder:
        index = load(folder)
        if index is None:
            return
        rows = {r["key"]: r for r in index["items"] if isinstance(r, dict) and "key" in r}
        index["items"] = _with_notes(rows, session.state)
        index["count"] = len(index["items"])
        index["generated_at"] = iso()
        _write(folder, session.state, index, _mark(session.state, str(index.get("source"))))


# --- search: the same order as the plugin's modal (obsidian-plugin/src/ranking.ts) ------------


def _fold(text: object) -> str:
    return " ".join(str(text or "").casefold().split())


def rank(row: dict[str, Any], query: str) -> float | None:
    """The row's tier for `query` (lower is better), None when it does not match: the exact
    title, then the citation key, then an author, then the year, then all words anywhere."""
    q = _fold(query)
    if not q:
        return None
    if _fold(row.get("title")) == q:
        return 0
    citekey = _fold(row.get("citekey"))
    if citekey and citekey.startswith(q):
        return 1
    names = [_fold(n) for n in (row.get("authors") or []) + (row.get("surnames") or [])]
    if any(n == q or n.startswith(q) or n.split(" ")[-1] == q for n in names):
        return 2
    if str(row.get("year") or "") == q:
        return 3
    hay = " ".join([_fold(row.get("title")), citekey, " ".join(names), _fold(row.get("venue")),
                    str(row.get("year") or ""), _fold(row.get("key"))])  # fmt: skip
    if all(word in hay for word in q.split(" ")):
        return 4 if q in _fold(row.get("title")) else 5
    return None


def search(rows: list[dict[str, Any]], query: str, limit: int) -> list[dict[str, Any]]:
    scored = [(tier, row) for row in rows if (tier := rank(row, query)) is not None]
    scored.sort(key=lambda pair: (pair[0], _fold(pair[1].get("title")), pair[1].get("key", "")))
    return [row for _, row in scored[:limit]]
