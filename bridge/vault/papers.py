"""What method notes need from the paper notes, read from their properties.

The paper notes' `proposes` / `extends` properties are the merged truth: Zotero's edges (the
bridge wrote them) plus whatever the user added or removed in Obsidian. Reading them back is
cached per note by etag, so a sync re-parses only the notes that changed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from bridge.errors import NoteError
from bridge.lineage import PaperInfo
from bridge.stamps import digest, text_hash
from bridge.state import State
from bridge.vault.fs import RECENT_NS, Vault
from bridge.vault.inflight import frontmatter_complete
from bridge.vault.notefile import parse_note


def paper_from_facts(info: dict) -> PaperInfo:
    """A paper's facts as cached in the state DB (`paper_meta.info_json`)."""
    return PaperInfo(
        **{**info, "proposes": tuple(info["proposes"]), "extends": tuple(info["extends"])}
    )


def _read(vault: Vault, path: str) -> str | None:
    try:
        return vault.read(path)
    except NoteError:
        return None


@dataclass(slots=True)
class _Entry:
    """A paper note whose cached facts cannot be trusted as they are: parse it."""

    note_id: str
    path: str
    etag: str
    text: str | None = None  # read already (to verify an unsettled etag)


@dataclass
class PaperScan:
    """Every live paper note, checked against the facts cache without parsing anything."""

    live: list[str]  # the note id of every paper note on disk, in the state DB's order
    stale: list[_Entry]  # those whose cached facts are missing or older than the note
    dropped: list[str]  # cached notes that are gone (deleted, or deleted by the user)
    # found again by `zotero_key` at another path (moved or renamed in Obsidian): in `live`
    # and `stale`; `refresh_papers` records the new path
    moved: dict[str, str] = field(default_factory=dict)
    # not at their recorded path and not found elsewhere: the digest of these ids, kept once
    # they were looked for, so a note the user deleted costs no walk of the vault each sync
    missing_digest: str | None = None
    # and the vault's note names then: only a new name is looked into at later syncs
    missing_names: str | None = None
    # the notes with new names that carried none of those keys then, and the empty ones a
    # walk of the vault met, by etag: one may get a missing note's text later (pasted into
    # a new note), so each is read again when it changes (JSON; reset by each walk)
    missing_watch: str | None = None

    @property
    def unchanged(self) -> bool:
        """Whether every paper note's facts are the cached ones: then method notes, the
        reading history and the queue cannot have changed because of the paper notes."""
        return not self.dropped and not self.stale


def scan_papers(vault: Vault, state: State) -> PaperScan:
    """Two light queries and one `stat` per paper note (no JSON, no note read unless a note
    changed within the file system's clock resolution). Runs at every sync: kept lean, as
    it is a large share of a sync that changes one note."""
    rows = state.live_notes("paper")
    cache = state.paper_cache_index()  # note id → "path\0etag" of its cached facts
    etags = vault.etags([row[1] for row in rows])
    live: list[str] = []
    stale: list[_Entry] = []
    missing: dict[str, str | None] = {}  # note id → its etag in the state DB
    recent = time.time_ns() - RECENT_NS
    for (note_id, path, known, content_hash), etag in zip(rows, etags, strict=True):
        if etag is None:
            missing[note_id] = known
            continue
        live.append(note_id)
        if cache.get(note_id) == f"{path}\0{etag}":  # the cache is of this path, at this etag
            if int(etag.split(";", 1)[0]) < recent:  # settled (`etag_settled`)
                continue
            # a same-size edit within one mtime tick keeps the etag: trust it by content
            text = _read(vault, path)
            if text is not None and text_hash(text) == content_hash:
                continue
            stale.append(_Entry(note_id, path, etag, text))
        else:
            stale.append(_Entry(note_id, path, etag))
    moved: dict[str, str] = {}
    digest = _ids_digest(missing)
    names = "\0".join(sorted(vault.markdown_files())) if missing else None
    watch: dict[str, str | None] = {}
    if names is not None:
        walk = digest != state.marks.missing_papers
        found, watch = _look_again(vault, state, missing, names, walk=walk)
        for note_id, path in found.items():
            _found(vault, note_id, path, live, stale, moved)
    if moved:
        digest = _ids_digest([note_id for note_id in missing if note_id not in moved])
    seen = set(live)
    dropped = [note_id for note_id in cache if note_id not in seen]
    watched = json.dumps(watch, ensure_ascii=False, sort_keys=True) if digest and watch else None
    return PaperScan(
        live, stale, dropped, moved, digest, names if digest else None, watched
    )  # fmt: skip


def _look_again(
    vault: Vault, state: State, missing: dict[str, str | None], names: str, *, walk: bool
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Where the missing notes are now (note id → path, None: not found), and the notes to
    watch from now on (`PaperScan.missing_watch`).

    `walk` (other notes are missing than at the last look): one walk of the vault, reading
    every note's head (`Vault` keeps the key index). Else only notes with new names (a move
    that a sync service delivers as delete, then create) and watched notes that changed
    are read: an empty note, or one made since, may get a missing note's text pasted in."""
    found: dict[str, str | None] = {}
    if walk:
        for note_id, known in missing.items():
            found[note_id] = vault.find_zotero_key(note_id, known)
        # empty notes ("": changed since the walk read them, `Vault.zotero_keys`)
        watch = vault.keyless()
        walked = vault.walked()
        look = [name for name in names.split("\0") if name not in walked]  # made since
    else:
        old = _watched(state.marks.missing_watch)
        watch = {name: vault.etag_or_none(name) for name in old}
        look = [name for name, etag in old.items() if watch[name] != etag]
        if names != (before := state.marks.missing_names or ""):
            known_names = set(before.split("\0"))
            look += [name for name in names.split("\0") if name not in known_names]
    now = {name: vault.etag_or_none(name) for name in look}  # before reading: a save meanwhile
    keys = vault.zotero_keys(look) if look else {}  # is seen at the next sync
    for note_id, known in missing.items():
        where = found.get(note_id)  # a walk in planning may have seen it where it no longer is
        if where is None or vault.etag_or_none(where) is None:
            found[note_id] = vault.pick(keys.get(note_id, []), known)
    # a note that carries a key (another paper's, a new item's, a found one) is not watched
    keyed = {rel for rels in keys.values() for rel in rels}
    watch = {name: etag for name, etag in watch.items() if name not in keyed}
    watch.update({name: etag for name, etag in now.items() if name not in keyed})
    return found, {name: etag for name, etag in watch.items() if etag is not None}


def _watched(text: str | None) -> dict[str, str | None]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _found(
    vault: Vault,
    note_id: str,
    path: str | None,
    live: list[str],
    stale: list[_Entry],
    moved: dict[str, str],
) -> None:
    """A missing note found again at `path` (None: not found)."""
    etag = vault.etag(path) if path is not None else None
    if path is not None and etag is not None:
        moved[note_id] = path
        live.append(note_id)
        stale.append(_Entry(note_id, path, etag))


def _ids_digest(ids: Iterable[str]) -> str | None:
    ids = sorted(ids)
    if not ids:
        return None
    return digest("\0".join(ids).encode())


def remember_missing(state: State, scan: PaperScan) -> None:
    """Keep what `scan_papers` looked for (the missing notes, the vault's names then)."""
    marks = state.marks
    if scan.missing_digest != marks.missing_papers:
        marks.missing_papers = scan.missing_digest
    if scan.missing_names != marks.missing_names:
        marks.missing_names = scan.missing_names
    if scan.missing_watch != marks.missing_watch:
        marks.missing_watch = scan.missing_watch


def refresh_papers(
    vault: Vault, state: State, scan: PaperScan, *, write_cache: bool = True
) -> tuple[dict[str, PaperInfo], list[str]]:
    """Parse the paper notes the cache does not cover (edited, moved, new to it) and cache
    their facts; forget the facts of notes that are gone. Returns the fresh facts by note id,
    and problems (a note with broken YAML is reported, and keeps its last known facts)."""
    fresh: dict[str, PaperInfo] = {}
    problems: list[str] = []
    for entry in scan.stale:
        try:
            text = entry.text if entry.text is not None else vault.read(entry.path)
            if not text.strip() or not frontmatter_complete(text):
                continue  # being saved (or left cut short): its last known facts stand
            parsed = parse_note(entry.path, text)
        except NoteError as exc:
            problems.append(exc.message)
            continue
        fresh[entry.note_id] = PaperInfo.from_properties(
            entry.note_id, entry.path, parsed.properties
        )
    if write_cache and (fresh or scan.dropped or scan.moved):
        etags = {e.note_id: e.etag for e in scan.stale}
        with state.transaction():
            state.put_paper_meta([(nid, p.path, etags[nid], vars(p)) for nid, p in fresh.items()])
            state.drop_paper_meta(scan.dropped)
            for note_id, path in scan.moved.items():
                state.move_note(note_id, path)
    if write_cache:
        remember_missing(state, scan)
    return fresh, problems


def collect_papers(
    vault: Vault,
    state: State,
    *,
    write_cache: bool = True,
    stats: dict[str, int] | None = None,
    scan: PaperScan | None = None,
) -> tuple[list[PaperInfo], list[str]]:
    """Every live paper note's lineage facts, and problems met while reading them.

    `stats`, when given, receives `reparsed`: how many notes were not served by the cache,
    and `dropped`: how many cached notes are gone. `scan`: a `scan_papers` made just before."""
    scan = scan or scan_papers(vault, state)
    fresh, problems = refresh_papers(vault, state, scan, write_cache=write_cache)
    if stats is not None:
        stats["reparsed"] = len(fresh) + len(problems)
        stats["dropped"] = len(scan.dropped)
    return all_papers(state, scan, fresh), problems


def all_papers(state: State, scan: PaperScan, fresh: dict[str, PaperInfo]) -> list[PaperInfo]:
    """Every live paper's facts: `fresh` ones (from `refresh_papers`), else the cached ones —
    current, or the last known of a note whose YAML is broken now (an unreadable note must
    not ripple into the method notes until it is fixed)."""
    facts = state.all_paper_facts()
    papers: list[PaperInfo] = []
    for note_id in scan.live:
        info = fresh.get(note_id)
        if info is not None:
            papers.append(info)
        elif note_id in facts:
            papers.append(paper_from_facts(json.loads(facts[note_id])))
    return papers
