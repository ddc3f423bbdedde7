"""Small builders shared by tests: model items and a source that serves them.

`ModelSource` serves `bridge.model` objects directly; it stands in for a Zotero source only in
tests of the vault side (merge, planner, names), where what matters is the note, not how the
item was read. Source behaviour is tested against real databases and real HTTP servers.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

from bridge.config import Config
from bridge.model import Annotation, Attachment, Creator, Item, LibrarySnapshot

_counter = itertools.count(1)
_ALPHABET = "23456789ABCDEFGHIJKLMNPQRSTUVWXYZ"


def zkey(n: int | None = None) -> str:
    n = next(_counter) if n is None else n
    chars = []
    for _ in range(8):
        n, r = divmod(n, len(_ALPHABET))
        chars.append(_ALPHABET[r])
    return "".join(reversed(chars))


def make_item(title: str = "A Paper", *, key: str | None = None, **kwargs: Any) -> Item:
    fields = {"title": title, "date": "2016", "abstractNote": "An abstract."}
    fields.update(kwargs.pop("fields", {}))
    creators = kwargs.pop("creators", (Creator("author", "Ada", "Lovelace"),))
    return Item(
        key=key or zkey(), item_type="journalArticle", fields=fields, creators=creators, **kwargs
    )


def with_annotations(item: Item, *annotations: Annotation, att_key: str | None = None) -> Item:
    att_key = att_key or zkey()
    anns = tuple(replace(a, attachment_key=att_key) for a in annotations)
    attachment = Attachment(
        att_key, "Full Text PDF", "application/pdf", "imported_file", "storage:paper.pdf", anns
    )
    return replace(item, attachments=(attachment,))


class ModelSource:
    name = "model"

    def __init__(self, items: list[Item] | None = None) -> None:
        self.items: dict[str, Item] = {i.key: i for i in items or []}
        self.reads = 0

    def put(self, item: Item) -> None:
        self.items[item.key] = item

    def erase(self, key: str) -> None:
        self.items.pop(key, None)

    def read(self, since: str | None = None) -> LibrarySnapshot:
        self.reads += 1
        items = tuple(self.items.values())
        return LibrarySnapshot(items, frozenset(self.items), cursor=None)


def vault_config(vault: Path, **kwargs: Any) -> Config:
    return Config(vault=vault, **kwargs)


def snapshot_tree(root: Path) -> dict[str, bytes]:
    """Every file below root (relative path → bytes): to prove what a run did or did not touch."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def settled(path: Path, seconds: float = 10.0) -> None:
    """Date a note's last save `seconds` back: an edit the user made a while ago, which a sync
    merges at once (a note saved moments ago is merged once it settles)."""
    import os
    import time

    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def synced_paper(vault: Path) -> tuple[Item, ModelSource, Config, Path]:
    """One paper (`paper2022`) synced into `vault` with the default settings: the item, its
    source, the config and the note."""
    from bridge.sync import sync

    item = make_item("A paper", citation_key="paper2022")
    source = ModelSource([item])
    config = Config(vault=vault)
    sync(config, source=source)
    return item, source, config, vault / "Papers" / "paper2022.md"


def retitle(source: ModelSource, item: Item, title: str) -> Item:
    """Give `item` a new title in `source` (as if edited in Zotero)."""
    new = replace(item, fields={**item.fields, "title": title})
    source.put(new)
    return new


USER_LINE = "\nMy precious paragraph that must never be lost.\n"


def one_paper_vault(
    tmp_path: Path, settle: float = 1.0
) -> tuple[Path, ModelSource, Config, Item, Path]:
    """A vault with one synced paper ("Original title", key ABCD2345) and `settle_seconds`:
    the vault, the source, the config, the item and the note."""
    from bridge.sync import sync

    vault = tmp_path / "vault"
    vault.mkdir()
    item = make_item("Original title", key="ABCD2345")
    source = ModelSource([item])
    config = Config(vault=vault, settle_seconds=settle)
    result = sync(config, source=source)
    assert result.created == 1, result
    note = next((vault / "Papers").glob("*.md"))
    return vault, source, config, item, note


def with_the_plugin(vault: Path) -> Path:
    """`vault`, made, with the Obsidian plugin's folder in it as `zob plugin install` leaves
    it: only such a vault (or one with an index already) gets `.zotero-bridge/library.json`."""
    from bridge.plugin_install import PLUGIN_DIR

    (vault / PLUGIN_DIR).mkdir(parents=True, exist_ok=True)
    return vault


def new_library(tmp_path: Path) -> tuple[Any, Path, Path]:
    """An empty library in Zotero's real tables (`tmp_path/Zotero/zotero.sqlite`) and an
    empty vault beside it: (ZoteroDB, the Zotero data folder, the vault)."""
    from tests.zotero_db import ZoteroDB

    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    vault = tmp_path / "vault"
    vault.mkdir()
    return ZoteroDB.create(data_dir / "zotero.sqlite"), data_dir, vault


def resnet_library(tmp_path: Path) -> tuple[Any, Path, Path, str]:
    """`new_library` holding one paper, ResNet (`he2016deep`): (db, data folder, vault, key)."""
    db, data_dir, vault = new_library(tmp_path)
    key = db.add_item(
        "journalArticle", title="Deep Residual Learning", date="2016",
        creators=[("author", "Kaiming", "He"), ("author", "Xiangyu", "Zhang")],
        publicationTitle="CVPR", DOI="10.1109/CVPR.2016.90", citation_key="he2016deep",
    )  # fmt: skip
    db.commit()
    return db, data_dir, vault, key
