"""Review of the session refactor (commit 5e755ac): behaviour the refactor was meant to keep
and did not. Each test runs the real sync on a real vault folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bridge.config import Config
from bridge.sync import SyncOptions, sync


def _templated_config(tmp_path: Path, mark: str) -> tuple[Config, Path, Path]:
    """A templates folder whose lineage region (in every paper note) shows `mark`."""
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    lineage = tpl / "lineage.md.j2"
    lineage.write_text(mark + "\n", encoding="utf-8")
    vault = tmp_path / "vault"
    vault.mkdir()
    # English notes only: the sample library has a Chinese item, whose note (`language =
    # "auto"`) would take the bundled `zh/lineage.md.j2` before this English one
    config = Config().with_overrides(vault=vault, source="sample", templates_dir=tpl, language="en")
    return config, vault, lineage


def _paper_texts(vault: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((vault / "Papers").glob("*.md"))]


def test_a_template_edited_during_a_full_sync_reaches_the_notes_at_the_next_sync(
    tmp_path: Path,
) -> None:
    """`zob sync --full` records the render fingerprint of the templates it rendered with.
    Before the session refactor the fingerprint was taken when the sync began; the session
    takes it lazily, and with `--full` the read stage never asks for it (`options.full or
    ...` stops first), so it is first read at the queue or the marks stage, after the notes
    were written. A template saved while that sync ran (its notes rendered from the old
    text: Jinja loads a template once per sync) is then recorded as already rendered, and
    no later sync renders the notes with it."""
    config, vault, template = _templated_config(tmp_path, "LINEAGE-A")
    sync(config)
    assert all("LINEAGE-A" in text for text in _paper_texts(vault))

    edited: list[bool] = []

    def progress(total: int) -> Callable[[int], None]:
        def tick(_: int) -> None:
            if not edited:  # the user saves the template while the sync writes notes
                text = template.read_text(encoding="utf-8")
                template.write_text(text.replace("LINEAGE-A", "LINEAGE-B"), encoding="utf-8")
                edited.append(True)

        return tick

    sync(config, SyncOptions(full=True), progress=progress)
    assert edited
    sync(config)  # the templates changed since the notes were rendered: render them again
    texts = _paper_texts(vault)
    assert texts and all("LINEAGE-B" in text for text in texts), (
        "the template saved during `sync --full` never reached the notes"
    )


# every `meta` key as vaults synced before the typed marks (1c71627) have it, and the mark
# that must read it: a respelled key loses an existing vault's cursor, hold or digest
LEGACY_KEYS = {
    "sync_pending": "pending",
    "item_keys": "keys_digest",
    "render_fingerprint": "render_fingerprint",
    "source": "source",
    "last_warnings": "last_warnings",
    "temps_swept": "temps_swept",
    "lineage_inputs": "lineage_digest",
    "lineage_problems": "lineage_problems",
    "missing_papers": "missing_papers",
    "missing_names": "missing_names",
    "missing_watch": "missing_watch",
    "held_cursor_key": "last_cursor_key",
    "reading_queue_inputs": "queue_digest",
    "reading_queue_settings": "queue_settings",
    "daemon": "daemon",
    "vault_id": "vault_id",
    "vault_path": "vault_path",
}
LEGACY_VALUES = {
    "sync_pending": ("1", True),
    "temps_swept": ("12.5", 12.5),
    "last_warnings": ('["w"]', ["w"]),
    "lineage_problems": ('["a cycle"]', ["a cycle"]),
    "daemon": ('{"pid": 7}', {"pid": 7}),
}


def test_the_marks_read_every_key_an_existing_vault_has(tmp_path: Path) -> None:
    """Rows written under the pre-refactor spellings (raw SQL, as an older build left them)
    read back through `state.marks`, cursor and held cursor included."""
    from bridge.state import State, cursor_key

    vault = tmp_path / "vault"
    vault.mkdir()
    key = cursor_key("sqlite", "/home/u/Zotero")
    assert key == "cursor:sqlite:/home/u/Zotero"
    with State(vault) as state:
        here = state.marks.vault_path
        rows = {name: LEGACY_VALUES.get(name, (f"v-{name}", f"v-{name}")) for name in LEGACY_KEYS}
        rows["vault_path"] = (here, here)  # the claim stays this vault's
        with state.transaction():
            for name, (raw, _) in rows.items():
                state.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, raw))
            state.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, "C1"))
            state.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("held:" + key, "{}"))
    with State(vault) as state:
        marks = state.marks
        for name, attribute in LEGACY_KEYS.items():
            assert getattr(marks, attribute) == rows[name][1], name
        assert marks.cursor(key) == "C1" and marks.held(key) == "{}"


def _zob(*args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess (its own interpreter, as a user runs it)."""
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True, text=True, env=dict(os.environ), timeout=120,
    )  # fmt: skip


def test_status_and_lineage_leave_an_unsynced_vault_untouched(tmp_path: Path) -> None:
    """`zob status` and `zob lineage` open `reading` sessions: on a vault no sync has seen
    they must not make the state folder (the vault may be an empty mount point)."""
    vault = tmp_path / "vault"
    vault.mkdir()
    status = _zob("status", "--vault", str(vault), "--source", "sample", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["synced"] is False
    lineage = _zob("lineage", "NMS", "--vault", str(vault))
    assert lineage.returncode != 0 and "zob sync" in lineage.stderr + lineage.stdout
    assert list(vault.iterdir()) == []
