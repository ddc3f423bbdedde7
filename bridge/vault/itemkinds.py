"""Every kind of Zotero item, as notes see it: which template a new note is made from, what
the lighter template calls the item, where a web source comes from, an item without a title,
and the Zotero child notes region a note made before it existed gains.

Apart from `bridge.vault.render` so the renderer stays about rendering; the words follow each
note's own language (`Renderer.item_language`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bridge.model import Item
from bridge.vault import neutralise
from bridge.vault.notefile import wrap_region

ZOTERO_NOTES = "zotero-notes"
# Item types whose new notes get the lighter `source.md.j2` (source, summary, highlights;
# no three passes); every other type gets the three-pass `paper.md.j2`. A standalone file
# (`attachment`) is read, not studied, too.
LIGHT_TYPES = (
    "webpage", "blogPost", "forumPost", "videoRecording", "podcast", "presentation",
    "dataset", "computerProgram", "attachment",
)  # fmt: skip
DEFAULT_TYPE_TEMPLATES = dict.fromkeys(LIGHT_TYPES, "source.md.j2")
PAPER_TEMPLATE = "paper.md.j2"
# what the lighter template calls each kind of item (others: Zotero's type name)
ITEM_KINDS = {
    "webpage": "web page", "blogPost": "blog post", "forumPost": "forum post",
    "videoRecording": "video", "podcast": "podcast", "presentation": "talk",
    "dataset": "data set", "computerProgram": "program", "attachment": "file",
}  # fmt: skip
ITEM_KINDS_ZH = {
    "webpage": "网页", "blogPost": "博客文章", "forumPost": "论坛帖子", "videoRecording": "视频",
    "podcast": "播客", "presentation": "演讲", "dataset": "数据集", "computerProgram": "软件",
    "attachment": "文件",
}  # fmt: skip
_UNTITLED = {"en": "Untitled item", "zh": "无标题条目"}
_NOTES_HEADING = {"en": "## Zotero notes", "zh": "## Zotero 笔记"}
FILE_SUFFIX = re.compile(r"\.(pdf|epub|html?)$", re.IGNORECASE)


def item_context(item: Item, language: str) -> dict[str, Any]:
    """What templates see besides the paper's context: whether the item has a title (an
    item without one is called by its key and says so) and where it comes from."""
    untitled = not item.title.strip()
    kinds = ITEM_KINDS_ZH if language == "zh" else ITEM_KINDS
    context: dict[str, Any] = {
        "untitled": untitled,
        "item_type": neutralise.inline(item.item_type),
        "item_kind": kinds.get(item.item_type) or neutralise.inline(item.item_type),
        "source_url": source_url(item),
        "site": neutralise.inline(site(item)),
    }
    if untitled:
        context["title"] = f"{_UNTITLED.get(language, _UNTITLED['en'])} {item.key}"
    elif item.item_type == "attachment":  # a file's title is often its file name
        context["title"] = neutralise.inline(FILE_SUFFIX.sub("", item.title.strip()))
    return context


def header_extras(item: Item, light: bool) -> dict[str, Any]:
    """What `header.md.j2` sees beside the properties: for a note from the lighter template,
    the site it comes from and its own web address (a paper's header stays as it was), and
    whether the item is a file (its title loses a `.pdf`)."""
    return {
        "file": item.item_type == "attachment",
        "site": neutralise.inline(site(item)) if light else "",
        "source_url": source_url(item) if light else "",
    }


def region_additions(regions: Mapping[str, str], language: str) -> dict[str, str]:
    """`RenderedNote.additions`: the Zotero notes region, with its heading, for notes made
    before the bridge brought child notes in."""
    if not regions.get(ZOTERO_NOTES):
        return {}
    heading = _NOTES_HEADING.get(language, _NOTES_HEADING["en"])
    return {ZOTERO_NOTES: f"{heading}\n{wrap_region(ZOTERO_NOTES, regions[ZOTERO_NOTES])}"}


def source_url(item: Item) -> str:
    """The item's own web address as a link destination ("" when it has none usable)."""
    url = (item.fields.get("url") or "").strip()
    scheme, colon, rest = url.partition(":")
    if not colon or scheme.lower() not in ("http", "https"):
        return ""
    return f"{scheme.lower()}:{neutralise.url_part(rest)}"


def site(item: Item) -> str:
    """Where a non-paper item was published: the site, blog, forum, programme or series."""
    for name in (
        "websiteTitle", "blogTitle", "forumTitle", "programTitle", "seriesTitle",
        "meetingName", "repository", "company", "publisher", "studio", "network",
    ):  # fmt: skip
        if item.fields.get(name):
            return item.fields[name]
    return ""
