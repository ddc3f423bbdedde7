"""What method notes need from the paper notes, read from their properties.

The paper notes' `proposes` / `extends` properties are the merged truth: Zotero's edges (the
bridge wrote them) plus whatever the user added or removed in Obsidian. Reading them back is
cached per note by etag, so a sync re-parses only the notes that changed.
"""

from __future__ import annotations

import dataclasses

from bridge.errors import NoteError
from bridge.lineage import PaperInfo
from bridge.state import State, text_hash
from bridge.vault.fs import Vault, etag_settled
from bridge.vault.notefile import parse_note


def _from_cache(info: dict) -> PaperInfo:
    return PaperInfo(
        **{**info, "proposes": tuple(info["proposes"]), "extends": tuple(info["extends"])}
    )


def _read(vault: Vault, path: str) -> str | None:
    try:
        return vault.read(path)
    except NoteError:
        return None


def collect_papers(
    vault: Vault, state: State, *, write_cache: bool = True, stats: dict[str, int] | None = None
) -> tuple[list[PaperInfo], list[str]]:
    """Every live paper note's lineage facts, and problems met while reading them.

    `stats`, when given, receives `reparsed`: how many notes were not served by the cache."""
    cache = state.paper_meta()
    papers: list[PaperInfo] = []
    problems: list[str] = []
    fresh: list[tuple[str, str, str | None, dict]] = []
    live: set[str] = set()
    for note in state.notes().values():
        if note.kind != "paper" or note.user_deleted:
            continue
        etag = vault.etag(note.path)
        if etag is None:
            continue
        live.add(note.note_id)
        cached = last_known = cache.get(note.note_id)
        text = None
        if cached and cached[0] == note.path and cached[1] == etag and not etag_settled(etag):
            # a same-size edit within one mtime tick keeps the etag: trust it only by content
            text = _read(vault, note.path)
            if text is None or text_hash(text) != note.content_hash:
                cached = None
        if cached and cached[0] == note.path and cached[1] == etag:
            papers.append(_from_cache(cached[2]))
            continue
        try:
            parsed = parse_note(note.path, text if text is not None else vault.read(note.path))
        except NoteError as exc:
            problems.append(exc.message)
            if last_known is not None:
                # an unreadable note (broken YAML) must not ripple into the method notes:
                # keep what it last said until the user fixes it
                papers.append(_from_cache(last_known[2]))
            continue
        info = PaperInfo.from_properties(note.note_id, note.path, parsed.properties)
        papers.append(info)
        fresh.append((note.note_id, note.path, etag, dataclasses.asdict(info)))
    if stats is not None:
        stats["reparsed"] = len(fresh) + len(problems)
        stats["dropped"] = sum(1 for k in cache if k not in live)
    if write_cache:
        with state.transaction():
            state.put_paper_meta(fresh)
            state.drop_paper_meta([k for k in cache if k not in live])
    return papers, problems
