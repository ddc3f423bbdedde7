"""The bridge's own memory: `<vault>/.zotero-bridge/state.sqlite`.

Per note it keeps what the bridge last rendered from Zotero (the *base* of the three-way merge),
a hash of that render (to skip unchanged items without reading the file) and a cheap etag of
the file as last written or seen (`mtime_ns;size;inode`, to skip unchanged files without
reading them). Schema changes are numbered migrations recorded in `migrations` and applied in
one transaction each.

All SQL on the state database lives in this package, in layers that import only downward:
- `db`: opening the database without following links, and what its errors mean;
- `schema`: the migrations;
- `notes`: the note rows (`NoteState`, `NoteIndex`), texts seen, conflicts;
- `papers`: the paper facts cache (`paper_meta`);
- `history`: the sync log and the reading workflow's history;
- `marks`: every `meta` key, typed (`SyncMarks`, as `State.marks`);
- `core`: `State`, which is all of the above on one connection.
"""

from bridge.errors import StateError
from bridge.notestate import NoteState, compress_text
from bridge.state.core import SharedStateError, State
from bridge.state.db import (
    DB_NAME,
    DB_SIDE_FILES,
    VAULT_ID_FILE,
    check_state_folder,
    connect_state_db,
    inspect_state_db,
    lock_holders,
    state_error,
)
from bridge.state.marks import SyncMarks, cursor_key
from bridge.state.notes import NoteIndex
from bridge.state.schema import MIGRATIONS
from bridge.statefolder import STATE_DIRNAME, StateFileRefused

__all__ = [
    "DB_NAME",
    "DB_SIDE_FILES",
    "MIGRATIONS",
    "STATE_DIRNAME",
    "VAULT_ID_FILE",
    "NoteIndex",
    "NoteState",
    "SharedStateError",
    "State",
    "StateError",
    "StateFileRefused",
    "SyncMarks",
    "check_state_folder",
    "compress_text",
    "connect_state_db",
    "cursor_key",
    "inspect_state_db",
    "lock_holders",
    "state_error",
]
