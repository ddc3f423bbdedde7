"""What the method notes themselves say, for the method graph: the `extends:` the user
declared there (as `zob new --method X --extends Y` writes it), their `aliases`, and where
each note is now.

A method note carries a stable id, `method_id: soft-nms`, so a note the user moved to another
folder or renamed is found again and updated in place rather than counted as deleted. The
`extends` the bridge itself wrote (from papers) are told apart from the user's by the merge
base: the bridge remembers which parents came from papers (`paper_parents`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from bridge.errors import NoteError
from bridge.lineage import MethodNoteInfo, method_names
from bridge.stamps import digest, text_hash
from bridge.state import NoteState, State
from bridge.vault.fs import Vault, etag_settled
from bridge.vault.inflight import frontmatter_complete, settles_at, settling
from bridge.vault.neutralise import ZWSP
from bridge.vault.notefile import parse_note


@dataclass
class MethodNotes:
    """Every method note's facts, and the notes found at a new path (note id → path).
    The facts are cached by etag (state meta `method_note_facts`): a sync reads only the
    method notes that changed."""

    infos: list[MethodNoteInfo]
    moved: dict[str, str]
    problems: list[str]
    untracked: list[str] = field(default_factory=list)  # notes made by hand, not yet filled
    saving: dict[str, float] = field(default_factory=dict)  # path → when it settles

    def digest(self, config_aliases: Iterable[str] = ()) -> str:
        """What the user said in the method notes: declared edges, their own aliases, moved
        and new notes. Not what the bridge writes there (the aliases from the config), so a
        sync that only wrote method notes finds the same digest at the next one."""
        ours = {a.casefold() for a in config_aliases}
        rows = sorted(
            (i.note_id, i.declared, own)
            for i in self.infos
            if (own := tuple(a for a in i.aliases if a.casefold() not in ours)) or i.declared
        )
        # a note being saved counts: its sync waits for it (`lineage_stage._defer_saving`)
        said = [rows, sorted(self.moved.items()), sorted(self.untracked), sorted(self.saving)]
        return digest(json.dumps(said, ensure_ascii=False).encode())


def read_method_notes(
    vault: Vault, state: State, methods_folder: str, settle_ns: int = 0
) -> MethodNotes:
    """The method notes the bridge knows (found again when moved) and the notes in the
    methods folder it does not know yet (made by hand from the core template).

    `settle_ns` (a sync): a note saved less than this ago is being written, not yet what the
    user means: its last known facts stand (none for a new one) and it goes into `saving`."""
    known = {
        note_id: note for note_id, note in state.notes("method").items() if not note.user_deleted
    }
    cached = _cached(state)
    folder = _folder_notes(vault, methods_folder)
    infos: dict[str, MethodNoteInfo] = {}
    moved: dict[str, str] = {}
    problems: list[str] = []
    reading = _Reading(cached, problems, settle_ns)
    everywhere: list[str] = []  # the vault's notes, listed once if a note is missing
    for note_id, note in sorted(known.items()):
        path = note.path
        if vault.etag(path) is None:
            everywhere = everywhere or list(vault.markdown_files())
            found = _find_moved(vault, note_id, note.path, folder, everywhere)
            if found is None:
                continue  # deleted by the user: `plan_note` records it
            path = moved[note_id] = found
        info = _read_one(vault, note_id, path, note, reading)
        if info is not None:
            infos[note_id] = info
    taken = {i.path for i in infos.values()}
    untracked: list[str] = []
    for path in folder:
        if path in taken or path in {n.path for n in known.values()}:
            continue
        info = _read_one(vault, None, path, None, reading)
        if info is None:
            continue
        owner = infos.get(info.note_id) or known.get(info.note_id)
        if owner is None:
            infos[info.note_id] = info
            untracked.append(path)
        elif _method_id(vault, path) == info.key:  # a copy: said, never silently left out
            problems.append(
                f"{path}: its method_id {info.key!r} is also {owner.path}'s (a copy?), so it is"
                " left out of the lineage; give it a method_id of its own"
            )
    ordered = sorted(infos.values(), key=lambda i: i.note_id)
    return MethodNotes(ordered, moved, problems, untracked, reading.saving)


def remember_method_notes(state: State, notes: MethodNotes) -> None:
    """Record where moved notes are now, and the facts read (used while a note is being
    saved or has broken YAML)."""
    for note_id, path in notes.moved.items():
        state.move_note(note_id, path)
    remember_facts(state, notes)


def remember_facts(state: State, notes: MethodNotes) -> None:
    """Cache the facts read, by each note's etag."""
    facts = {i.note_id: [i.path, list(i.declared), list(i.aliases), i.etag] for i in notes.infos}
    state.marks.method_facts = facts


def _folder_notes(vault: Vault, folder: str) -> list[str]:
    """The notes in the methods folder and its subfolders (not the whole vault)."""
    folder = folder.strip("/")
    try:
        root = vault.abs(f"{folder}/x.md").parent
    except NoteError:
        return []
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        head = os.path.relpath(dirpath, root).replace(os.sep, "/")
        prefix = folder if head == "." else f"{folder}/{head}"
        found += [f"{prefix}/{n}" for n in sorted(filenames) if n.endswith(".md")]
    return found


class _Saving(Exception):
    """A note being saved (empty, its frontmatter cut short, or saved moments ago)."""


@dataclass
class _Reading:
    cached: dict[str, list]
    problems: list[str]
    settle_ns: int
    saving: dict[str, float] = field(default_factory=dict)


def _cached(state: State) -> dict[str, list]:
    return state.marks.method_facts


def _find_moved(
    vault: Vault, note_id: str, old: str, folder: list[str], files: list[str]
) -> str | None:
    """The note carrying `method_id` of `note_id`: first where a move or a rename most
    likely took it (the same name anywhere, the methods folder), then anywhere."""
    stem = PurePosixPath(old).name.casefold()
    likely = [p for p in files if PurePosixPath(p).name.casefold() == stem] + folder
    rest = [p for p in files if p not in set(likely)]
    key = note_id.removeprefix("method:")
    for path in [*likely, *rest]:
        if _method_id(vault, path) == key:
            return path
    # a note from before `method_id`: the method note of the same file name
    same_name = [p for p in files if PurePosixPath(p).name.casefold() == stem]
    return next((p for p in same_name if _method_id(vault, p, unmarked=True) == ""), None)


def _method_id(vault: Vault, path: str, *, unmarked: bool = False) -> str | None:
    """The note's `method_id`; `unmarked`: "" for a method note without one."""
    try:
        text = vault.read(path)
    except NoteError:
        return None
    if "method_id:" not in text[:4096] and not unmarked:
        return None
    try:
        props = parse_note(path, text).properties
    except NoteError:
        return None
    value = props.get("method_id")
    if value is None and unmarked and props.get("type") == "method":
        return ""
    return _id_text(value) if isinstance(value, str | int) else None


def _id_text(value: object) -> str:
    """A `method_id` as written, without the neutraliser's zero-width spaces."""
    return " ".join(str(value).replace(ZWSP, "").split()).casefold()


def _read_one(
    vault: Vault,
    note_id: str | None,
    path: str,
    note: NoteState | None,
    reading: _Reading,
) -> MethodNoteInfo | None:
    """One method note's facts; its last known ones while it is being saved or broken."""
    last = reading.cached.get(note_id or "")
    etag = vault.etag_or_none(path)
    if (
        note_id and isinstance(last, list) and len(last) == 4 and last[0] == path
        and etag is not None and last[3] == etag and etag_settled(etag)
    ):  # fmt: skip
        return MethodNoteInfo(note_id, path, tuple(last[1]), tuple(last[2]), etag)
    try:
        text = vault.read(path)
        ours = note is not None and note.content_hash == text_hash(text)  # as the bridge left it
        if etag and reading.settle_ns and not ours and settling(etag, reading.settle_ns, path):
            reading.saving[path] = settles_at(etag, reading.settle_ns)
            raise _Saving
        if not text.strip() or not frontmatter_complete(text):
            raise _Saving
        props = parse_note(path, text).properties
    except (NoteError, _Saving) as exc:
        if isinstance(exc, NoteError) and note is not None:
            reading.problems.append(exc.message)
        if note_id and isinstance(last, list) and len(last) == 4:
            return MethodNoteInfo(note_id, path, tuple(last[1]), tuple(last[2]))
        return None
    if note_id is None:
        if props.get("type") != "method" and "method_id" not in props:
            return None  # some other note in the methods folder
        own = props.get("method_id")
        name = own if isinstance(own, str) and own.strip() else PurePosixPath(path).stem
        note_id = f"method:{_id_text(name)}"
    from_papers = {s.casefold() for s in (note.base.get("paper_parents", []) if note else [])}
    declared = [n for n in method_names(props.get("extends")) if n.casefold() not in from_papers]
    aliases = [str(a) for a in _list(props.get("aliases")) if str(a).strip()]
    return MethodNoteInfo(note_id, path, tuple(declared), tuple(aliases), etag)


def _list(value: object) -> list:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str | int | float) and not isinstance(v, bool)]
    return [value] if isinstance(value, str) else []
