"""Keep the index in step with the vault: only notes whose etag moved are read again.

`refresh` walks the vault's notes (every `.md`, as `Vault.markdown_files` lists them), compares
each etag with the one indexed, re-indexes what changed, drops what is gone, then does the
same for the full-text caches of the notes' PDFs. A note modified moments ago is indexed but
its etag is not recorded (`etag_settled`): the next refresh reads it again, so a save that
lands within one mtime tick is never missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bridge.errors import NoteError
from bridge.search import fulltext
from bridge.search.passages import NoteDoc, read_note
from bridge.search.store import Prepared, SearchIndex, prepare
from bridge.vault.fs import Vault, etag_settled

BATCH = 400  # notes per transaction: a killed build keeps what it finished
FULL_TEXT_EVERY = 60.0  # seconds between a sync's looks at every PDF's full-text cache

Tick = Callable[[int], None]


@dataclass
class RefreshStats:
    indexed: int = 0  # notes (re-)read
    dropped: int = 0  # notes gone from the vault
    full_texts: int = 0  # full-text caches (re-)read
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(vars(self))


def refresh(
    index: SearchIndex,
    zotero_dir: Path | None,
    *,
    progress: Callable[[int, str], Tick] | None = None,
    full_text_every: float | None = None,
) -> RefreshStats:
    """Bring `index` in step with its vault and with Zotero's full-text caches.

    `full_text_every`: look at every note's full-text cache only if the last look was this
    many seconds ago or more (a sync passes FULL_TEXT_EVERY); the notes re-read now always
    have theirs looked at. None: always look at every one."""
    started = time.perf_counter()
    stats = RefreshStats()
    vault = Vault(index.vault_root)
    try:
        changed, gone = _scan(index, vault)
        if gone:
            with index.transaction():
                for doc_id, rel in gone:
                    index.drop_note(doc_id, rel)
        stats.dropped = len(gone)
        tick = progress(len(changed), "indexing notes") if progress and changed else None
        touched = set(_index_notes(index, changed, tick))
        stats.indexed = len(changed)
        last = float(index.get_meta("full_text_checked") or 0)
        every = full_text_every is None or time.time() - last >= full_text_every
        work = _full_text_work(index, zotero_dir, None if every else touched)
        tick = progress(len(work), "indexing PDF full text") if progress and work else None
        stats.full_texts = _index_full_texts(index, work, tick)
        if every and zotero_dir is not None:
            with index.transaction():
                index.set_meta("full_text_checked", str(time.time()))
    finally:
        vault.close()
    stats.seconds = time.perf_counter() - started
    return stats


def _scan(index: SearchIndex, vault: Vault) -> tuple[list[tuple[str, str]], list[tuple[int, str]]]:
    """(notes new or changed since indexed, with their etags; ids and paths of notes gone)."""
    rels = list(vault.markdown_files())
    etags = vault.etags(rels)
    known = index.known()
    changed = [
        (rel, etag) for rel, etag in zip(rels, etags, strict=True)
        if etag is not None and (rel not in known or known[rel][1] != etag)
    ]  # fmt: skip
    present = {rel for rel, etag in zip(rels, etags, strict=True) if etag is not None}
    return changed, [(doc_id, rel) for rel, (doc_id, _) in known.items() if rel not in present]


def prepare_notes(
    root: str, batch: list[tuple[str, str]]
) -> list[tuple[NoteDoc, str | None, Prepared]]:
    """Read, cut and prepare a batch of notes, outside any transaction. (Run in a worker
    process one batch ahead, this left the 10,000-note build 1.4 s slower on the shared
    2-core machine, not faster: the cores were busy anyway and the results were pickled.)"""
    vault = Vault(Path(root))
    out = []
    try:
        for rel, etag in batch:
            try:
                text = vault.read(rel)
            except NoteError:
                text = ""  # not text, not a regular file: indexed as its name only
            doc = read_note(rel, text)
            if not doc.added:  # not a paper: `--since` goes by the note's last change
                mtime = int(etag.split(";", 1)[0]) / 1e9
                doc.added = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            ready = prepare(doc.passages)
            doc.passages = []  # carried by `ready` now
            out.append((doc, etag if etag_settled(etag) else None, ready))
    finally:
        vault.close()
    return out


def prepare_full_texts(batch: list) -> list[tuple[int, str, Prepared, str | None]]:
    """Read and prepare a batch of full-text caches: (doc id, attachment key, passages,
    etag to record)."""
    out = []
    for doc_id, key, cache in batch:
        text = fulltext.read_cache(cache) if cache else None
        ready = prepare(fulltext.page_passages(text) if text else [])
        etag = cache.etag if cache and text is not None else None
        out.append((doc_id, key, ready, etag if etag and etag_settled(etag) else None))
    return out


def _index_notes(index: SearchIndex, changed: list, tick: Tick | None) -> list[int]:
    touched: list[int] = []
    for start in range(0, len(changed), BATCH):
        prepared = prepare_notes(str(index.vault_root), changed[start : start + BATCH])
        with index.transaction():
            touched += [index.put_note(doc, etag, ready) for doc, etag, ready in prepared]
        if tick:
            tick(len(prepared))
    return touched


def _full_text_work(index: SearchIndex, zotero_dir: Path | None, only: set[int] | None) -> list:
    """(doc id, attachment key, cache file or None) of each note (of `only`, if given)
    whose PDF's text changed or went away."""
    if zotero_dir is None or only == set():
        return []
    work = []
    rows = index.full_texts(only)
    caches = fulltext.cache_files(zotero_dir, [key for _, key, _ in rows])
    for doc_id, key, indexed in rows:
        cache = caches.get(key)
        etag = cache.etag if cache else None
        if etag != indexed:
            work.append((doc_id, key, cache))
    return work


def _index_full_texts(index: SearchIndex, work: list, tick: Tick | None) -> int:
    size = BATCH // 4
    for start in range(0, len(work), size):
        prepared = prepare_full_texts(work[start : start + size])
        with index.transaction():
            for doc_id, key, ready, etag in prepared:
                index.put_full_text(doc_id, ready, etag, key)
        if tick:
            tick(len(prepared))
    return len(work)
