"""Adversarial review of the `truth` merge: the managed header, `.obsidian/types.json`, the
remembered source. Each test is a way a user's vault, words or secrets came to harm, found by
trying; real syncs on real Zotero databases, real files, a real HTTP server."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from bridge.cli import main
from bridge.state.marks import SOURCE_SETTINGS
from bridge.statefolder import STATE_DIRNAME
from bridge.vault.obsidian_types import TYPES_FILE
from tests.helpers import resnet_library
from tests.test_header import edit, header_of, run

NOTE = ("Papers", "he2016deep.md")


@pytest.fixture
def library(tmp_path: Path):
    return resnet_library(tmp_path)


# --- the header -----------------------------------------------------------------------------


def test_own_property_edit_is_no_zotero_conflict_in_a_hand_edited_header(library) -> None:
    """The user renamed the H1 by hand, later corrected `venue:`; Zotero changed nothing. The
    bridge called that "Zotero updated the header", put its own header over the user's H1
    and moved the user's H1 into a conflict callout."""
    db, data_dir, vault, key = library
    run(data_dir, vault)
    note = vault.joinpath(*NOTE)
    edit(note, "# Deep Residual Learning\n", "# ResNet (my name for it)\n")
    run(data_dir, vault)
    edit(note, "venue: CVPR", "venue: CVPR 2016")
    run(data_dir, vault, full=True)  # a full read merges an item Zotero did not change
    text = note.read_text(encoding="utf-8")
    assert "conflict" not in text
    assert header_of(note).startswith("# ResNet (my name for it)\n")
    assert "venue: CVPR 2016" in text

    db.set_field(key, "title", "Deep Residual Learning for Image Recognition")
    db.commit()
    run(data_dir, vault)  # now Zotero did change the header: a real conflict, the user's kept
    text = note.read_text(encoding="utf-8")
    assert header_of(note).startswith("# Deep Residual Learning for Image Recognition\n")
    assert "zotero-bridge conflict: `header`" in text and "> # ResNet (my name for it)" in text
    run(data_dir, vault, full=True)
    assert note.read_text(encoding="utf-8") == text  # and nothing repeats


def test_a_language_switch_is_no_zotero_conflict_in_a_hand_edited_header(library) -> None:
    """`language` en → zh re-renders every header; one the user edited by hand was replaced,
    and the user's H1 moved into a callout saying Zotero had changed it."""
    db, data_dir, vault, key = library
    run(data_dir, vault, language="en")
    note = vault.joinpath(*NOTE)
    edit(note, "# Deep Residual Learning\n", "# 残差网络（我的笔记）\n")
    run(data_dir, vault, language="zh")
    text = note.read_text(encoding="utf-8")
    assert "conflict" not in text and header_of(note).startswith("# 残差网络（我的笔记）\n")


def test_deleting_the_title_property_does_not_blank_the_h1(library) -> None:
    """A user who tidies the properties away (the file name says the title) got
    `# Untitled` over Zotero's title at the next Zotero change."""
    db, data_dir, vault, key = library
    run(data_dir, vault)
    note = vault.joinpath(*NOTE)
    edit(note, "title: Deep Residual Learning\n", "")
    db.set_field(key, "abstractNote", "A new abstract.")
    db.commit()
    run(data_dir, vault)
    assert header_of(note).startswith("# Deep Residual Learning\n")
    assert "title:" not in note.read_text(encoding="utf-8").split("\n---\n", 1)[0]


# --- .obsidian/types.json -------------------------------------------------------------------


def test_a_linked_obsidian_folder_does_not_break_every_sync(library, tmp_path: Path) -> None:
    """`.obsidian` shared between vaults through a link (a common dotfiles setup): the sync
    raised after writing the notes, so its marks (cursor, last sync) were never recorded."""
    db, data_dir, vault, key = library
    shared = tmp_path / "shared-obsidian"
    shared.mkdir()
    (shared / "types.json").write_text('{"types": {"mine": "text"}}', encoding="utf-8")
    (vault / ".obsidian").symlink_to(shared, target_is_directory=True)
    result = run(data_dir, vault)
    assert any(TYPES_FILE in w for w in result.warnings), result.warnings
    assert (shared / "types.json").read_text(encoding="utf-8") == '{"types": {"mine": "text"}}'
    assert vault.joinpath(*NOTE).exists()


def test_a_deeply_nested_types_json_is_a_warning_not_a_crash(library) -> None:
    db, data_dir, vault, key = library
    (vault / ".obsidian").mkdir()
    hostile = '{"types": {}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (vault / TYPES_FILE).write_text(hostile, encoding="utf-8")
    result = run(data_dir, vault)
    assert any(TYPES_FILE in w for w in result.warnings), result.warnings
    assert (vault / TYPES_FILE).read_text(encoding="utf-8") == hostile


# --- the remembered source ------------------------------------------------------------------


def _plant(vault: Path, settings: dict[str, str]) -> None:
    """A vault someone else synced (shared by git or a sync service) carries its state DB."""
    assert CliRunner().invoke(main, ["demo", str(vault)]).exit_code == 0
    db = sqlite3.connect(vault / STATE_DIRNAME / "state.sqlite")
    with db:
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (SOURCE_SETTINGS, json.dumps(settings)),
        )
    db.close()


def test_a_planted_api_url_never_receives_the_users_api_key(
    tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state DB in a shared vault named another server as the Zotero API: `zob sync
    --vault it` sent the user's `ZOTERO_API_KEY` there as a bearer token."""
    secret = "Zq8mN2pL5vX9rT4wK7yB3cF6"
    monkeypatch.setenv("ZOTERO_API_KEY", secret)
    httpserver.expect_request("/").respond_with_data("nothing here", status=404)
    vault = tmp_path / "shared-vault"
    _plant(vault, {"source": "web", "library_id": "1", "api_url": httpserver.url_for("/")})
    synced = CliRunner().invoke(main, ["sync", "--vault", str(vault)])
    assert "config file" not in synced.output, synced.output
    sent = [str(request.headers) + request.full_path for request, _ in httpserver.log]
    assert not [s for s in sent if secret in s], sent


def test_a_planted_api_key_file_is_not_read(
    tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same state DB may name any file as the key file: its first 4 kB went out as the
    bearer token (a token file, a password file of one line)."""
    monkeypatch.delenv("ZOTERO_API_KEY", raising=False)
    private = tmp_path / "private-token"
    private.write_text("ghp_notZoterosButMine0123456789\n", encoding="utf-8")
    os.chmod(private, 0o600)
    httpserver.expect_request("/").respond_with_data("nothing here", status=404)
    vault = tmp_path / "shared-vault"
    _plant(
        vault,
        {
            "source": "web", "library_id": "1", "api_url": httpserver.url_for("/"),
            "api_key_file": str(private),
        },
    )  # fmt: skip
    synced = CliRunner().invoke(main, ["sync", "--vault", str(vault)])
    assert "config file" not in synced.output, synced.output
    sent = [str(request.headers) + request.full_path for request, _ in httpserver.log]
    assert not [s for s in sent if "notZoterosButMine" in s], sent


def test_the_config_files_vault_by_another_path_keeps_the_config_files_source(
    library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vault began as `zob demo`; the config file now names it through a link
    (`~/Notes` → `/data/Notes`) with Zotero's folder as its source. `cd ~/Notes; zob sync
    --vault .` compared the two paths unresolved, found no config for this vault, and synced
    the demo library into it instead of the user's Zotero."""
    db, data_dir, vault, key = library
    real = tmp_path / "data-notes"
    _plant(real, {"source": "sample"})
    link = tmp_path / "Notes"
    link.symlink_to(real, target_is_directory=True)
    config = tmp_path / "config.toml"
    config.write_text(
        f'vault = "{link}"\n[source]\ntype = "sqlite"\nzotero_dir = "{data_dir}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("ZOB_CONFIG", str(config))
    synced = CliRunner().invoke(main, ["sync", "--vault", str(real), "--force", "--json"])
    assert synced.exit_code == 0, synced.output
    state = sqlite3.connect(real / STATE_DIRNAME / "state.sqlite")
    source = state.execute("SELECT value FROM meta WHERE key = 'source'").fetchone()[0]
    state.close()
    assert source == "sqlite"
