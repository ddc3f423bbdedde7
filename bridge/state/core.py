"""`State`: the one connection to `<vault>/.zotero-bridge/state.sqlite`, opened safely,
migrated, claimed for this vault; its rows are reached through the parts it is made of
(`notes`, `papers`, `history`, `marks`)."""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bridge.errors import EXIT_USAGE, BridgeError, NoSpaceError, StateError, is_no_space
from bridge.stamps import iso
from bridge.state.db import (
    DB_NAME,
    DB_SIDE_FILES,
    VAULT_ID_FILE,
    connect_state_db,
    raised_by_a_source,
    same_file,
    state_error,
)
from bridge.state.history import History
from bridge.state.marks import Meta, SyncMarks
from bridge.state.notes import NoteRows
from bridge.state.papers import PaperFacts
from bridge.state.schema import MIGRATIONS
from bridge.statefolder import STATE_DIRNAME, StateFolder


class SharedStateError(StateError):
    """This state folder is also another vault's: each vault needs its own."""

    exit_code = EXIT_USAGE


def _recorded_vault(path: Path, folder: StateFolder, vault_id: str) -> str:
    """What the vault path recorded in the state DB is now, seen from `folder`: "same" (this
    vault under another name), "shared" (it reaches this very state folder), "copy" (its own
    state folder, same vault id) or "moved" (gone, or another vault)."""
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == (folder.vault_stat.st_dev, folder.vault_stat.st_ino):
            return "same"
        if same_file(path / STATE_DIRNAME, folder.stat):
            return "shared"
        with StateFolder(path, create=False) as other:
            theirs = other.read_small(VAULT_ID_FILE)
    except (OSError, BridgeError):
        return "moved"
    return "copy" if theirs == vault_id.encode() else "moved"


class State(NoteRows, PaperFacts, History, Meta):
    """A thin repository over the state database; one connection, explicit transactions.
    All SQL on the state database is in this package.

    Opening it also checks that the state folder is this vault's (`_claim_vault`); `notices`
    then says, for the sync's report, when the vault was found moved or copied."""

    def __init__(self, vault: Path) -> None:
        self.dir = vault / STATE_DIRNAME
        self.path = self.dir / DB_NAME
        self.notices: list[str] = []
        self.marks = SyncMarks(self)  # every `meta` mark, typed
        try:
            with StateFolder(vault) as folder:
                self.db = connect_state_db(folder)
                try:
                    self._open(folder)
                except BaseException:
                    self.db.close()
                    raise
        except sqlite3.DatabaseError as exc:
            raise state_error(self.path, exc) or StateError(
                f"the bridge's state database {self.path} is unreadable ({exc})",
                "run `zob doctor`; do not delete the file: it holds the merge bases",
            ) from exc
        except OSError as exc:
            if is_no_space(exc):
                raise NoSpaceError.from_os_error(exc) from exc
            raise StateError(
                f"cannot create {self.dir}: {exc}", "check that the vault folder is writable"
            ) from exc

    def _open(self, folder: StateFolder) -> None:
        self._loader = self._base_json  # one bound method for every note's lazy base
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # 16 MB of page cache (SQLite's default is 2 MB): a sync's batches insert rows at
        # random places of the indexes, which in a large vault span more than the default
        # cache; a page still cached is not read again
        self.db.execute("PRAGMA cache_size=-16000")
        for suffix in DB_SIDE_FILES:
            folder.check(DB_NAME + suffix)
        self._migrate()
        self._claim_vault(folder)

    def _claim_vault(self, folder: StateFolder) -> None:
        """Record which vault this state belongs to; refuse a state folder another vault uses.

        The database keeps a random vault id and the vault's resolved path; `vault-id` beside
        it repeats the id, so another location can be asked without opening its database.
        Everything else the state knows is vault-relative, so a vault folder that was moved or
        renamed — the common case — keeps working: the recorded path is gone (or holds another
        vault), and the new one is recorded. A recorded path that still reaches *this* state
        folder (a bind mount, a linked folder) means two vaults would share one state: refused.
        A recorded path that still holds its own state folder with the same id means this vault
        is a copy: it takes a new id, and each copy syncs on its own."""
        here = os.path.realpath(folder.vault)
        vault_id, recorded = self.marks.vault_id, self.marks.vault_path
        if vault_id is not None and recorded == here:
            if folder.read_small(VAULT_ID_FILE) != vault_id.encode():
                folder.write_small(VAULT_ID_FILE, vault_id.encode())
            return
        if vault_id is not None and recorded is not None:
            found = _recorded_vault(Path(recorded), folder, vault_id)
            if found == "same":  # another name of this very folder
                return
            if found == "shared":
                raise SharedStateError(
                    f"the state folder {folder.path} is also the state folder of the vault "
                    f"{recorded}: two vaults cannot share one (each one's notes would be "
                    "mistaken for the other's)",
                    f"give this vault its own state folder: remove the link or mount at "
                    f"{folder.path}; {recorded} keeps its state",
                )
            if found == "copy":
                vault_id = None
                self.notices.append(
                    f"this vault looks like a copy of {recorded}, which still exists: it now "
                    "has an identity of its own and the two are synced separately"
                )
            else:
                self.notices.append(
                    f"this vault was at {recorded} before; its state moved with it and now "
                    f"belongs to {here}"
                )
        with self.transaction():
            if vault_id is None or self.marks.vault_id is None:
                vault_id = vault_id or secrets.token_hex(16)
                self.marks.vault_id = vault_id
            self.marks.vault_path = here
        folder.write_small(VAULT_ID_FILE, vault_id.encode())

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        """Close; a failure of this database inside the block becomes a StateError (or a
        NoSpaceError) that says what to do, instead of an internal error."""
        with contextlib.suppress(sqlite3.Error):
            self.close()
        if isinstance(exc, sqlite3.DatabaseError) and not raised_by_a_source(exc):
            translated = state_error(self.path, exc)
            if translated is not None:
                raise translated from exc

    # --- schema --------------------------------------------------------------------------

    def _migrate(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        done = {row[0] for row in self.db.execute("SELECT version FROM migrations")}
        for version, script in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self.transaction():
                for statement in script.split(";\n"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT INTO migrations VALUES (?, ?)", (version, iso()))
                if version == 4:
                    self._derive_paper_meta()

    @property
    def schema_version(self) -> int:
        row = self.db.execute("SELECT max(version) FROM migrations").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            # SQLite may have rolled back already (a full disk, an I/O error): the original
            # error is the one to report, not "no transaction is active"
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
