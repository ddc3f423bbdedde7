"""The link index must count links exactly as Obsidian does.

The oracle test compares against the tables real Obsidian computed for a reference vault; the small
tests pin each rule on its own so a regression names the rule it broke.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.vault.links import Link, LinkIndex, parse_canvas_links, parse_links


def index(files: dict[str, str | None]) -> LinkIndex:
    return LinkIndex.from_files(files)


def resolved_from(files: dict[str, str | None], source: str) -> dict[str, int]:
    return index(files).resolved_links()[source]


def unresolved_from(files: dict[str, str | None], source: str) -> dict[str, int]:
    return index(files).unresolved_links()[source]


# --- the oracle --------------------------------------------------------------------------------


def test_reproduces_obsidian_link_tables_for_reference_vault(obsidian_reference: Path) -> None:
    built = LinkIndex.build(obsidian_reference / "vault")
    expected_resolved = json.loads((obsidian_reference / "resolvedLinks.json").read_text("utf-8"))
    expected_unresolved = json.loads(
        (obsidian_reference / "unresolvedLinks.json").read_text("utf-8")
    )
    assert built.resolved_links() == expected_resolved
    assert built.unresolved_links() == expected_unresolved


# --- which files are notes ---------------------------------------------------------------------


def test_markdown_and_canvas_files_are_sources_other_files_only_targets() -> None:
    built = index({"a.md": "[[b.base]]", "b.base": None, "c.canvas": "{}", "d.png": None})
    assert set(built.resolved_links()) == {"a.md", "c.canvas"}
    assert built.resolved_links()["a.md"] == {"b.base": 1}


def test_build_skips_dot_folders_and_dot_files(tmp_path: Path) -> None:
    (tmp_path / ".obsidian").mkdir()
    (tmp_path / ".obsidian" / "x.md").write_text("[[a]]", "utf-8")
    (tmp_path / ".trash").mkdir()
    (tmp_path / ".trash" / "a.md").write_text("", "utf-8")
    (tmp_path / "Sub").mkdir()
    (tmp_path / "Sub" / "note.md").write_text("[[a]] ![[pic.png]]", "utf-8")
    (tmp_path / "pic.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.md").write_text("[[a]]", "utf-8")
    built = LinkIndex.build(tmp_path)
    assert built.resolved_links() == {"Sub/note.md": {"pic.png": 1}}
    assert built.unresolved_links() == {"Sub/note.md": {"a": 1}}


# --- wikilinks ---------------------------------------------------------------------------------


def test_wikilink_parts_alias_heading_block_and_embed() -> None:
    links = parse_links("[[NMS|non-max]] [[Methods/NMS#Setup]]\n![[fig.png|400]] [[NMS#^ab12]]")
    assert links == [
        Link("NMS", "non-max", "", False, "wiki", 0),
        Link("Methods/NMS", None, "#Setup", False, "wiki", 0),
        Link("fig.png", "400", "", True, "wiki", 1),
        Link("NMS", None, "#^ab12", False, "wiki", 1),
    ]


def test_alias_heading_and_block_links_all_count_for_the_target() -> None:
    files = {"src.md": "[[t|x]] [[t#H]] [[t#H#Sub|y]] [[t#^b]] ![[t]]", "t.md": ""}
    assert resolved_from(files, "src.md") == {"t.md": 5}


def test_empty_wikilink_is_not_a_link_but_a_lone_pipe_is_a_link_text() -> None:
    # Obsidian splits the alias only when text precedes the `|`.
    files = {"src.md": "[[]] [[|]] [[|alias]] [[|#alias]]"}
    assert resolved_from(files, "src.md") == {}
    assert unresolved_from(files, "src.md") == {"|": 2, "|alias": 1}


def test_heading_and_block_links_without_a_path_point_to_the_note_itself() -> None:
    files = {"src.md": "[[#Heading]] [[#^block|see]] ![[#^block]]\n\n## Heading"}
    assert resolved_from(files, "src.md") == {"src.md": 3}


def test_escaped_pipe_in_table_still_separates_the_alias() -> None:
    files = {"src.md": "| a | b |\n|---|---|\n| [[t\\|shown]] | x |", "t.md": ""}
    assert resolved_from(files, "src.md") == {"t.md": 1}


def test_link_line_numbers_count_frontmatter_lines() -> None:
    text = '---\nup: "[[a]]"\n---\n\nbody [[b]]\n'
    assert [(link.target, link.line) for link in parse_links(text)] == [("a", 1), ("b", 4)]


# --- markdown links ----------------------------------------------------------------------------


def test_markdown_links_with_extension_encoding_angle_brackets_and_no_suffix() -> None:
    files = {
        "src.md": (
            "[a](My%20Note.md) [b](<My Note.md>) [c](Folder/My%20Note.md#Part) "
            "[d](My%20Note) ![e](pic.png)"
        ),
        "Folder/My Note.md": "",
        "pic.png": None,
    }
    assert resolved_from(files, "src.md") == {"Folder/My Note.md": 4, "pic.png": 1}


def test_markdown_link_fields() -> None:
    assert parse_links('[shown](Some%20Note.md#Head "title")') == [
        Link("Some Note.md", "shown", "#Head", False, "markdown", 0)
    ]


def test_external_and_empty_markdown_links_are_not_links() -> None:
    text = "[w](https://x.org/a.md) [z](zotero://select/items/1) [m](mailto:a@b.c) []() [x]()"
    assert parse_links(text) == []


def test_markdown_link_to_heading_only_is_a_self_link() -> None:
    assert resolved_from({"src.md": "[up](#Top)"}, "src.md") == {"src.md": 1}


def test_malformed_percent_encoding_is_kept_as_written() -> None:
    assert unresolved_from({"src.md": "[x](100%25%zz.md)"}, "src.md") == {"100%25%zz": 1}


# --- what is skipped and what is not -------------------------------------------------------------


def test_links_in_fenced_indented_and_inline_code_are_skipped() -> None:
    text = (
        "```\n[[fenced]]\n```\n"
        "~~~md\n[[tilde]]\n~~~\n"
        "- item\n  ```sh\n  [[fenced in list]]\n  ```\n\n"
        "para\n\n    [[indented code]]\n\n"
        "`[[inline]]` and ``[[double ` tick]]`` but [[kept]]"
    )
    assert [link.target for link in parse_links(text)] == ["kept"]


def test_indented_list_continuation_is_not_code() -> None:
    text = "1. step\n    1. sub step\n        ![[shot.png|400]]\n\n- a\n\n    [[continued]]"
    assert [link.target for link in parse_links(text)] == ["shot.png", "continued"]


def test_html_comments_hide_links_but_obsidian_comments_do_not() -> None:
    text = (
        "<!--\n[[block comment]]\n-->\n"
        "a <!-- [[inline comment]] --> b\n\n"
        "%% [[obsidian comment]] %%\n%%\n[[multi-line obsidian comment]]\n%%"
    )
    assert [link.target for link in parse_links(text)] == [
        "obsidian comment",
        "multi-line obsidian comment",
    ]


def test_links_in_headings_tables_and_callouts_count() -> None:
    text = "## See [[a]]\n\n| x |\n|---|\n| [[b]] |\n\n> [!note]\n> [[c]]\n"
    assert [link.target for link in parse_links(text)] == ["a", "b", "c"]


# --- frontmatter properties ----------------------------------------------------------------------


def test_property_links_strings_lists_and_nested_values() -> None:
    text = (
        "---\n"
        'up: "[[Parent#Intro|the parent]]"\n'
        'extends:\n  - "[[NMS]]"\n  - "[[Soft-NMS]]"\n'
        'meta:\n  source: "[[Deep]]"\n'
        'prose: "see [[not a link]] here"\n'
        "---\nbody\n"
    )
    assert parse_links(text) == [
        Link("Parent", "the parent", "#Intro", False, "property", 1),
        Link("NMS", None, "", False, "property", 3),
        Link("Soft-NMS", None, "", False, "property", 4),
        Link("Deep", None, "", False, "property", 6),
    ]


def test_property_link_counts_with_body_link_to_the_same_note() -> None:
    files = {"src.md": '---\nextends: ["[[NMS]]"]\n---\nExtends [[NMS]].', "Methods/NMS.md": ""}
    assert resolved_from(files, "src.md") == {"Methods/NMS.md": 2}


@pytest.mark.parametrize(
    "frontmatter",
    [
        'up: "[[a]]\nbad: [unclosed',  # broken YAML
        'up: "[[a]]"\nup: "[[a]]"',  # duplicate key: an error for Obsidian's YAML parser
    ],
)
def test_broken_frontmatter_gives_no_property_links_but_body_still_counts(
    frontmatter: str,
) -> None:
    links = parse_links(f"---\n{frontmatter}\n---\n[[body]]\n")
    assert [(link.target, link.kind) for link in links] == [("body", "wiki")]


def test_frontmatter_is_never_read_as_body_text() -> None:
    assert parse_links("---\nnote: see [[x]] unquoted text\n---\n") == []


# --- resolution ----------------------------------------------------------------------------------


def test_name_match_is_case_insensitive_and_unresolved_text_keeps_its_case() -> None:
    files = {"src.md": "[[methods/nms]] [[Missing Note#Part]] [[Other.md]]", "Methods/NMS.md": ""}
    assert resolved_from(files, "src.md") == {"Methods/NMS.md": 1}
    assert unresolved_from(files, "src.md") == {"Missing Note": 1, "Other": 1}


def test_explicit_md_extension_and_attachments_resolve() -> None:
    files = {"src.md": "[[t.md]] [[doc.pdf]] ![[img.png]] [[img]]", "t.md": "", "a/doc.pdf": None}
    files["b/img.png"] = None
    assert resolved_from(files, "src.md") == {"t.md": 1, "a/doc.pdf": 1, "b/img.png": 1}
    assert unresolved_from(files, "src.md") == {"img": 1}  # no extension means a note


def test_same_folder_wins_over_a_shorter_path() -> None:
    files = {"A long folder/src.md": "[[x]]", "A long folder/x.md": "", "B/x.md": ""}
    assert resolved_from(files, "A long folder/src.md") == {"A long folder/x.md": 1}


def test_shortest_path_wins_when_no_candidate_is_in_the_source_folder() -> None:
    files = {"Notes/src.md": "[[x]]", "Deep/er/x.md": "", "Zed/x.md": ""}
    assert resolved_from(files, "Notes/src.md") == {"Zed/x.md": 1}


def test_exact_vault_path_wins_over_same_folder() -> None:
    files = {"A/src.md": "[[x]] [[B/x]]", "x.md": "", "A/x.md": "", "B/x.md": ""}
    assert resolved_from(files, "A/src.md") == {"x.md": 1, "B/x.md": 1}


def test_path_suffix_and_relative_paths() -> None:
    files = {
        "A/B/src.md": "[[er/x]] [[./y]] [../z](../z.md) [[../../z]]",
        "Deep/er/x.md": "",
        "Misc/x.md": "",
        "A/B/y.md": "",
        "y.md": "",
        "A/z.md": "",
        "z.md": "",
    }
    assert resolved_from(files, "A/B/src.md") == {
        "Deep/er/x.md": 1,
        "A/B/y.md": 1,
        "A/z.md": 1,
        "z.md": 1,
    }


def test_leading_slash_is_an_absolute_path_with_no_fuzzy_fallback() -> None:
    files = {"src.md": "[[/A/x]] [[/x]]", "A/x.md": "", "B/x.md": ""}
    assert resolved_from(files, "src.md") == {"A/x.md": 1}
    assert unresolved_from(files, "src.md") == {"/x": 1}


def test_resolve_api_ignores_subpath() -> None:
    built = index({"Papers/p.md": "", "Methods/NMS.md": ""})
    assert built.resolve("NMS#Setup", "Papers/p.md") == "Methods/NMS.md"
    assert built.resolve("", "Papers/p.md") == "Papers/p.md"
    assert built.resolve("Nope", "Papers/p.md") is None


# --- canvas --------------------------------------------------------------------------------------


def test_canvas_text_cards_are_markdown_and_file_cards_link_their_file() -> None:
    canvas = json.dumps(
        {
            "nodes": [
                {"id": "n1", "type": "text", "text": "See [[a]]\n```\n[[code]]\n```"},
                {"id": "n2", "type": "file", "file": "Papers/b.md"},
                {"id": "n3", "type": "link", "url": "https://x.org"},
            ],
            "edges": [],
        }
    )
    files = {"board.canvas": canvas, "a.md": "", "Papers/b.md": ""}
    assert resolved_from(files, "board.canvas") == {"a.md": 1, "Papers/b.md": 1}
    assert [link.kind for link in parse_canvas_links(canvas)] == ["wiki", "canvas"]
    assert parse_canvas_links("{not json") == []


# --- backlinks ----------------------------------------------------------------------------------


def test_backlinks_are_sorted_sources() -> None:
    files = {
        "z.md": "[[t]]",
        "a.md": "![[t]] [[t]]",
        "t.md": "[[#self]]",
        "o.md": "",
        "y.md": "[[o]]",
    }
    built = index(files)
    assert built.backlinks("t.md") == ["a.md", "t.md", "z.md"]
    assert built.backlinks("o.md") == ["y.md"]
    assert built.backlinks("missing.md") == []
