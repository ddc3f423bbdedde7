"""Search over the sample library's vault: a labelled query set (English and Chinese) must
find its notes in the top 5, highlights come with their block link, an edited note is found
by its new words after one sync, and the index file keeps the state folder's no-link rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.search.engine import Filters, result_json, search
from bridge.search.indexer import refresh
from bridge.search.passages import body_passages, read_note
from bridge.search.service import open_index
from bridge.search.store import INDEX_NAME, SearchIndex
from bridge.search.tokens import terms
from bridge.statefolder import StateFileRefused
from bridge.sync import sync
from tests.helpers import settled

# A user's own notes beside the bridge's: search covers every note of the vault.
USER_NOTES = {
    "Notes/归一化笔记.md": "# 归一化笔记\n\n批归一化在每个小批量上对激活值做标准化，"
    "批量很小时统计量估计不准。组归一化按通道分组计算均值和方差，与批量大小无关。\n",
    "Notes/检测笔记.md": "---\ntags: [检测]\n---\n非极大值抑制先按得分排序检测框，"
    "再删除与最高分框重叠度超过阈值的框。软性非极大值抑制按重叠度衰减得分。\n",
    "Notes/Ideas.md": "Idea: combine soft suppression with a learned rescoring head, trained on "
    "crowded scenes.\n\n注意力机制可以用来给候选框重新打分。\n",
}

# (query, the notes a reader expects in the top 5). Judged by reading the notes, not by
# running the search: the NMS paper is relevant to "overlapping boxes" but never says so.
LABELLED = [
    ("which papers handle overlapping boxes?",
     ["Papers/bodla2017softnms.md", "Papers/neubeck2006efficient.md"]),
    ("normalisation for small batches", ["Papers/wu2018group.md"]),
    ("internal covariate shift", ["Papers/ioffe2015batch.md"]),
    ("fast stylization", ["Papers/ulyanov2016instance.md"]),
    ("residual learning for deeper networks", ["Papers/he2016deep.md"]),
    ("gating units that regulate information flow", ["Papers/srivastava2015highway.md"]),
    ("randomly drop units to prevent overfitting", ["Papers/srivastava2014dropout.md"]),
    ("channel-wise feature responses", ["Papers/hu2018squeeze.md"]),
    ("reparameterization of the variational lower bound", ["Papers/kingma2014autoencoding.md"]),
    ("conditional generative model for structured output", ["Papers/sohn2015learning.md"]),
    ("generator and discriminator game", ["Papers/goodfellow2014generative.md"]),
    ("jointly learning to align and translate", ["Papers/bahdanau2015neural.md"]),
    ("dispensing with recurrence entirely, attention only", ["Papers/vaswani2017attention.md"]),
    ("adaptive estimates of lower-order moments", ["Papers/kingma2015adam.md"]),
    ("bidirectional pre-training for language understanding", ["Papers/devlin2019bert.md"]),
    ("large convolutional network on ImageNet", ["Papers/krizhevsky2012imagenet.md"]),
    ("deep learning textbook", ["Papers/goodfellow2016deep.md"]),
    ("Soft-NMS", ["Papers/bodla2017softnms.md", "Methods/Soft-NMS.md"]),
    ("learned rescoring in crowded scenes", ["Notes/Ideas.md"]),
    ("统计学习", ["Papers/li2012tongji.md"]),
    ("监督学习 支持向量机", ["Papers/li2012tongji.md"]),
    ("隐马尔可夫模型和条件随机场", ["Papers/li2012tongji.md"]),
    ("小批量 归一化", ["Notes/归一化笔记.md"]),
    ("非极大值抑制", ["Notes/检测笔记.md"]),
    ("注意力机制", ["Notes/Ideas.md"]),
]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Config:
    vault = tmp_path_factory.mktemp("search") / "vault"
    vault.mkdir()
    config = Config(vault=vault, source="sample")
    sync(config)
    for rel, text in USER_NOTES.items():
        (vault / rel).parent.mkdir(exist_ok=True)
        (vault / rel).write_text(text, encoding="utf-8")
    return config


def top5(config: Config, query: str, filters: Filters | None = None) -> list[str]:
    with open_index(config) as index:
        return [r.doc["path"] for r in search(index, query, filters, limit=5)]


def test_labelled_queries_find_their_notes_in_the_top_5(demo: Config) -> None:
    assert len(LABELLED) >= 20 and sum(any(ord(c) > 0x3000 for c in q) for q, _ in LABELLED) >= 6
    found, wanted, missed = 0, 0, []
    for query, expected in LABELLED:
        top = top5(demo, query)
        found += sum(note in top for note in expected)
        wanted += len(expected)
        missed += [(query, note) for note in expected if note not in top]
    recall = found / wanted
    assert recall >= 0.9, f"recall@5 {recall:.2f}; missed {missed}"


def test_a_chinese_word_finds_the_longer_word_it_is_part_of(demo: Config) -> None:
    assert terms("统计学习") == ["统计", "计学", "学习"]
    assert top5(demo, "统计学习")[0] == "Papers/li2012tongji.md"  # title: 统计学习方法


def test_a_highlight_is_found_by_a_phrase_with_its_block_link_and_page(demo: Config) -> None:
    with open_index(demo) as index:
        results = search(index, "decays the detection scores as a continuous function")
        info = result_json(results[0], "decays the detection scores")
    assert info["note"] == "Papers/bodla2017softnms.md" and info["citekey"] == "bodla2017softnms"
    passage = info["passages"][0]
    assert passage["kind"] == "highlight" and passage["block"] == "tibscmwg"
    assert passage["link"] == "[[Papers/bodla2017softnms#^tibscmwg]]"
    assert passage["page"] == 1
    assert passage["pdf"] == ("zotero://open-pdf/library/items/MBWQYLYC?page=1&annotation=TIBSCMWG")
    assert "decays the detection scores" in passage["text"]
    assert (info["title"], info["year"]) == (
        "Soft-NMS — Improving Object Detection With One Line of Code", 2017)  # fmt: skip


def test_filters_keep_only_what_they_name(demo: Config) -> None:
    methods = top5(demo, "Soft-NMS", Filters(methods=True))
    assert methods[0] == "Methods/Soft-NMS.md" and all(m.startswith("Methods/") for m in methods)
    papers = top5(demo, "normalization", Filters(papers=True))
    assert papers and all(p.startswith("Papers/") for p in papers)
    assert top5(demo, "统计学习", Filters(status="to-read"))[0] == "Papers/li2012tongji.md"
    assert top5(demo, "统计学习", Filters(status="done")) == []
    assert top5(demo, "suppression", Filters(tag="检测")) == []
    assert top5(demo, "非极大值抑制", Filters(tag="检测")) == ["Notes/检测笔记.md"]
    assert top5(demo, "Soft-NMS", Filters(papers=True, since="2030-01-01")) == []
    assert top5(demo, "Soft-NMS", Filters(papers=True, since="2024-05-01"))[0] == (
        "Papers/bodla2017softnms.md"  # added to Zotero 2024-05-21
    )
    assert "Notes/Ideas.md" in top5(demo, "rescoring", Filters(since="2024-01-01"))  # by mtime


def test_an_edited_note_is_found_by_its_new_words_after_one_sync(tmp_path: Path) -> None:
    config = Config(vault=tmp_path / "vault", source="sample")
    config.vault.mkdir()
    sync(config)
    assert top5(config, "tokamak stellarator") == []  # builds the index
    note = config.vault / "Papers" / "he2016deep.md"
    note.write_text(
        note.read_text(encoding="utf-8") + "\nMy note: residual blocks remind me of a tokamak.\n",
        encoding="utf-8",
    )
    settled(note)
    with SearchIndex(config.vault) as index:  # not found before the sync re-indexes it
        assert search(index, "tokamak") == []
    sync(config)
    assert top5(config, "tokamak") == ["Papers/he2016deep.md"]
    note.unlink()
    sync(config)
    assert top5(config, "tokamak") == []


def test_a_sync_without_an_index_builds_none(tmp_path: Path) -> None:
    config = Config(vault=tmp_path / "vault", source="sample")
    config.vault.mkdir()
    sync(config)
    assert not (config.vault / ".zotero-bridge" / INDEX_NAME).exists()


def test_the_index_is_never_opened_through_a_link(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    (vault / ".zotero-bridge").mkdir(parents=True)
    outside = tmp_path / "precious.sqlite"
    outside.write_bytes(b"not yours")
    os.symlink(outside, vault / ".zotero-bridge" / INDEX_NAME)
    with pytest.raises(StateFileRefused):
        SearchIndex(vault)
    assert outside.read_bytes() == b"not yours"


def test_passages_are_cut_at_paragraphs_and_named_blocks() -> None:
    body = (
        "# Ideas\n\nFirst paragraph about boxes. ^first-idea\n\nSecond one,\nover two lines.\n\n"
        "> A quoted highlight\n> [p. 7](zotero://open-pdf/library/items/ABCD2345?page=7)\n\n"
        "^abcd2345\n\n## Empty\n- **Problem:** \n"
    )
    passages = body_passages(body)
    assert [(p.kind, p.text, p.block, p.page, p.section) for p in passages] == [
        ("text", "First paragraph about boxes.", "first-idea", None, "Ideas"),
        ("text", "Second one, over two lines.", None, None, "Ideas"),
        ("highlight", "A quoted highlight", "abcd2345", 7, "Ideas"),
    ]


def test_a_note_with_broken_properties_is_still_searched() -> None:
    doc = read_note("Notes/x.md", "---\ntitle: [unclosed\n---\nkeyword paragraph\n")
    assert doc.kind == "note" and any("keyword" in p.text for p in doc.passages)


def test_refresh_reads_only_what_changed(demo: Config) -> None:
    assert demo.vault is not None
    notes = sorted(demo.vault.rglob("*.md"))
    for note in notes:  # saved a while ago: their etags can be trusted
        settled(note, 30)
    with open_index(demo) as index:
        first = refresh(index, None)
        again = refresh(index, None)
        settled(notes[0], 20)
        one = refresh(index, None)
    assert first.indexed == len(notes)
    assert (again.indexed, again.dropped, one.indexed) == (0, 0, 1)


def test_reciprocal_rank_fusion_favours_what_both_rankings_find() -> None:
    from bridge.search.semantic import fuse
    from bridge.search.store import Hit

    def hits(*ids: int) -> list[Hit]:
        return [Hit(i, i, "text", "", None, None, "", 1.0) for i in ids]

    fused = fuse([hits(1, 2, 3), hits(3, 4, 1)])
    assert [h.passage_id for h in fused] == [1, 3, 2, 4]  # 1: ranks 1+3, 3: ranks 3+1 (tie)
    assert fused[0].score == round((1 / 61 + 1 / 63) * 1000, 3)
