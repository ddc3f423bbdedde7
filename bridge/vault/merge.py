"""Three-way merge of one note: never lose a user's words.

For every bridge-owned property and every managed region, with *base* = what the bridge last
rendered from Zotero, *user* = what the note holds now, *theirs* = what Zotero says now:
- user unchanged since the last write → take Zotero's value;
- user changed it, Zotero did not → keep the user's;
- both changed → lists merge as sets (Zotero's additions and removals applied, the user's
  kept); scalars and regions: Zotero's goes in and the user's version is preserved in the note
  in a `> [!warning] zotero-bridge conflict` callout.
Everything outside the managed regions is never rewritten.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bridge.vault.header import HEADER, adopt_legacy
from bridge.vault.notefile import (
    Note,
    find_regions,
    insert_after_region,
    parse_note,
    region_texts,
    replace_regions,
    wrap_region,
)
from bridge.vault.rendered import LIST_KEYS, RenderedNote

DELETED_STATUS = "deleted-in-zotero"
CALLOUT_HEAD = "> [!warning] zotero-bridge conflict:"
_CALLOUT = re.compile(r"^> \[!warning\] zotero-bridge conflict: `?([\w:-]+)`?", re.MULTILINE)


@dataclass
class MergeResult:
    text: str
    conflicts: list[str] = field(default_factory=list)
    open_conflicts: set[str] = field(default_factory=set)
    prev_status: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)  # the note's properties now
    # regions the bridge rendered from the merged note rather than from Zotero alone (the
    # header): the merge base to remember for them instead of `desired.regions`
    base_regions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusChange:
    """The one user-owned key the bridge may set: `status: deleted-in-zotero` and back."""

    mark_deleted: bool = False
    restore_to: str | None = None
    # The paper got its first highlights: `to-read` at pass 0 (as the bridge created it)
    # becomes `reading`. Done once per note, so a user who sets it back is never overridden.
    hint_reading: bool = False


def new_note_text(desired: RenderedNote) -> str:
    """The full text of a note created now."""
    properties = {**desired.properties, **desired.initial_properties}
    note = Note(
        path="", bom="", frontmatter_text=None, properties={}, body=desired.body, newline="\n"
    )
    return note.render(properties)


def merge_note(
    path: str,
    text: str,
    desired: RenderedNote | None,
    base: dict[str, Any] | None,
    status: StatusChange = StatusChange(),
) -> MergeResult:
    """Merge Zotero's `desired` render into the note's `text`. Raises NoteError when unusable.

    `desired` None means: only apply `status` (the item is gone from Zotero).
    `base` None means: the bridge has no memory of this note (state lost) — then any
    difference counts as "both changed", which never drops the user's version.
    """
    note = parse_note(path, text)
    user_regions = region_texts(path, note.body)
    properties = dict(note.properties)
    conflicts: list[tuple[str, Any]] = []
    if desired is not None:
        base_props = base.get("properties", {}) if base is not None else None
        for key in desired.owned_keys:
            _merge_property(properties, key, base_props, desired.properties.get(key), conflicts)
    prev_status = _apply_status(properties, status)
    body = note.body
    region_conflicts: list[tuple[str, str]] = []
    derived: dict[str, str] = {}
    if desired is not None:
        base_regions = base.get("regions", {}) if base is not None else None
        derived, body = _header(note, user_regions, properties, desired, base)
        new_regions: dict[str, str] = {}
        for name, theirs in {**desired.regions, **derived}.items():
            if name not in user_regions:
                continue  # the user removed the region (markers and all): respect that
            merged, conflict = _merge_region(user_regions[name], theirs, base_regions, name)
            if merged != user_regions[name]:
                new_regions[name] = merged
            if conflict is not None:
                region_conflicts.append((name, conflict))
        if new_regions:
            body = replace_regions(path, body, new_regions, note.newline)
        body = add_new_regions(path, body, desired, user_regions, base_regions, note.newline)
        for name, users in region_conflicts:
            body = insert_after_region(path, body, name, region_callout(name, users), note.newline)
    if conflicts:
        callouts = "\n".join(property_callout(k, v) for k, v in conflicts)
        body = callouts.replace("\n", note.newline) + note.newline + body
    fm_changed = properties != note.properties or list(properties) != list(note.properties)
    note.body = body
    new_text = note.render_changed(properties) if fm_changed else note.render()
    names = [k for k, _ in conflicts] + [n for n, _ in region_conflicts]
    derived = {k: v for k, v in derived.items() if desired and desired.regions.get(k) != v}
    return MergeResult(new_text, names, open_callouts(new_text), prev_status, properties, derived)


def _header(
    note: Note,
    user_regions: dict[str, str],
    properties: dict[str, Any],
    desired: RenderedNote,
    base: dict[str, Any] | None,
) -> tuple[dict[str, str], str]:
    """The header region rendered from the merged `properties` (so it shows the user's
    `venue:` over Zotero's), and the body — with an old plain header turned into the region
    when it is exactly what the bridge wrote (`header.adopt_legacy`). A body whose header the
    user edited, or whose region markers the user removed, keeps its header as it is."""
    if desired.header is None:
        return {}, note.body
    theirs = desired.header.render(properties)
    if HEADER in user_regions:
        kept = _kept_header(user_regions[HEADER], desired, base)
        return {HEADER: theirs if kept is None else kept}, note.body
    base_regions = base.get("regions", {}) if base is not None else {}
    if HEADER in base_regions:
        return {}, note.body  # the bridge wrote a header region and the user removed it
    candidates = [note.properties, desired.properties]
    if base is not None:
        candidates.insert(0, base.get("properties", {}))
    adopted = adopt_legacy(note.body, note.newline, candidates, theirs)
    if adopted is None:
        return {}, note.body
    user_regions[HEADER] = theirs
    return {HEADER: theirs}, adopted


def _kept_header(user: str, desired: RenderedNote, base: dict[str, Any] | None) -> str | None:
    """The header last written, when the user edited the header region by hand and Zotero
    changed nothing it shows: merged against, the user's header stays and no conflict is
    claimed for a change only the user's own property edits (or a template) made. None: the
    header rendered from the merged properties is Zotero's side as usual."""
    last = base.get("regions", {}).get(HEADER) if base is not None else None
    if last is None or desired.header is None or user == last.strip("\n"):
        return None
    before = desired.header.render(base.get("properties", {})) if base is not None else None
    return last if before == desired.regions.get(HEADER) else None


def add_new_regions(
    path: str,
    body: str,
    desired: RenderedNote,
    user_regions: dict[str, str],
    base_regions: dict[str, str] | None,
    newline: str,
) -> str:
    """Add the blocks of `desired.additions` (a region with its heading) whose region the
    note does not have and the bridge never wrote with content: a note made before the
    region existed (or whose template left it out while it was empty) gains it — after the
    highlights when the note has them, else at the end. One the user removed after it held
    something stays removed; with no base (state lost) nothing is added."""
    for name, block in desired.additions.items():
        if name in user_regions or base_regions is None or base_regions.get(name):
            continue
        text = block.strip("\n").replace("\n", newline)
        regions = find_regions(path, body)
        if "annotations" in regions:
            end = body.find("\n", regions["annotations"].end)
            at = len(body) if end == -1 else end + 1
            lead = "" if body[:at].endswith(("\n", "\r")) else newline
            body = body[:at] + lead + newline + text + newline + body[at:]
        else:
            if not body.endswith(("\n", "\r")):
                body += newline
            body += newline + text + newline
    return body


def _merge_property(
    properties: dict[str, Any],
    key: str,
    base_props: dict[str, Any] | None,
    theirs: Any,
    conflicts: list[tuple[str, Any]],
) -> None:
    user = properties.get(key)
    base = base_props.get(key) if base_props is not None else user if user is None else _NO_BASE
    if _same(user, theirs):
        result = user
    elif base is not _NO_BASE and _same(user, base):
        result = theirs
    elif base is not _NO_BASE and _same(theirs, base):
        result = user
    elif key in LIST_KEYS:
        result = merge_lists(
            _as_list(user), _as_list(theirs), _as_list(base) if base is not _NO_BASE else []
        )
    else:
        result = theirs
        if user not in (None, ""):
            conflicts.append((key, user))
    _set(properties, key, result)


_NO_BASE = object()


def _same(a: Any, b: Any) -> bool:
    if a in (None, "", []) and b in (None, "", []):
        return True
    return a == b


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def merge_lists(user: list[Any], theirs: list[Any], base: list[Any]) -> list[Any]:
    """User's list, plus what Zotero added, minus what Zotero removed since the base."""
    added = [x for x in theirs if x not in base and x not in user]
    removed = [x for x in base if x not in theirs]
    return [x for x in user if x not in removed] + added


def _set(properties: dict[str, Any], key: str, value: Any) -> None:
    if value in (None, "", []):
        properties.pop(key, None)
    else:
        properties[key] = value


def _apply_status(properties: dict[str, Any], status: StatusChange) -> str | None:
    """Set or undo `status: deleted-in-zotero`; returns the replaced value as JSON text.

    JSON keeps any value the user had (a list, a number, or no status at all: `null`) so a
    restore in Zotero gives back exactly what was there."""
    current = properties.get("status")
    if status.mark_deleted and current != DELETED_STATUS:
        properties["status"] = DELETED_STATUS
        return json.dumps(current, ensure_ascii=False, default=str)
    if status.restore_to is not None and current == DELETED_STATUS:
        try:
            previous = json.loads(status.restore_to)
        except ValueError:
            previous = status.restore_to  # a plain string from an older state DB
        if previous is None:
            properties.pop("status", None)
        else:
            properties["status"] = previous
    if status.hint_reading and current == "to-read" and properties.get("pass") in (0, "0", None):
        properties["status"] = "reading"
    return None


def _merge_region(
    user: str, theirs: str, base_regions: dict[str, str] | None, name: str
) -> tuple[str, str | None]:
    theirs = theirs.strip("\n")
    if user == theirs:
        return user, None
    if base_regions is not None and name in base_regions:
        base = base_regions[name].strip("\n")
        if user == base:
            return theirs, None
        if theirs == base:
            return user, None
    if not user.strip():
        return theirs, None
    return theirs, user


def property_callout(key: str, users: Any) -> str:
    shown = users if not isinstance(users, list) else ", ".join(map(str, users))
    lines = str(shown).splitlines() or [""]
    quoted = "\n".join(f"> {line}" for line in lines)
    return (
        f"{CALLOUT_HEAD} `{key}`\n"
        f"> Zotero changed the property `{key}` and so did you. Zotero's value is in the"
        f" property now; yours was:\n>\n{quoted}\n"
    )


def region_callout(name: str, users: str) -> str:
    quoted = "\n".join(f"> {line}" if line else ">" for line in users.splitlines())
    return (
        f"{CALLOUT_HEAD} `{name}`\n"
        f"> Zotero updated the {name} section above and you had edited it. Your version"
        f" (delete this callout once you have taken what you need):\n>\n{quoted}\n"
    )


def open_callouts(text: str) -> set[str]:
    """Conflict names whose callout is still in the note (the user resolves by deleting it)."""
    return set(_CALLOUT.findall(text))


__all__ = [
    "DELETED_STATUS", "MergeResult", "StatusChange", "merge_note", "new_note_text",
    "merge_lists", "open_callouts", "wrap_region",
]  # fmt: skip
