"""Review of the session refactor (commit 5e755ac): behaviour the refactor was meant to keep
and did not. Each test runs the real sync on a real vault folder."""

from __future__ import annotations

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
    config = Config().with_overrides(vault=vault, source="sample", templates_dir=tpl)
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
