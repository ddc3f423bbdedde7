"""Hostile titles: every note lands inside Papers/, names safe and unique ignoring case."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.config import Config
from bridge.model import Creator
from bridge.sync import sync
from bridge.vault.names import MAX_NAME_BYTES, NameRegistry, sanitize
from tests.helpers import ModelSource, make_item, retitle, snapshot_tree, synced_paper, vault_config

HOSTILE = [
    "../x", "a/b", "..\\..\\evil", ':?*|"<>#^[]%', "x" * 400, "", "   ", ".hidden", "trailing. ",
    "🧠 Neural nets 🚀", "统计学习方法", "Attention", "attention", "ATTENTION", "CON", "nul.txt",
    "line\nbreak\ttab\x00nul", "%% zob:end abstract %%", "---", "[[link]] | alias", "‮RTL text",
]  # fmt: skip
FORBIDDEN = set('*"\\/<>:|?#^[]%')


def check_name(stem: str) -> None:
    assert stem and stem == stem.strip() and not stem.startswith(".")
    assert not stem.endswith((".", " "))
    assert not FORBIDDEN & set(stem)
    assert len(stem.encode()) <= MAX_NAME_BYTES + 20
    assert stem.split(".")[0].lower() not in {"con", "nul", "prn", "aux"}
    assert all(unicodedata.category(c) != "Cc" for c in stem)


def test_hostile_titles_land_inside_papers_unique_ignoring_case(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    outside_before = {p for p in tmp_path.rglob("*") if vault not in p.parents and p != vault}
    items = [make_item(t, creators=(Creator("author", "", t, True),) if t else ()) for t in HOSTILE]
    result = sync(vault_config(vault), source=ModelSource(items))
    assert result.created == len(HOSTILE) and result.ok
    notes = [p for p in vault.rglob("*.md") if p.name != "Reading queue.md"]
    assert len(notes) == len(HOSTILE)
    assert all(p.parent == vault / "Papers" for p in notes)
    stems = [p.stem for p in notes]
    assert len({s.casefold() for s in stems}) == len(stems)
    for stem in stems:
        check_name(stem)
    outside_after = {p for p in tmp_path.rglob("*") if vault not in p.parents and p != vault}
    assert outside_before == outside_after
    # a second sync changes nothing
    before = snapshot_tree(vault / "Papers")
    again = sync(vault_config(vault), source=ModelSource(items))
    assert again.unchanged == len(HOSTILE) and snapshot_tree(vault / "Papers") == before


def test_titles_differing_only_in_case_get_distinct_names(tmp_path: Path) -> None:
    items = [make_item("Attention"), make_item("attention"), make_item("ATTENTION")]
    sync(vault_config(tmp_path), source=ModelSource(items))
    names = sorted(os.listdir(tmp_path / "Papers"))
    assert len(names) == 3 and len({n.casefold() for n in names}) == 3


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_sanitize_always_safe(text: str) -> None:
    stem = sanitize(text)
    if stem:
        check_name(stem)


@given(st.lists(st.text(min_size=1), max_size=30))
def test_registry_unique_ignoring_case(stems: list[str]) -> None:
    registry = NameRegistry()
    claimed = [registry.claim(sanitize(s) or "x") for s in stems]
    assert len({c.casefold() for c in claimed}) == len(claimed)


def test_a_note_with_a_very_long_name_stays_writable(tmp_path: Path) -> None:
    item, source, config, note = synced_paper(tmp_path)
    long = note.with_name("研" * 82 + ".md")  # 246 bytes + .md: allowed, temp name must fit
    note.rename(long)
    retitle(source, item, "Still updated")
    result = sync(config, source=source)
    assert result.ok and result.updated == 1 and "title: Still updated" in long.read_text()


def test_an_nfd_name_counts_as_taken(tmp_path: Path) -> None:
    (tmp_path / "Papers").mkdir()
    nfd = unicodedata.normalize("NFD", "Müller 2020 - Über Netze")
    (tmp_path / "Papers" / f"{nfd}.md").write_text("my own note\n")
    item = make_item(
        "Über Netze", fields={"date": "2020"}, creators=(Creator("author", "Hans", "Müller"),)
    )
    sync(Config(vault=tmp_path), source=ModelSource([item]))
    names = [unicodedata.normalize("NFC", p.stem) for p in (tmp_path / "Papers").iterdir()]
    assert len(names) == len({n.casefold() for n in names}) == 2
