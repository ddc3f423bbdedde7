"""`language = "auto"`: each paper note in its item's language; a language change re-renders
only the bridge's regions, never the user's sections."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.sources.sqlite import SqliteSource
from bridge.sync import sync
from bridge.vault.render import detect_language
from tests.helpers import new_library


@pytest.fixture
def library(tmp_path: Path):
    db, data_dir, vault = new_library(tmp_path)
    keys = {
        "book": db.add_item(
            "book", title="统计学习方法", date="2012", creators=[("author", "航", "李")],
            citation_key="li2012tongji",
        ),
        "field": db.add_item(
            "journalArticle", title="A survey of pre-trained models", date="2021",
            language="zh-CN", citation_key="survey2021",
        ),
        "english": db.add_item(
            "journalArticle", title="Deep Residual Learning", date="2016", language="en",
            citation_key="he2016deep",
        ),
    }  # fmt: skip
    attachment = db.add_attachment(keys["book"], filename="book.pdf")
    db.add_annotation(attachment, text="感知机", color="#ff6666")
    db.commit()
    return db, data_dir, vault, keys


def run(data_dir: Path, vault: Path, **config) -> None:
    config = Config(vault=vault, zotero_dir=data_dir, **config)
    result = sync(config, source=SqliteSource(data_dir))
    assert result.ok, result.errors


def test_auto_picks_chinese_for_a_chinese_title_or_language_field(library) -> None:
    db, data_dir, vault, keys = library
    run(data_dir, vault)  # language = "auto" is the default
    book = (vault / "Papers" / "li2012tongji.md").read_text(encoding="utf-8")
    assert "## 第一遍 — 概览" in book and "[在 Zotero 中打开](" in book
    assert "### 不清楚的段落" in book  # the highlight group in Chinese too
    survey = (vault / "Papers" / "survey2021.md").read_text(encoding="utf-8")
    assert "## 第一遍 — 概览" in survey
    english = (vault / "Papers" / "he2016deep.md").read_text(encoding="utf-8")
    assert "## Pass 1 — Survey" in english and "[Open in Zotero](" in english


def test_forced_language_and_a_switch_keep_user_sections(library) -> None:
    db, data_dir, vault, keys = library
    run(data_dir, vault, language="en")
    path = vault / "Papers" / "li2012tongji.md"
    text = path.read_text(encoding="utf-8")
    assert "## Pass 1 — Survey" in text and "### Unclear passages" in text
    path.write_text(text.replace("- **Problem:** \n", "- **Problem:** 我的笔记\n"), "utf-8")
    past = path.stat().st_mtime_ns - 30_000_000_000
    os.utime(path, ns=(past, past))
    run(data_dir, vault, language="auto")
    text = path.read_text(encoding="utf-8")
    assert "## Pass 1 — Survey" in text and "- **Problem:** 我的笔记" in text  # user's, kept
    assert "[在 Zotero 中打开](" in text and "### 不清楚的段落" in text  # the bridge's regions
    assert "Open in Zotero" not in text and "Unclear passages" not in text


@pytest.mark.parametrize(
    ("field", "title", "expected"),
    [
        ("zh", "Anything", "zh"),
        ("zh-TW", "", "zh"),
        ("Chinese", "", "zh"),
        ("中文", "", "zh"),
        ("en", "统计学习方法", "en"),  # the field wins
        ("", "统计学习方法", "zh"),
        ("", "BERT 预训练模型综述", "zh"),
        ("", "Attention 机制 in neural machine translation", "en"),
        ("", "深層学習の理論", "en"),  # Japanese (kana)
        ("", "Deep Learning", "en"),
        ("chichewa", "", "en"),
    ],
)
def test_detect_language(field: str, title: str, expected: str) -> None:
    assert detect_language(field, title) == expected
