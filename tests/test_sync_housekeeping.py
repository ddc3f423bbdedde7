"""What a sync does besides notes: it sweeps the temp files a killed write left, and keeps
compiled templates in the user's cache folder (never in the vault) without depending on it."""

from __future__ import annotations

import errno
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.model import Annotation
from bridge.state import NoteState, State
from bridge.sync import (
    PENDING,
    SWEEP_EVERY_S,
    TEMPS_SWEPT,
    SyncOptions,
    sync,
    template_cache_dir,
)
from tests.helpers import ModelSource, make_item, vault_config, with_annotations

NOTE = "Papers/lovelacePaper2016.md"  # a generated key: make_item has no citation key


def other_vault(tmp_path: Path) -> Config:
    (tmp_path / "other").mkdir()
    return vault_config(tmp_path / "other")


def plant_temp(vault: Path) -> Path:
    temp = vault / "Papers" / ".zob-0123456789ab.tmp"
    temp.parent.mkdir(parents=True, exist_ok=True)
    temp.write_text("half a note", encoding="utf-8")
    return temp


def set_meta(vault: Path, key: str, value: str | None) -> None:
    with State(vault) as state:
        state.set_meta(key, value)


@pytest.fixture
def library() -> ModelSource:
    return ModelSource([make_item("A paper", key="PAPER001")])


def test_the_first_sync_sweeps_stale_temps(tmp_path: Path, library: ModelSource) -> None:
    config = vault_config(tmp_path)
    temp = plant_temp(config.vault)
    sync(config, source=library)
    assert not temp.exists()


def test_a_stale_temp_holding_a_note_is_recovered_not_deleted(
    tmp_path: Path, library: ModelSource
) -> None:
    """A sync killed between its swap and its last step leaves the user's own note under a
    temp name: the sweep keeps it in the state folder and says so."""
    config = vault_config(tmp_path)
    temp = plant_temp(config.vault)
    words = "---\nzotero_key: ABCD2345\n---\nMy words from before the crash.\n"
    temp.write_text(words, encoding="utf-8")
    result = sync(config, source=library)
    assert not temp.exists()
    kept = list((config.vault / ".zotero-bridge" / "recovered").iterdir())
    assert [k.read_text(encoding="utf-8") for k in kept] == [words]
    assert any("recovered" in w for w in result.warnings)


def test_a_recent_sweep_is_not_repeated_but_an_old_one_is(
    tmp_path: Path, library: ModelSource
) -> None:
    config = vault_config(tmp_path)
    sync(config, source=library)
    temp = plant_temp(config.vault)
    sync(config, source=library)
    assert temp.exists()  # swept a moment ago: a walk of the vault is not worth it again
    set_meta(config.vault, TEMPS_SWEPT, "0")  # long ago
    sync(config, source=library)
    assert not temp.exists()
    with State(config.vault) as state:
        assert float(state.get_meta(TEMPS_SWEPT) or 0) > SWEEP_EVERY_S


def test_an_interrupted_sync_is_followed_by_a_sweep(tmp_path: Path, library: ModelSource) -> None:
    config = vault_config(tmp_path)
    sync(config, source=library)
    temp = plant_temp(config.vault)
    set_meta(config.vault, PENDING, "1")  # as a sync killed while writing leaves it
    sync(config, source=library)
    assert not temp.exists()


def test_a_garbled_sweep_time_means_sweep(tmp_path: Path, library: ModelSource) -> None:
    config = vault_config(tmp_path)
    sync(config, source=library)
    temp = plant_temp(config.vault)
    set_meta(config.vault, TEMPS_SWEPT, "yesterday")
    sync(config, source=library)
    assert not temp.exists()


def test_compiled_templates_are_kept_outside_the_vault_and_reused(
    tmp_path: Path, library: ModelSource
) -> None:
    config = vault_config(tmp_path)
    sync(config, source=library)
    cached = sorted(template_cache_dir().rglob("*.cache"))
    assert cached, "the sync kept no compiled template"
    assert all(config.vault not in path.parents for path in cached)
    assert not list(config.vault.rglob("*.cache"))
    # a second vault renders the same notes from the cache
    other = other_vault(tmp_path)
    sync(other, source=library)
    first = (config.vault / NOTE).read_text(encoding="utf-8")
    assert (other.vault / NOTE).read_text(encoding="utf-8") == first
    assert sorted(template_cache_dir().rglob("*.cache")) == cached


def test_a_corrupt_cache_file_is_compiled_again(tmp_path: Path, library: ModelSource) -> None:
    config = vault_config(tmp_path)
    sync(config, source=library)
    expected = (config.vault / NOTE).read_text(encoding="utf-8")
    for path in template_cache_dir().rglob("*.cache"):
        path.write_bytes(b"j2\x00garbage")
    other = other_vault(tmp_path)
    sync(other, source=library)
    assert (other.vault / NOTE).read_text(encoding="utf-8") == expected


def test_a_cache_folder_that_cannot_be_made_does_not_fail_a_sync(
    tmp_path: Path, library: ModelSource
) -> None:
    cache = template_cache_dir()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where the folder should be", encoding="utf-8")
    config = vault_config(tmp_path)
    result = sync(config, source=library)
    assert result.created == 1 and not result.errors
    assert (config.vault / NOTE).is_file()


def test_a_full_disk_while_caching_does_not_fail_a_sync(
    tmp_path: Path, library: ModelSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    # the one call Jinja2's cache makes to write (root ignores a read-only folder's mode)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_space)
    config = vault_config(tmp_path)
    result = sync(config, source=library)
    assert result.created == 1 and not result.errors
    assert not list(template_cache_dir().rglob("*.cache"))


def test_a_full_sync_lets_every_parsed_merge_base_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full read plans every note, parsing merge bases (to merge, or for the reading hint);
    none may stay in memory to the end of the sync (50,000 notes held 190 MB of them)."""
    quote = Annotation("ANNOT222", "", "highlight", "text")
    items = [
        with_annotations(make_item(f"Paper {n}", key=f"PAPER{n:03d}"), quote) for n in range(6)
    ]
    source = ModelSource(items)
    config = vault_config(tmp_path)
    sync(config, source=source)
    source.put(replace(items[0], fields={**items[0].fields, "title": "Retitled"}))  # an update
    handed_out: list[dict[str, NoteState]] = []
    real_notes = State.notes

    def notes(self: State, kind: str | None = None) -> dict[str, NoteState]:
        found = real_notes(self, kind)
        handed_out.append(found)
        return found

    monkeypatch.setattr(State, "notes", notes)
    result = sync(config, SyncOptions(full=True), source=source)
    assert result.updated == 1 and result.unchanged >= 5
    papers = [n for found in handed_out for n in found.values() if n.kind == "paper"]
    assert len(papers) >= 6
    assert all(n.base_raw is None for n in papers)  # read again from the state DB if asked
    assert all(n.loader is not None for n in papers)
