"""The API JSON converter: shapes Zotero really sends, and the garbage a network can send."""

from __future__ import annotations

import copy
import json

import pytest

from bridge.model import Library
from bridge.sources.apijson import (
    collection_paths,
    extract_citation_key,
    items_from_api,
    normalise_timestamp,
)

LIB = {"type": "user", "id": 1234567, "name": "demo"}
URI = "http://zotero.org/users/1234567/items/"
CVPR = "2016 IEEE Conference on Computer Vision and Pattern Recognition (CVPR)"


def obj(data: dict, library: dict | None = None) -> dict:
    """Wrap `data` the way `GET /users/X/items` does."""
    return {
        "key": data["key"],
        "version": data.get("version", 7),
        "library": library or LIB,
        "links": {},
        "meta": {},
        "data": data,
    }


def paper(key: str = "ABCD2345", **extra: object) -> dict:
    data = {
        "key": key,
        "version": 7,
        "itemType": "conferencePaper",
        "title": "Deep Residual Learning for Image Recognition",
        "creators": [
            {"creatorType": "author", "firstName": "Kaiming", "lastName": "He"},
            {"creatorType": "editor", "name": "CVPR Committee"},
        ],
        "abstractNote": "",
        "date": "2016",
        "proceedingsTitle": CVPR,
        "DOI": "10.1109/CVPR.2016.90",
        "pages": "770-778",
        "extra": "",
        "citationKey": "",
        "tags": [{"tag": "cnn"}, {"tag": "auto", "type": 1}, {"tag": "cnn"}],
        "collections": [],
        "relations": {},
        "dateAdded": "2024-03-02T16:22:10Z",
        "dateModified": "2024-03-02 18:00:00",
    }
    data.update(extra)
    return obj(data)


def attachment(key: str, parent: str, **extra: object) -> dict:
    data = {
        "key": key,
        "itemType": "attachment",
        "parentItem": parent,
        "linkMode": "imported_file",
        "title": "Full Text PDF",
        "contentType": "application/pdf",
        "filename": "He - 2016.pdf",
        "md5": None,
        "mtime": None,
        "tags": [],
        "relations": {},
    }
    data.update(extra)
    return obj(data)


def annotation(key: str, parent: str, **extra: object) -> dict:
    data = {
        "key": key,
        "itemType": "annotation",
        "parentItem": parent,
        "annotationType": "highlight",
        "annotationText": "Deeper neural networks",
        "annotationComment": "",
        "annotationColor": "#FFD400",
        "annotationPageLabel": "770",
        "annotationSortIndex": "00000|000100|00200",
        "annotationPosition": '{"pageIndex":0,"rects":[[1,2,3,4]]}',
        "tags": [{"tag": "key-idea"}],
        "dateAdded": "2025-01-01T10:00:00Z",
        "dateModified": "2025-01-01T10:00:00Z",
    }
    data.update(extra)
    return obj(data)


def convert(objects: list, collections: list | None = None) -> tuple[list, list[str]]:
    warnings: list[str] = []
    return items_from_api(objects, collections, warnings=warnings), warnings


# ── the ordinary shapes ──────────────────────────────────────────────────────────────────────


def test_regular_item_fields_creators_tags() -> None:
    (item,), warnings = convert([paper()])
    assert warnings == []
    assert item.key == "ABCD2345" and item.item_type == "conferencePaper" and item.version == 7
    assert item.fields == {
        "title": "Deep Residual Learning for Image Recognition",
        "date": "2016",
        "proceedingsTitle": CVPR,
        "DOI": "10.1109/CVPR.2016.90",
        "pages": "770-778",
    }
    assert [c.display for c in item.creators] == ["Kaiming He", "CVPR Committee"]
    assert item.creators[0].name_only is False
    assert item.creators[1].name_only and item.creators[1].first_name == ""
    assert item.creators[1].creator_type == "editor"
    assert item.tags == ("auto", "cnn")  # sorted like the sqlite source, each once
    assert item.trashed is False and item.related == () and item.collections == ()
    assert item.library == Library()


def test_structural_keys_are_not_fields() -> None:
    (item,), _ = convert([paper(deleted=1, parentItem="", inPublications=True)])
    for name in (
        "key",
        "version",
        "itemType",
        "creators",
        "tags",
        "collections",
        "relations",
        "dateAdded",
        "dateModified",
        "deleted",
        "parentItem",
        "inPublications",
    ):
        assert name not in item.fields
    assert item.trashed is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-02T16:22:10Z", "2024-03-02T16:22:10Z"),
        ("2024-03-02 16:22:10", "2024-03-02T16:22:10Z"),  # sqlite's UTC text
        ("2024-03-02T16:22:10.123Z", "2024-03-02T16:22:10Z"),
        ("2024-03-02T18:22:10+02:00", "2024-03-02T16:22:10Z"),
        ("2024-03-02", "2024-03-02T00:00:00Z"),
    ],
)
def test_normalise_timestamp(value: str, expected: str) -> None:
    assert normalise_timestamp(value) == expected


def test_item_dates_are_normalised() -> None:
    (item,), _ = convert([paper()])
    assert item.date_added == "2024-03-02T16:22:10Z"
    assert item.date_modified == "2024-03-02T18:00:00Z"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"citationKey": "he2016deep", "extra": "Citation Key: other"}, "he2016deep"),
        ({"citationKey": "", "extra": "arXiv: 1512.03385\nCitation Key: he2016deep"}, "he2016deep"),
        ({"extra": "citation key:  he2016deep  \nproposes: ResNet"}, "he2016deep"),
        ({"extra": "CITATION KEY: he2016deep"}, "he2016deep"),
        ({"extra": "Not a Citation Key: he2016deep"}, ""),
        ({}, ""),
    ],
)
def test_extract_citation_key(fields: dict, expected: str) -> None:
    assert extract_citation_key(fields) == expected


def test_citation_key_from_extra_is_not_copied_into_fields() -> None:
    (item,), _ = convert([paper(extra="Citation Key: he2016deep\nproposes: ResNet")])
    assert item.citation_key == "he2016deep"
    assert "citationKey" not in item.fields
    assert item.fields["extra"] == "Citation Key: he2016deep\nproposes: ResNet"


def test_native_citation_key_stays_a_field() -> None:
    (item,), _ = convert([paper(citationKey="he2016deep")])
    assert item.citation_key == "he2016deep"
    assert item.fields["citationKey"] == "he2016deep"


def test_related_from_one_uri_or_a_list() -> None:
    one = paper("AAAA2222", relations={"dc:relation": URI + "BBBB3333"})
    many = paper(
        "BBBB3333",
        relations={
            "dc:relation": [URI + "CCCC4444", URI + "AAAA2222", URI + "BBBB3333"],
            "owl:sameAs": URI + "DDDD5555",
        },
    )
    group = paper(
        "CCCC4444", relations={"dc:relation": "http://zotero.org/groups/9/items/EEEE6666"}
    )
    items, warnings = convert([one, many, group])
    assert warnings == []
    assert [i.related for i in items] == [("BBBB3333",), ("AAAA2222", "CCCC4444"), ("EEEE6666",)]


def test_collections_become_full_paths() -> None:
    collections = [
        {
            "key": "COLL2222",
            "data": {"key": "COLL2222", "name": "Vision", "parentCollection": False},
        },
        {
            "key": "COLL3333",
            "data": {"key": "COLL3333", "name": "Detection", "parentCollection": "COLL2222"},
        },
        {"key": "COLL4444", "data": {"key": "COLL4444", "name": "NLP", "parentCollection": False}},
    ]
    item_obj = paper(collections=["COLL3333", "UNKNOWN9", "COLL4444", "COLL2222"])
    (item,), warnings = convert([item_obj], collections)
    assert warnings == []
    assert item.collections == ("NLP", "Vision", "Vision/Detection")


def test_collection_cycles_and_missing_parents_warn() -> None:
    warnings: list[str] = []
    paths = collection_paths(
        [
            {"data": {"key": "AAAA2222", "name": "A", "parentCollection": "BBBB3333"}},
            {"data": {"key": "BBBB3333", "name": "B", "parentCollection": "AAAA2222"}},
            {"data": {"key": "CCCC4444", "name": "C", "parentCollection": "GONE5555"}},
        ],
        warnings,
    )
    assert paths["CCCC4444"] == "C"
    assert paths["AAAA2222"] == "B/A"
    assert any("cycle" in w for w in warnings)
    assert any("GONE5555" in w for w in warnings)


def test_attachments_and_annotations() -> None:
    objects = [
        annotation("ANN22222", "ATT22222", annotationSortIndex="00001|000010|00100"),
        annotation(
            "ANN33333",
            "ATT22222",
            annotationType="note",
            annotationText=None,
            annotationComment="Compare with Highway",
            annotationColor="#A28AE5",
        ),
        paper(),
        attachment("ATT22222", "ABCD2345"),
        attachment(
            "ATT33333",
            "ABCD2345",
            linkMode="linked_file",
            path="attachments:x.pdf",
            filename="",
            contentType="application/epub+zip",
        ),
        {
            "key": "NOTE2222",
            "data": {
                "key": "NOTE2222",
                "itemType": "note",
                "parentItem": "ABCD2345",
                "note": "<p>hi</p>",
            },
        },
    ]
    (item,), warnings = convert(objects)
    assert warnings == []
    first, second = item.attachments
    assert first.key == "ATT22222" and first.link_mode == "imported_file"
    assert first.path == "storage:He - 2016.pdf" and first.title == "Full Text PDF"
    assert first.content_type == "application/pdf"
    assert second.path == "attachments:x.pdf" and second.annotations == ()
    note, highlight = first.annotations  # reading order: sortIndex
    assert note.key == "ANN33333" and note.annotation_type == "note" and note.text == ""
    assert note.comment == "Compare with Highway" and note.color == "#a28ae5"
    assert highlight.annotation_type == "highlight" and highlight.color == "#ffd400"
    assert highlight.text == "Deeper neural networks" and highlight.page_label == "770"
    assert highlight.sort_index == "00001|000010|00100" and highlight.tags == ("key-idea",)
    assert highlight.attachment_key == "ATT22222" and highlight.page_index == 0
    assert highlight.date_added == "2025-01-01T10:00:00Z"


def test_decoded_position_is_kept_as_json_text() -> None:
    position = {"pageIndex": 2, "rects": [[1.5, 2, 3, 4]]}
    objects = [
        paper(),
        attachment("ATT22222", "ABCD2345"),
        annotation("ANN22222", "ATT22222", annotationPosition=position),
    ]
    (item,), _ = convert(objects)
    assert json.loads(item.annotations[0].position) == position
    assert item.annotations[0].page_index == 2


def test_bare_data_dicts_and_group_libraries() -> None:
    bare = copy.deepcopy(paper()["data"])
    group = paper("GRP22222")
    group["library"] = {"type": "group", "id": 4242, "name": "lab"}
    items, warnings = convert([bare, group])
    assert warnings == []
    assert [i.key for i in items] == ["ABCD2345", "GRP22222"]
    assert items[1].library == Library("group", 4242)
    forced = items_from_api([group], library=Library("group", 7))
    assert forced[0].library == Library("group", 7)


# ── robustness: garbage in one object never stops the others ────────────────────────────────


def test_garbage_values_warn_and_the_rest_converts() -> None:
    bad = paper(
        "BAD22222",
        title={"oops": 1},
        volume=25,
        creators=[{"creatorType": "author", "firstName": "Ok", "lastName": "Person"}, 42, {}],
        tags=[{"tag": "fine"}, {"tag": 3}, None],
        collections="COLL2222",
        relations={"dc:relation": ["not a uri", 17]},
        dateAdded="yesterday",
        dateModified=12.5,
        deleted="0",
    )
    bad["version"] = "twelve"
    good = paper("GOOD2222")
    items, warnings = convert([bad, good])
    assert [i.key for i in items] == ["BAD22222", "GOOD2222"]
    broken = items[0]
    assert "title" not in broken.fields and broken.fields["volume"] == "25"
    assert [c.display for c in broken.creators] == ["Ok Person"]
    assert broken.tags == ("fine",)
    assert broken.collections == () and broken.related == ()
    assert broken.date_added == "" and broken.date_modified == ""
    assert broken.trashed is False and broken.version == 0
    joined = "\n".join(warnings)
    for needle in (
        "title",
        "creator 1",
        "creator 2",
        "tag",
        "collections",
        "not a uri",
        "dateAdded",
        "dateModified",
        "version",
    ):
        assert needle in joined, needle
    assert all(w.startswith("item BAD22222") for w in warnings)
    assert items[1] == convert([good])[0][0]


@pytest.mark.parametrize(
    "garbage",
    [None, 17, "text", [], {}, {"data": "x"}, {"key": "NOTYPE22", "data": {"title": "x"}}],
)
def test_unusable_objects_are_left_out_with_a_warning(garbage: object) -> None:
    items, warnings = convert([garbage, paper()])
    assert [i.key for i in items] == ["ABCD2345"]
    assert len(warnings) == 1 and "left out" in warnings[0]


def test_not_a_list_at_all() -> None:
    items, warnings = convert({"oops": True})  # type: ignore[arg-type]
    assert items == [] and warnings


def test_bad_children_warn_and_are_dropped() -> None:
    objects = [
        paper(),
        attachment("ATT22222", "ABCD2345", title=["x"]),
        attachment("ORPHAN22", "MISSING2"),
        attachment("STANDALN", ""),  # a top-level file: an item of its own
        annotation("ANN22222", "ATT22222", annotationType="sticker"),
        annotation("ANN33333", "ATT22222", annotationColor="yellow"),
        annotation("ANN44444", "NOWHERE2"),
        annotation("ANN55555", "ATT22222", annotationComment=["x"], annotationColor=None),
    ]
    (item, standalone), warnings = convert(objects)
    assert standalone.item_type == "attachment" and standalone.attachments[0].key == "STANDALN"
    (att,) = item.attachments
    assert att.title == ""
    assert [a.key for a in att.annotations] == ["ANN33333", "ANN55555"]
    assert att.annotations[0].color == "#ffd400"  # unreadable colour → Zotero's default
    assert att.annotations[1].comment == "" and att.annotations[1].color == "#ffd400"
    joined = "\n".join(warnings)
    for needle in (
        "attachment ATT22222: title",
        "ORPHAN22",
        "sticker",
        "yellow",
        "NOWHERE2",
        "annotation ANN55555: annotationComment",
    ):
        assert needle in joined, needle
    assert "STANDALN" not in joined


def test_unexpected_exception_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.sources.apijson as apijson

    real = apijson._creators

    def explode(data, where, sink):  # type: ignore[no-untyped-def]
        if data["key"] == "BOOM2222":
            raise RuntimeError("kaboom")
        return real(data, where, sink)

    monkeypatch.setattr(apijson, "_creators", explode)
    items, warnings = convert([paper("BOOM2222"), paper()])
    assert [i.key for i in items] == ["ABCD2345"]
    assert warnings == ["item BOOM2222: not converted (RuntimeError: kaboom)"]


def test_warnings_parameter_is_optional() -> None:
    assert items_from_api([None, paper()])[0].key == "ABCD2345"  # type: ignore[list-item]
