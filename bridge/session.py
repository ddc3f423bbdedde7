"""What a command that writes the vault or the state DB opens, in one place, under the lock.

`zob sync`, the daemon, `zob new`, `zob queue` and `zob report` all write notes and the state
DB; two of them at once would interleave writes (the same note planned twice, a state row
written from a stale scan). Each opens the vault through `writing`, which takes the vault's
sync lock (`bridge.locks.sync_lock`) before the state DB is opened and holds it until the
command's last write: the commands take turns, and a command that cannot get the lock in
`timeout` seconds exits 6 (`SyncBusyError`) having written nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from bridge.config import Config, require_vault
from bridge.locks import sync_lock
from bridge.state import State
from bridge.statefolder import STATE_DIRNAME
from bridge.vault.fs import Vault

LOCK_TIMEOUT = 120.0  # seconds a command waits for another one (a long first sync) to finish


class Writing(NamedTuple):
    """The vault a command may write, opened under the sync lock."""

    vault_root: Path
    state: State
    vault: Vault


@contextmanager
def writing(config: Config, *, timeout: float = LOCK_TIMEOUT) -> Iterator[Writing]:
    """Take the vault's sync lock, then open its state DB and the vault; release in order."""
    vault_root = require_vault(config)
    with sync_lock(vault_root / STATE_DIRNAME, timeout), State(vault_root) as state:
        yield Writing(vault_root, state, Vault(vault_root))
