"""The planner reads a note once (the fast-path check and the merge share one read): a save
landing around that read, on real files, is never merged under an etag that did not vouch for
its bytes.

The driver (`bridge.plan._look`) takes the note's etag before the read (the `Sighting`) and
again just after it (`etag_after`); the action's compare-and-swap is the etag from before the
read and the hash of the bytes read. Each test lands an editor's in-place save (truncate, then
write) in one window around `Vault.read` and then carries the action out with
`Vault.replace`, as `bridge.apply` does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.actions import ActionKind
from bridge.errors import NoteChangedError
from bridge.notestate import NoteState
from bridge.plan import PlanContext, plan_note
from bridge.stamps import text_hash
from bridge.vault.etag import etag_of
from bridge.vault.fs import Vault
from bridge.vault.merge import new_note_text
from bridge.vault.notefile import wrap_region
from bridge.vault.rendered import RenderedNote

KEY = "ABCD2345"
PATH = "Papers/A paper.md"
SAVED = "A line saved while the bridge read the note.\n"


def _desired(title: str) -> RenderedNote:
    body = f"# {title}\n\n{wrap_region('abstract', 'An abstract.')}\n\n## My notes\n\nMine.\n"
    return RenderedNote(
        note_id=KEY, kind="paper", properties={"title": title, "zotero_key": KEY},
        regions={"abstract": "An abstract."}, body=body,
    )  # fmt: skip


def _save(path: Path, text: str, *, same_tick: bool) -> None:
    """An editor's save in place; `same_tick`: the file system's coarse clock gives it the
    mtime the file had (same size too: the etag does not move)."""
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.truncate(0)
        handle.write(text.encode())
    if same_tick:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _scene(tmp_path: Path, age_s: float) -> tuple[Vault, Path, NoteState, str]:
    left = new_note_text(_desired("A paper"))
    root = tmp_path / "vault"
    (root / "Papers").mkdir(parents=True)
    path = root / PATH
    path.write_text(left)
    when = time.time_ns() - int(age_s * 1e9)
    os.utime(path, ns=(when, when))
    desired = _desired("A paper")
    note = NoteState(
        KEY, "paper", PATH, desired.core_json, desired.render_hash, etag_of(os.stat(path)),
        content_hash=text_hash(left),
    )  # fmt: skip
    return Vault(root), path, note, left


def _hook(vault: Vault, when: str, save: Callable[[], None]) -> list[str]:
    reads: list[str] = []
    real = vault.read

    def read(rel: str) -> str:
        reads.append(rel)
        if when == "before":
            save()
        text = real(rel)
        if when == "after":
            save()
        return text

    vault.read = read  # type: ignore[method-assign]
    return reads


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("age_s", [0.5, 60.0])
def test_a_save_around_the_one_read_is_kept(tmp_path: Path, when: str, age_s: float) -> None:
    vault, path, note, left = _scene(tmp_path, age_s)
    reads = _hook(vault, when, lambda: _save(path, left + SAVED, same_tick=False))
    ctx = PlanContext("Papers", None, settle_ns=0)  # type: ignore[arg-type]
    action = plan_note(_desired("A new title"), note, PATH, vault, ctx)
    assert reads == [PATH]  # one read
    if when == "before":  # new bytes, read under the old etag: the stat after the read tells
        assert action.kind == ActionKind.DEFER and "changed while it was read" in action.reason
    else:  # the bridge's own text was read: merged, and the compare-and-swap refuses it
        assert action.kind == ActionKind.UPDATE and action.expected_hash == note.content_hash
        with pytest.raises(NoteChangedError):
            vault.replace(PATH, action.text or "", action.expected_etag, action.expected_hash)
    assert SAVED in path.read_text()


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_same_tick_save_around_the_read_is_merged_or_refused_never_lost(
    tmp_path: Path, when: str
) -> None:
    """The etag cannot see a same-size save in the same mtime tick, and with no settle
    window nothing defers it: the hash of the bytes read is what keeps the save. Read after
    the save, they are merged; read before it, `replace` refuses the old bytes' merge."""
    vault, path, note, left = _scene(tmp_path, 60.0)
    edited = left.replace("Mine.", "MINE!")
    reads = _hook(vault, when, lambda: _save(path, edited, same_tick=True))
    ctx = PlanContext("Papers", None, settle_ns=0)  # type: ignore[arg-type]
    action = plan_note(_desired("A new title"), note, PATH, vault, ctx)
    assert reads == [PATH] and action.kind == ActionKind.UPDATE, action
    assert action.expected_etag == etag_of(os.stat(path))  # the etag could not tell
    if when == "before":
        vault.replace(PATH, action.text or "", action.expected_etag, action.expected_hash)
    else:
        with pytest.raises(NoteChangedError):
            vault.replace(PATH, action.text or "", action.expected_etag, action.expected_hash)
    final = path.read_text()
    assert "MINE!" in final and "Mine." not in final
