"""The bundled demo library: real metadata, the lineage graph later stages draw, annotations."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from bridge.model import Item, LibrarySnapshot
from bridge.sources import ItemStream, Source
from bridge.sources.sample import SampleSource, load_sample_json

KEY_RE = re.compile(r"^[23456789ABCDEFGHIJKLMNPQRSTUVWXYZ]{8}$")
STAMP_RE = re.compile(r"^202[45]-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ZOTERO7_COLORS = {"#ffd400", "#ff6666", "#5fb236", "#2ea8e5", "#a28ae5"}

TITLES = {
    "ImageNet Classification with Deep Convolutional Neural Networks",
    "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
    "Highway Networks",
    "Deep Residual Learning for Image Recognition",
    "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift",
    "Instance Normalization: The Missing Ingredient for Fast Stylization",
    "Group Normalization",
    "Squeeze-and-Excitation Networks",
    "Efficient Non-Maximum Suppression",
    "Soft-NMS — Improving Object Detection With One Line of Code",
    "Auto-Encoding Variational Bayes",
    "Learning Structured Output Representation using Deep Conditional Generative Models",
    "Generative Adversarial Nets",
    "Neural Machine Translation by Jointly Learning to Align and Translate",
    "Attention Is All You Need",
    "Adam: A Method for Stochastic Optimization",
    "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
    "Deep Learning",
    "统计学习方法",
}

# (proposing paper's citation key, method) and (method, method it extends): the brief's graph.
PROPOSES = {
    ("krizhevsky2012imagenet", "AlexNet"),
    ("srivastava2014dropout", "Dropout"),
    ("srivastava2015highway", "Highway Network"),
    ("he2016deep", "ResNet"),
    ("ioffe2015batch", "Batch Normalization"),
    ("ulyanov2016instance", "Instance Normalization"),
    ("wu2018group", "Group Normalization"),
    ("hu2018squeeze", "SENet"),
    ("neubeck2006efficient", "NMS"),
    ("bodla2017softnms", "Soft-NMS"),
    ("kingma2014autoencoding", "VAE"),
    ("sohn2015learning", "CVAE"),
    ("goodfellow2014generative", "GAN"),
    ("bahdanau2015neural", "Attention"),
    ("vaswani2017attention", "Transformer"),
    ("kingma2015adam", "Adam"),
    ("devlin2019bert", "BERT"),
}
EXTENDS = {
    ("ResNet", "Highway Network"),
    ("Instance Normalization", "Batch Normalization"),
    ("Group Normalization", "Batch Normalization"),
    ("Group Normalization", "Instance Normalization"),
    ("SENet", "ResNet"),
    ("Soft-NMS", "NMS"),
    ("CVAE", "VAE"),
    ("Transformer", "Attention"),
    ("BERT", "Transformer"),
}


@pytest.fixture(scope="module")
def snapshot() -> LibrarySnapshot:
    return SampleSource().read()


# Besides the nineteen papers and books: a web page and a standalone PDF (its own item).
OTHER_KINDS = ("webpage", "attachment")


@pytest.fixture(scope="module")
def papers(snapshot: LibrarySnapshot) -> tuple[Item, ...]:
    return tuple(item for item in snapshot.items if item.item_type not in OTHER_KINDS)


@pytest.fixture(scope="module")
def by_title(papers: tuple[Item, ...]) -> dict[str, Item]:
    return {item.title: item for item in papers}


def lineage(item: Item) -> tuple[list[str], list[str], str]:
    """A tiny stand-in for the real lineage parser: (proposes, extends, where they came from)."""
    proposes: list[str] = []
    extends: list[str] = []
    via = set()
    for tag in item.tags:
        kind, sep, method = tag.partition(":")
        if sep and kind in ("proposes", "extends"):
            (proposes if kind == "proposes" else extends).append(method.strip())
            via.add("tags")
    for line in item.fields.get("extra", "").splitlines():
        kind, sep, rest = line.partition(":")
        if sep and kind.strip().lower() in ("proposes", "extends"):
            methods = [m.strip() for m in rest.split(";") if m.strip()]
            (proposes if kind.strip().lower() == "proposes" else extends).extend(methods)
            via.add("extra")
    assert len(via) <= 1, f"{item.citation_key} mixes tags and Extra"
    return proposes, extends, via.pop() if via else ""


# ── the source contract ──────────────────────────────────────────────────────────────────────


def test_is_a_source(snapshot: LibrarySnapshot) -> None:
    source: Source = SampleSource()
    assert source.name == "sample"
    assert isinstance(snapshot.items, ItemStream)  # held whole: a tuple, its own heads
    assert isinstance(snapshot.items, tuple) and tuple(snapshot.items.heads()) == snapshot.items
    assert snapshot.incremental is False
    assert snapshot.warnings == ()
    assert snapshot.cursor and snapshot.cursor.startswith("sample:")


def test_all_keys_are_every_item(snapshot: LibrarySnapshot) -> None:
    assert snapshot.all_keys == frozenset(item.key for item in snapshot.items)
    assert len(snapshot.all_keys) == 19 + len(OTHER_KINDS)


def test_same_cursor_means_nothing_changed(snapshot: LibrarySnapshot) -> None:
    again = SampleSource().read(since=snapshot.cursor)
    assert again.items == () and again.incremental is True
    assert again.cursor == snapshot.cursor and again.all_keys == snapshot.all_keys
    stale = SampleSource().read(since="sample:0000000000000000")
    assert stale.items == snapshot.items and stale.incremental is False


def test_data_is_package_data() -> None:
    """Read through importlib.resources: works from a wheel, not only from the source tree."""
    folder = resources.files("bridge.sources").joinpath("sample_data")
    for name in ("library.json", "collections.json"):
        text = folder.joinpath(name).read_text(encoding="utf-8")
        assert "\\u" not in text  # written with ensure_ascii=False
        assert text.startswith("[\n  {")  # pretty-printed
        json.loads(text)


# ── the data itself ──────────────────────────────────────────────────────────────────────────


def test_the_nineteen_titles(papers: tuple[Item, ...]) -> None:
    assert len(papers) == 19
    assert {item.title for item in papers} == TITLES


def test_the_demo_also_shows_a_web_page_a_standalone_pdf_and_child_notes(
    snapshot: LibrarySnapshot, by_title: dict[str, Item]
) -> None:
    kinds = {item.item_type: item for item in snapshot.items}
    page, pdf = kinds["webpage"], kinds["attachment"]
    assert page.fields["url"].startswith("https://") and page.related
    assert pdf.attachments[0].key == pdf.key and len(pdf.annotations) == 2
    resnet = by_title["Deep Residual Learning for Image Recognition"]
    assert resnet.notes and "<h1>" in resnet.notes[0].html


def test_every_object_is_well_formed() -> None:
    objects, collections, _ = load_sample_json()
    keys = [o["key"] for o in objects + collections]
    assert len(keys) == len(set(keys))
    for o in objects + collections:
        assert KEY_RE.match(o["key"]) and o["data"]["key"] == o["key"]
        assert o["library"] == {"type": "user", "id": 1234567, "name": "demo"}
    for o in objects:
        data = o["data"]
        assert STAMP_RE.match(data["dateAdded"]) and STAMP_RE.match(data["dateModified"])
        assert data["dateAdded"] <= data["dateModified"]


def test_items_have_real_looking_metadata(papers: tuple[Item, ...]) -> None:
    for item in papers:
        assert KEY_RE.match(item.key)
        assert re.fullmatch(r"[a-z]+\d{4}[a-z]+", item.citation_key), item.citation_key
        assert item.creators and item.year and item.fields.get("abstractNote")
        assert item.collections and item.date_added.startswith(("2024", "2025"))
        venue = ("proceedingsTitle", "publicationTitle", "repository", "publisher")
        assert any(item.fields.get(f) for f in venue), item.citation_key
    keys = [item.citation_key for item in papers]
    assert len(set(keys)) == 19


@pytest.mark.parametrize(
    ("title", "item_type", "authors", "year"),
    [
        (
            "Deep Residual Learning for Image Recognition",
            "conferencePaper",
            ["Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"],
            2016,
        ),
        (
            "Highway Networks",
            "preprint",
            ["Rupesh Kumar Srivastava", "Klaus Greff", "Jürgen Schmidhuber"],
            2015,
        ),
        (
            "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
            "journalArticle",
            [
                "Nitish Srivastava",
                "Geoffrey Hinton",
                "Alex Krizhevsky",
                "Ilya Sutskever",
                "Ruslan Salakhutdinov",
            ],
            2014,
        ),
        ("Deep Learning", "book", ["Ian Goodfellow", "Yoshua Bengio", "Aaron Courville"], 2016),
        (
            "Soft-NMS — Improving Object Detection With One Line of Code",
            "conferencePaper",
            ["Navaneeth Bodla", "Bharat Singh", "Rama Chellappa", "Larry S. Davis"],
            2017,
        ),
    ],
)
def test_some_items_in_detail(
    by_title: dict[str, Item], title: str, item_type: str, authors: list[str], year: int
) -> None:
    item = by_title[title]
    assert item.item_type == item_type
    assert [c.display for c in item.creators] == authors
    assert item.year == year


def test_venue_fields_match_item_types(by_title: dict[str, Item]) -> None:
    assert by_title["Deep Residual Learning for Image Recognition"].fields["DOI"] == (
        "10.1109/CVPR.2016.90"
    )
    dropout = by_title["Dropout: A Simple Way to Prevent Neural Networks from Overfitting"]
    assert dropout.fields["publicationTitle"] == "Journal of Machine Learning Research"
    highway = by_title["Highway Networks"]
    assert highway.fields["repository"] == "arXiv"
    assert highway.fields["archiveID"] == "arXiv:1505.00387"
    assert by_title["Deep Learning"].fields["publisher"] == "MIT Press"
    assert by_title["统计学习方法"].fields["publisher"] == "清华大学出版社"


def test_chinese_book_has_a_single_field_creator(by_title: dict[str, Item]) -> None:
    book = by_title["统计学习方法"]
    assert book.item_type == "book"
    (creator,) = book.creators
    assert creator.name_only and creator.last_name == "李航" and creator.first_name == ""
    assert creator.display == "李航"


def test_citation_keys_come_from_both_places(papers: tuple[Item, ...]) -> None:
    via_field = [i for i in papers if i.fields.get("citationKey")]
    via_extra = [i for i in papers if not i.fields.get("citationKey")]
    assert via_field and via_extra
    for item in via_extra:
        assert f"Citation Key: {item.citation_key}" in item.fields["extra"]
    for item in via_field:
        assert item.citation_key == item.fields["citationKey"]


def test_collections_are_paths(snapshot: LibrarySnapshot) -> None:
    paths = {path for item in snapshot.items for path in item.collections}
    assert {
        "Vision/Detection",
        "Vision/Normalization",
        "Generative",
        "NLP",
        "Optimization",
        "Books",
    } <= paths
    by_key = {i.citation_key: i for i in snapshot.items}
    assert "Vision/Detection" in by_key["bodla2017softnms"].collections
    assert by_key["li2012tongji"].collections == ("Books",)


# ── lineage and relations ────────────────────────────────────────────────────────────────────


def test_lineage_edges_are_exactly_the_expected_graph(papers: tuple[Item, ...]) -> None:
    proposes: set[tuple[str, str]] = set()
    extends: set[tuple[str, str]] = set()
    vias: dict[str, int] = {}
    for item in papers:
        proposed, extended, via = lineage(item)
        assert len(proposed) <= 1, item.citation_key
        proposes |= {(item.citation_key, method) for method in proposed}
        extends |= {(method, base) for method in proposed for base in extended}
        assert not extended or proposed, f"{item.citation_key} extends without proposing"
        vias[via] = vias.get(via, 0) + 1
    assert proposes == PROPOSES
    assert extends == EXTENDS
    assert vias["tags"] >= 8 and vias["extra"] >= 8 and vias[""] == 2  # half and half; books


def test_extra_lineage_uses_semicolons_for_several_methods(by_title: dict[str, Item]) -> None:
    gn = by_title["Group Normalization"]
    assert "extends: Batch Normalization; Instance Normalization" in gn.fields["extra"].splitlines()


def test_gn_and_bn_are_related_both_ways(by_title: dict[str, Item]) -> None:
    gn = by_title["Group Normalization"]
    bn = next(i for t, i in by_title.items() if t.startswith("Batch Normalization:"))
    assert gn.related == (bn.key,)
    assert bn.related == (gn.key,)
    attention = by_title["Attention Is All You Need"]  # ↔ the Illustrated Transformer page
    assert attention.related == ("J8ALM4WT",)
    others = [i for i in by_title.values() if i not in (gn, bn, attention)]
    assert all(i.related == () for i in others)


# ── attachments and annotations ──────────────────────────────────────────────────────────────


def test_four_papers_carry_annotated_pdfs(papers: tuple[Item, ...]) -> None:
    annotated = {i.citation_key: i for i in papers if i.annotations}
    assert set(annotated) == {
        "he2016deep",
        "bodla2017softnms",
        "wu2018group",
        "vaswani2017attention",
    }
    for item in annotated.values():
        (pdf,) = item.attachments
        assert pdf.content_type == "application/pdf" and pdf.link_mode == "imported_file"
        assert pdf.path.startswith("storage:") and pdf.path.endswith(".pdf")
        assert 3 <= len(pdf.annotations) <= 6
        kinds = [a.annotation_type for a in pdf.annotations]
        assert kinds.count("highlight") >= len(kinds) - 1 - kinds.count("note")
        assert {"note", "underline"} & set(kinds)
    assert all(not i.attachments for i in papers if i.citation_key not in annotated)


def test_annotations_look_like_zotero_made_them(snapshot: LibrarySnapshot) -> None:
    annotations = [a for item in snapshot.items for a in item.annotations]
    colors = {a.color for a in annotations}
    assert colors >= ZOTERO7_COLORS and "#ffed00" in colors
    assert colors <= ZOTERO7_COLORS | {"#ffed00"}
    assert any(a.comment for a in annotations) and any(a.tags for a in annotations)
    for a in annotations:
        assert KEY_RE.match(a.key)
        assert re.fullmatch(r"\d{5}\|\d{6}\|\d{5}", a.sort_index)
        position = json.loads(a.position)
        assert position["pageIndex"] == a.page_index == int(a.page_label) - 1
        assert position["rects"] and all(len(r) == 4 for r in position["rects"])
        assert int(a.sort_index[:5]) == a.page_index
        assert (a.text == "") == (a.annotation_type == "note")
        assert STAMP_RE.match(a.date_added)


def test_annotations_are_in_reading_order(snapshot: LibrarySnapshot) -> None:
    for item in snapshot.items:
        for attachment in item.attachments:
            indexes = [a.sort_index for a in attachment.annotations]
            assert indexes == sorted(indexes)


def test_child_notes_are_not_items() -> None:
    objects, _, _ = load_sample_json()
    notes = [o for o in objects if o["data"]["itemType"] == "note"]
    assert notes  # the sample carries one, and it must not become an item
    keys = SampleSource().read().all_keys
    assert keys is not None and not {n["key"] for n in notes} & keys
