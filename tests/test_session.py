"""The session a command opens (`bridge.session`) and the typed marks of the state DB
(`bridge.state.marks`): what every command and every sync stage goes through."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.locks import SyncBusyError
from bridge.session import Planning, reading, state_exists, writing
from bridge.state import STATE_DIRNAME, State, cursor_key
from bridge.sync import SyncOptions, sync


def _config(tmp_path: Path) -> Config:
    vault = tmp_path / "vault"
    vault.mkdir()
    return Config().with_overrides(vault=vault, source="sample")


def test_reading_opens_while_a_command_writes(tmp_path: Path) -> None:
    """Status, the queries and the daemon's bookkeeping do not wait for a sync; a second
    writer does."""
    config = _config(tmp_path)
    sync(config)
    with writing(config) as writer:
        assert writer.locked
        with reading(config) as reader:
            assert not reader.locked
            assert reader.state.count_notes("paper") == writer.state.count_notes("paper") > 0
        with pytest.raises(SyncBusyError), writing(config, timeout=0.2):
            pytest.fail("the sync lock is held")


def test_a_session_plans_as_its_planning_says(tmp_path: Path) -> None:
    """One plan context per session, built from its `Planning`, on the session's renderer."""
    config = _config(tmp_path)
    with writing(config) as session:
        ctx = session.plan_context
        assert ctx is session.plan_context and ctx.renderer is session.renderer
        assert ctx.wait_for_saves and not ctx.force  # a command writing a note waits
        assert ctx.settle_ns == int(config.settle_seconds * 1e9)
    planning = Planning(force=True, wait_for_saves=False)
    with writing(config, planning=planning) as session:
        assert session.plan_context.force and not session.plan_context.wait_for_saves


def test_state_exists_only_once_something_opened_it(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.vault is not None
    assert not state_exists(config.vault)
    with reading(config) as session:  # reading creates it: callers that must not, ask first
        assert session.vault_root == config.vault
    assert state_exists(config.vault)


def test_marks_keep_the_keys_and_values_existing_vaults_have(tmp_path: Path) -> None:
    """A vault synced before the marks were typed keeps its cursor, held cursor and flags."""
    config = _config(tmp_path)
    sync(config)
    with State(config.vault) as state:  # type: ignore[arg-type]
        marks = state.marks
        key = cursor_key("sample", "sample")
        assert key == "cursor:sample:sample" and marks.cursor(key) == state.get_meta(key)
        assert marks.cursor(key) is not None  # the sample source's cursor, as a sync left it
        assert not marks.pending and state.get_meta("sync_pending") is None
        with state.transaction():
            marks.pending = True
            marks.set_held(key, '{"cursor": null, "paths": {}, "again": true}')
        assert state.get_meta("sync_pending") == "1"
        assert state.get_meta("held:" + key) == '{"cursor": null, "paths": {}, "again": true}'
        assert marks.render_fingerprint == state.get_meta("render_fingerprint")
        assert marks.last_cursor_key == key


def test_unreadable_marks_read_as_their_safe_value(tmp_path: Path) -> None:
    """A mark damaged by hand (or an older build) costs a sweep or a rebuild, never a crash."""
    config = _config(tmp_path)
    with State(config.vault) as state:  # type: ignore[arg-type]
        with state.transaction():
            state.set_meta("temps_swept", "yesterday")
            state.set_meta("daemon", "{not json")
        assert state.marks.temps_swept == 0.0  # swept at the next sync
        assert state.marks.daemon is None
        assert state.marks.lineage_problems == [] and state.marks.last_warnings == []
        with state.transaction():
            state.marks.daemon = {"pid": 7, "mode": "file events"}
            state.marks.lineage_problems = ["a cycle: A → B → A"]
        assert state.marks.daemon == {"pid": 7, "mode": "file events"}
        assert state.marks.lineage_problems == ["a cycle: A → B → A"]


def test_a_dry_run_writes_no_mark(tmp_path: Path) -> None:
    """The dry run's stages plan only: no cursor, no pending flag, no sync recorded."""
    config = _config(tmp_path)
    result = sync(config, SyncOptions(dry_run=True))
    assert result.created > 0
    db = sqlite3.connect(config.vault / STATE_DIRNAME / "state.sqlite")  # type: ignore[operator]
    try:
        keys = {row[0] for row in db.execute("SELECT key FROM meta")}
        assert keys == {"vault_id", "vault_path"}  # the vault's claim alone
        assert db.execute("SELECT count(*) FROM syncs").fetchone()[0] == 0
    finally:
        db.close()


def test_peek_meta_sees_marks_a_writer_still_holds_in_its_wal(tmp_path: Path) -> None:
    """A command reads the remembered source without the lock: while a sync (or the daemon)
    keeps the state DB open, committed marks may live only in the -wal, and an `immutable`
    open would miss them. peek_meta sees them and creates no file."""
    from bridge.state import State
    from bridge.state.db import peek_meta
    from bridge.state.marks import SOURCE_SETTINGS

    with State(tmp_path) as state:
        with state.transaction():
            state.marks.source_settings = '{"source": "sample"}'
        folder = tmp_path / ".zotero-bridge"
        before = sorted(p.name for p in folder.iterdir())
        assert peek_meta(tmp_path, (SOURCE_SETTINGS,)) == {SOURCE_SETTINGS: '{"source": "sample"}'}
        assert sorted(p.name for p in folder.iterdir()) == before
    assert peek_meta(tmp_path, (SOURCE_SETTINGS,)) == {SOURCE_SETTINGS: '{"source": "sample"}'}
