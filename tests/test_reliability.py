"""Attacks: crashes, hostile libraries, hostile notes, hostile sources and config.

Each test names one row of docs/RELIABILITY.md. The invariants: no user-written line is lost,
nothing outside the vault (and the bridge's own dirs) changes, every error says what to do.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.apply import SyncResult, apply
from bridge.cli import main
from bridge.config import Config
from bridge.errors import ConfigError
from bridge.plan import PlanContext, plan
from bridge.sources.sqlite import SqliteSource
from bridge.state import State
from bridge.sync import make_renderer, sync, template_cache_dir
from bridge.vault.fs import Vault
from bridge.vault.links import LinkIndex
from bridge.vault.notefile import parse_note
from tests.helpers import ModelSource, make_item, snapshot_tree
from tests.zotero_db import ZoteroDB


def zob(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def library(tmp_path: Path, n: int = 0) -> tuple[ZoteroDB, Path, Path, list[str]]:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    vault = tmp_path / "vault"
    vault.mkdir()
    db = ZoteroDB.create(data_dir / "zotero.sqlite")
    keys = [
        db.add_item(
            "journalArticle",
            title=f"Paper {i} on a topic",
            date="2019",
            creators=[("author", "Ada", f"Writer{i}")],
            abstractNote="An abstract sentence. " * 10,
        )
        for i in range(n)
    ]
    db.commit()
    return db, data_dir, vault, keys


def notes_by_key(vault: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in vault.rglob("*.md"):
        props = parse_note(str(path), path.read_text(encoding="utf-8")).properties
        if "zotero_key" in props:
            found.setdefault(props["zotero_key"], []).append(path)
    return found


# --- crashes ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_during_a_5000_item_sync_loses_nothing(tmp_path: Path, seed: int) -> None:
    db, data_dir, vault, keys = library(tmp_path, 5000)
    first = zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir), "--json")
    assert first.returncode == 0, first.stderr
    rng = random.Random(seed)
    written = {}
    for key, paths in rng.sample(sorted(notes_by_key(vault).items()), 40):
        text = paths[0].read_text()
        line = f"My note on {key}, seed {seed}."
        paths[0].write_text(text.replace("### Method pipeline\n", f"### Method pipeline\n{line}\n"))
        written[paths[0]] = line
    for key in keys:  # every note must be rewritten: a long window to be killed in
        db.set_field(key, "title", f"Renamed {key}")
    db.commit()
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "sync",
            "--vault",
            str(vault),
            "--zotero-dir",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(rng.uniform(0.5, 4.0))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the sync finished before it could be killed"
    killed_after = time.monotonic() - started
    rerun = zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir), "--json")
    assert rerun.returncode == 0, (killed_after, rerun.stdout, rerun.stderr)
    by_key = notes_by_key(vault)  # every note parses
    assert sorted(by_key) == sorted(keys)
    assert all(len(paths) == 1 for paths in by_key.values()), "a note was duplicated"
    assert not [p for p in vault.rglob("*.tmp")], "temp files left behind"
    for path, line in written.items():
        assert line in path.read_text(), f"user text lost in {path}"
    for key, (path,) in by_key.items():
        assert f"title: Renamed {key}" in path.read_text()
    with State(vault) as state:
        for note in state.notes().values():
            if note.kind == "paper":
                assert (vault / note.path).is_file(), note.path
    again = zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir), "--json")
    assert '"created": 0, "updated": 0' in again.stdout


# --- hostile library -------------------------------------------------------------------------

HOSTILE_TITLES = [
    "../../etc/passwd", "a/b\\c", "CON", "nul.txt", "ctrl\x01\x02\x7fchars",
    "%% zob:end abstract %%",
    "---", "[[not a link]] | pipe # hash ^caret", "‮RTL override", "שלום עולם", "x" * 1000,
    "emoji 🧪", "统计学习方法",
]  # fmt: skip


def test_hostile_library_stays_inside_the_vault_and_resolves(tmp_path: Path) -> None:
    db, data_dir, vault, _ = library(tmp_path)
    outside = tmp_path / "outside-marker"
    outside.write_text("untouched")
    for title in HOSTILE_TITLES:
        db.add_item("journalArticle", title=title, date="2020",
                    creators=[("author", "", title[:50] or "x", 1)],
                    abstractNote=f"Abstract with {title}\n%% zob:end abstract %%\n---",
                    tags=["with space", "#hash", "proposes:A", "extends:B"],
                    extra="\n".join(f"line {i}" for i in range(3000)))  # fmt: skip
    for _ in range(500):  # many items with the same title
        db.add_item(
            "journalArticle", title="Same Title", date="2020", creators=[("author", "Jo", "Same")]
        )
    db.add_item("journalArticle", title="B paper", tags=["proposes:B", "extends:A"])  # a cycle
    # invalid UTF-8 stored by a broken plugin or import
    db.commit()
    db.conn.execute(
        "UPDATE itemDataValues SET value = CAST(x'54697465ff6c65' AS TEXT) WHERE value = 'emoji 🧪'"
    )
    db.conn.commit()
    before_zotero = snapshot_tree(data_dir)
    result = sync(Config(vault=vault, zotero_dir=data_dir), source=SqliteSource(data_dir))
    assert result.ok, result.errors
    assert any("cycle in lineage" in w for w in result.warnings)
    assert snapshot_tree(data_dir) == before_zotero
    assert outside.read_text() == "untouched"
    papers = list((vault / "Papers").iterdir())
    assert len(papers) == len(HOSTILE_TITLES) + 501
    assert len({p.name.casefold() for p in papers}) == len(papers)
    for path in vault.rglob("*"):
        assert vault in path.resolve().parents
    for path in papers:
        text = path.read_text(encoding="utf-8")
        note = parse_note(str(path), text)  # parses; markers intact
        assert note.properties["zotero_key"]
        lines = text.splitlines()
        assert lines.count("%% zob:begin abstract %%") == 1
        assert lines.count("%% zob:end abstract %%") == 1
    index = LinkIndex.build(vault)
    assert {k: v for k, v in index.unresolved_links().items() if v} == {}
    second = sync(Config(vault=vault, zotero_dir=data_dir), source=SqliteSource(data_dir))
    assert second.created == 0 and second.updated == 0


# --- hostile notes ---------------------------------------------------------------------------


@pytest.fixture
def synced(tmp_path: Path):
    item = make_item("A paper", citation_key="paper2020")
    source = ModelSource([item])
    vault = tmp_path / "vault"
    vault.mkdir()
    config = Config(vault=vault)
    sync(config, source=source)
    return source, config, vault, vault / "Papers" / "paper2020.md", item


def change_title(source: ModelSource, item, title: str) -> None:
    from dataclasses import replace

    source.put(replace(item, fields={**item.fields, "title": title}))


def test_crlf_and_bom_note_is_merged_keeping_its_line_endings(synced) -> None:
    source, config, vault, note, item = synced
    text = note.read_text().replace("\n", "\r\n")
    note.write_bytes(
        (
            "\ufeff" + text.replace("### Method pipeline\r\n", "### Method pipeline\r\nMine.\r\n")
        ).encode()
    )
    change_title(source, item, "New title")
    result = sync(config, source=source)
    assert result.ok and result.updated == 1
    data = note.read_bytes().decode()
    assert data.startswith("\ufeff---\r\n") and "title: New title\r\n" in data
    assert "Mine.\r\n" in data and "\n" not in data.replace("\r\n", "")


def test_symlinked_note_is_not_written_through(synced, tmp_path: Path) -> None:
    source, config, vault, note, item = synced
    target = tmp_path / "elsewhere.md"
    target.write_text(note.read_text())
    note.unlink()
    note.symlink_to(target)
    before = target.read_bytes()
    change_title(source, item, "Through the link?")
    result = sync(config, source=source)
    assert result.skipped == 1 and "outside the vault" in result.errors[0]["message"]
    assert target.read_bytes() == before and note.is_symlink()


def test_papers_folder_symlinked_out_of_the_vault_is_refused(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (vault / "Papers").symlink_to(outside)
    result = sync(Config(vault=vault), source=ModelSource([make_item("x", citation_key="x1")]))
    assert result.skipped == 1 and "outside the vault" in result.errors[0]["message"]
    assert list(outside.iterdir()) == []


def test_read_only_note_is_never_replaced_even_as_root(synced) -> None:
    """os.access says yes to root; the bridge still honours the user's read-only bit."""
    source, config, vault, note, item = synced
    note.chmod(0o444)
    before = note.read_bytes()
    change_title(source, item, "Changed")
    result = sync(config, source=source)
    assert result.skipped == 1 and "read-only" in result.errors[0]["message"]
    assert note.read_bytes() == before


def test_note_rewritten_by_another_process_at_write_time_is_left_alone(synced) -> None:
    source, config, vault, note, item = synced
    change_title(source, item, "Zotero's title")
    ctx = PlanContext(config.papers_folder, make_renderer(config))
    with State(vault) as state:
        actions = plan(source.read(), state.notes(), Vault(vault), ctx)
        assert [a.kind for a in actions] == ["update"]
        time.sleep(0.01)
        note.write_text(note.read_text() + "\nWritten by Obsidian at the same moment.\n")
        result = apply(actions, Vault(vault), state, SyncResult())
    assert result.skipped == 0 and "changed while" in result.deferred[0]["message"]
    assert "Written by Obsidian at the same moment." in note.read_text()
    # the next sync waits for the note to settle, then merges it properly
    assert sync(config, source=source).updated == 1
    assert "Written by Obsidian at the same moment." in note.read_text()
    assert "title: Zotero's title" in note.read_text()


# --- hostile sources -------------------------------------------------------------------------


def test_empty_library_after_a_full_sync_trips_the_wire(tmp_path: Path) -> None:
    db, data_dir, vault, keys = library(tmp_path, 6)
    assert zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir)).returncode == 0
    before = snapshot_tree(vault / "Papers")
    for key in keys:
        db.erase(key)
    db.commit()
    refused = zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir))
    assert refused.returncode == 4 and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot_tree(vault / "Papers") == before
    forced = zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir), "--force", "--json")
    assert forced.returncode == 0 and '"deleted": 6' in forced.stdout
    assert all("status: deleted-in-zotero" in p.read_text() for p in (vault / "Papers").iterdir())


@pytest.mark.parametrize("damage", ["not-sqlite", "truncated", "unknown-schema", "missing"])
def test_broken_databases_exit_3_with_a_message(tmp_path: Path, damage: str) -> None:
    db, data_dir, vault, _ = library(tmp_path, 50)
    db.close()
    path = data_dir / "zotero.sqlite"
    if damage == "not-sqlite":
        path.write_text("this is a text file")
    elif damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif damage == "unknown-schema":
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE version SET version = 999 WHERE schema = 'userdata'")
    else:
        path.unlink()
    result = zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir))
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "error:" in result.stderr
    assert "→" in result.stderr  # says what to do
    assert not (vault / "Papers").exists()


# --- hostile config --------------------------------------------------------------------------


def test_config_paths_relative_tilde_missing_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.config import load_config

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "notes").mkdir()
    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / "c.toml"
    cfg.write_text('vault = "../notes"\n[source]\nzotero_dir = "~/Zotero"\n')
    config = load_config(cfg)
    assert config.vault == tmp_path / "notes" and config.zotero_dir == tmp_path / "Zotero"
    (tmp_path / "afile").write_text("")
    for vault, message in (("~/nope", "does not exist"), ("~/afile", "is a file")):
        cfg.write_text(f'vault = "{vault}"\n')
        with pytest.raises(ConfigError, match=message):
            load_config(cfg)


# --- security --------------------------------------------------------------------------------


def test_nothing_outside_the_vault_changes(tmp_path: Path) -> None:
    db, data_dir, vault, keys = library(tmp_path, 30)
    pdf = db.add_attachment(keys[0], filename="a.pdf")
    db.add_annotation(pdf, text="highlight")
    db.commit()
    db.close()
    home = Path(os.environ["HOME"])
    before = snapshot_tree(tmp_path)
    home_before = snapshot_tree(home)
    result = zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    after = snapshot_tree(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert changed and all(p.startswith("vault/") for p in changed), sorted(changed)[:5]
    # the bridge's own cache of compiled templates is all it may add to the home folder
    cache = template_cache_dir().relative_to(home).as_posix() + "/"
    home_after = snapshot_tree(home)
    added = {
        p for p in set(home_before) | set(home_after) if home_before.get(p) != home_after.get(p)
    }
    assert all(p.startswith(cache) and p.endswith(".cache") for p in added), sorted(added)[:5]


def test_user_templates_render_in_a_sandbox(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "paper.md.j2").write_text(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}\n{{ region('abstract') }}\n"
    )
    vault = tmp_path / "vault"
    vault.mkdir()
    result = CliRunner().invoke(
        main,
        ["sync", "--vault", str(vault), "--source", "sample"],
        env={"ZOB_CONFIG": str(tmp_path / "none.toml")},
    )
    assert result.exit_code == 2 or "error" in result.output.lower()
    config = tmp_path / "c.toml"
    config.write_text(
        f'vault = "{vault}"\ntemplates_dir = "{templates}"\n[source]\ntype = "sample"\n'
    )
    result = CliRunner().invoke(main, ["sync", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "paper.md.j2" in result.output and "unsafe" in result.output.lower()
    assert not list((vault / "Papers").glob("*.md")) if (vault / "Papers").exists() else True


def test_two_syncs_of_one_vault_take_turns(tmp_path: Path) -> None:
    """A manual `zob sync` while the daemon syncs must wait, not interleave writes."""
    from bridge.locks import SyncBusyError, sync_lock

    state_dir = tmp_path / ".zotero-bridge"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from bridge.locks import sync_lock\n"
         "with sync_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(30)",
         str(state_dir)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SyncBusyError), sync_lock(state_dir, timeout=0.3):
            pass
    finally:
        holder.kill()
        holder.wait()
    with sync_lock(state_dir, timeout=5):  # a killed holder leaves nothing stale behind
        pass
