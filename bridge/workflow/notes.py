"""Writing the workflow's own notes (queue, reports, new method notes) the one safe way.

They are planned with `plan_note` and written with `apply`, exactly like paper and method
notes: atomic writes, the etag check, the three-way merge of their managed regions, and a note
the user deleted is not recreated unless the user asks (`recreate=True`).
"""

from __future__ import annotations

from pathlib import Path

from bridge.actions import Action
from bridge.apply import SyncResult, apply
from bridge.errors import BridgeError
from bridge.plan import PlanContext, plan_note, when_quiet
from bridge.session import state_exists
from bridge.state import State
from bridge.vault import neutralise
from bridge.vault.fs import Vault
from bridge.vault.render import RenderedNote


def write_note(
    desired: RenderedNote,
    path: str,
    state: State,
    vault: Vault,
    ctx: PlanContext,
    result: SyncResult,
    *,
    recreate: bool = False,
) -> Action:
    """Create or merge one note at `path`; the outcome is counted in `result`."""
    note = state.note(desired.note_id)
    gone = note is not None and (note.user_deleted or vault.etag(path) is None)
    if note is not None and (note.path != path or (recreate and gone)):
        note = None  # moved by the config, or deleted and asked for again: a fresh note
    rounds = 4 if ctx.wait_for_saves else 0
    [action] = when_quiet(lambda: [plan_note(desired, note, path, vault, ctx)], rounds)
    apply([action], vault, state, result)
    return action


def inline_text(text: str) -> str:
    """A title fit for one list line: the neutraliser's `inline` (one line, nothing that runs,
    no comment marker, no fake link)."""
    return neutralise.inline(str(text or ""))


def require_synced(vault_root: Path) -> None:
    """Commands that read the bridge's history need a vault a sync has seen."""
    if not state_exists(vault_root):
        raise BridgeError(f"{vault_root} has not been synced yet", "run `zob sync` first")
