"""Hypothesis attacks the merge: user text survives any sequence of Zotero edits, user edits
and syncs, and a sync twice in a row changes nothing."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bridge.model import Annotation
from bridge.sync import sync
from tests.helpers import ModelSource, make_item, settled, vault_config, with_annotations

WORDS = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=12).map(str.strip).filter(bool)
REGIONS = ("abstract", "annotations", "lineage")
SECTIONS = ("### Method pipeline\n", "### How would I have done it?\n", "## Pass 1")


class NoteMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="zob-hyp-"))
        self.item = make_item("Original title", citation_key="paper2020", tags=("t1",))
        self.source = ModelSource([self.item])
        self.config = vault_config(self.dir)
        sync(self.config, source=self.source)
        self.path = self.dir / "Papers" / "paper2020.md"
        self.user_lines: set[str] = set()  # every line the user wrote that must survive
        self.user_props: dict[str, str] = {}  # user-owned property → value
        self.user_bridge_values: dict[str, str] = {}  # bridge-owned property → user's token
        self.n = 0
        self.note_trashed = False  # what the note reflects as of the last sync

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def token(self) -> str:
        self.n += 1
        return f"USERTOKEN{self.n}"

    # --- Zotero edits ------------------------------------------------------------------

    @rule(title=WORDS)
    def zotero_title(self, title: str) -> None:
        self.item = replace(self.item, fields={**self.item.fields, "title": title})
        self.source.put(self.item)

    @rule(text=WORDS)
    def zotero_abstract(self, text: str) -> None:
        self.item = replace(self.item, fields={**self.item.fields, "abstractNote": text})
        self.source.put(self.item)

    @rule(tags=st.lists(st.sampled_from(["t1", "t2", "t3", "t4"]), unique=True))
    def zotero_tags(self, tags: list[str]) -> None:
        self.item = replace(self.item, tags=tuple(tags))
        self.source.put(self.item)

    @rule(
        texts=st.lists(WORDS, max_size=3), color=st.sampled_from(["#ffd400", "#ff6666", "#ffed00"])
    )
    def zotero_annotations(self, texts: list[str], color: str) -> None:
        anns = [
            Annotation(f"ANN{i:05d}", "", "highlight", t, "", color, str(i))
            for i, t in enumerate(texts)
        ]
        self.item = with_annotations(self.item, *anns, att_key="ATTACH22")
        self.source.put(self.item)

    @rule(trashed=st.booleans())
    def zotero_trash(self, trashed: bool) -> None:
        self.item = replace(self.item, trashed=trashed)
        self.source.put(self.item)

    # --- user edits ----------------------------------------------------------------------

    def _text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def _write(self, text: str) -> None:
        self.path.write_text(text, encoding="utf-8")
        settled(self.path)  # merge rules here; saves caught mid-way: tests/test_save_races.py

    @rule(section=st.sampled_from(SECTIONS))
    def user_writes_in_a_pass_section(self, section: str) -> None:
        token = self.token()
        text = self._text()
        if section in text:
            self._write(text.replace(section, f"{section}{token} my thoughts\n", 1))
            self.user_lines.add(token)

    @rule(region=st.sampled_from(REGIONS))
    def user_writes_inside_a_region(self, region: str) -> None:
        token = self.token()
        end = f"%% zob:end {region} %%"
        text = self._text()
        if end in text:
            self._write(text.replace(end, f"{token} inside\n{end}", 1))
            self.user_lines.add(token)

    @rule(key=st.sampled_from(["title", "venue", "doi"]))
    def user_edits_a_bridge_property(self, key: str) -> None:
        token = self._set_property(key)
        # the user's new value replaces their own previous one (that is their choice)
        self.user_lines.discard(self.user_bridge_values.get(key, ""))
        self.user_bridge_values[key] = token
        self.user_lines.add(token)

    @rule(key=st.sampled_from(["rating", "my_note", "status"]))
    def user_sets_own_property(self, key: str) -> None:
        self.user_props[key] = self._set_property(key)

    def _set_property(self, key: str) -> str:
        """Set `key: <new token>` as the first property, as a user typing in source mode."""
        token = self.token()
        head, sep, rest = self._text().partition("\n---\n")
        lines = [ln for ln in head.split("\n") if not ln.startswith(f"{key}:")]
        lines.insert(1, f"{key}: {token}")
        self._write("\n".join(lines) + sep + rest)
        return token

    @rule()
    def user_adds_a_tag(self) -> None:
        token = self.token().lower()
        text = self._text()
        if "\ntags:\n" in text:
            indent = "  " if "\ntags:\n  - " in text else ""
            self._write(text.replace("\ntags:\n", f"\ntags:\n{indent}- {token}\n", 1))
            self.user_lines.add(token)

    # --- syncs ---------------------------------------------------------------------------

    @rule()
    def sync_twice(self) -> None:
        first = sync(self.config, source=self.source)
        assert first.ok, first.errors
        self.note_trashed = self.item.trashed
        before = self.path.read_bytes()
        second = sync(self.config, source=self.source)
        assert second.ok and second.created == 0 and second.updated == 0, second.counts()
        assert second.unchanged == 1
        assert self.path.read_bytes() == before

    @precondition(lambda self: True)
    @invariant()
    def user_words_survive(self) -> None:
        text = self._text()
        for line in self.user_lines:
            assert line in text, f"user text {line!r} lost"
        for key, value in self.user_props.items():
            if key == "status" and self.note_trashed:
                continue
            assert f"{key}: {value}" in text or value in text


NoteMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestNoteMachine = NoteMachine.TestCase
