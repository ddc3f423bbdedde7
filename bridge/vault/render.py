"""Rendering: the model → what a note should contain (properties, managed regions, body).

Properties are built in Python (YAML made by a template is too easy to break); the body and
each managed region come from Jinja2 templates in `obsidian_templates/` or the user's
`templates_dir`, rendered in Jinja2's sandbox so a shared template cannot run code.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jinja2
import jinja2.bccache
from jinja2.sandbox import SandboxedEnvironment

from bridge.errors import ConfigError
from bridge.lineage import (
    Method,
    MethodGraph,
    PaperInfo,
    is_lineage_tag,
    item_edges,
    known_venue,
    mermaid,
)  # fmt: skip
from bridge.lineage import short_venue as paper_venue
from bridge.model import Annotation, Attachment, Item
from bridge.vault import neutralise
from bridge.vault.header import HEADER, HeaderRenderer
from bridge.vault.itemkinds import (
    DEFAULT_TYPE_TEMPLATES,
    FILE_SUFFIX,
    PAPER_TEMPLATE,
    ZOTERO_NOTES,
    header_extras,
    item_context,
    region_additions,
)
from bridge.vault.names import method_stem
from bridge.vault.notefile import wrap_region
from bridge.vault.rendered import (  # the rendered note's types live there (no Jinja)
    BRIDGE_KEYS,
    LIST_KEYS,
    METHOD_KEYS,
    LinkNames,
    RenderedNote,
)
from bridge.vault.zotero_notes import child_notes_markdown

__all__ = ["BRIDGE_KEYS", "LIST_KEYS", "METHOD_KEYS", "LinkNames", "RenderedNote", "Renderer"]

_VENUE_FIELDS = (
    "publicationTitle", "proceedingsTitle", "conferenceName", "bookTitle", "websiteTitle",
    "repository", "university", "institution", "publisher",
)  # fmt: skip


class Renderer:
    """Holds the Jinja2 environment and the settings rendering depends on."""

    def __init__(
        self,
        *,
        language: str = "en",
        templates_dir: Path | None = None,
        color_sections: dict[str, str] | None = None,
        color_sections_by_language: Mapping[str, dict[str, str]] | None = None,
        proposes_prefix: str = "proposes:",
        extends_prefix: str = "extends:",
        attachments_folder: str = "Attachments/zotero",
        cache_dir: Path | None = None,
        type_templates: Mapping[str, str] | None = None,
    ) -> None:
        self._lineage_cache: dict[tuple[tuple[str, ...], ...], str] = {}
        # method name or alias (casefolded) → its note's name, where that is not the name
        # itself (an alias, ` (method)` beside a paper note, a renamed note): set from the
        # state by `plan_context` (`lineage_stage.method_links`)
        self.method_links: dict[str, str] = {}
        self.language = language
        self.env = _environment(templates_dir, cache_dir)
        self.color_sections = color_sections or {}
        self.proposes_prefix = proposes_prefix
        self.extends_prefix = extends_prefix
        self.templates_dir = templates_dir
        self.attachments_folder = attachments_folder
        # `language = "auto"`: each paper note in its item's language (`item_language`)
        self.color_sections_by_language = dict(color_sections_by_language or {})
        # item type → the template a new note is made from (`[templates.by_type]`)
        self.type_templates = {**DEFAULT_TYPE_TEMPLATES, **(type_templates or {})}

    @property
    def note_language(self) -> str:
        """The language of the notes that are no one item's (method notes, queue, reports)."""
        return self.language if self.language in LANGUAGES else "en"

    def item_language(self, item: Item) -> str:
        """`en` or `zh` for one paper note: the configured one, or with `auto` the item's."""
        if self.language != "auto":
            return self.note_language
        return detect_language(item.fields.get("language"), item.title)

    def sections_for(self, language: str) -> dict[str, str]:
        return self.color_sections_by_language.get(language) or self.color_sections

    def header_renderer(
        self, properties: dict[str, Any], language: str, extras: dict[str, Any] | None = None
    ) -> HeaderRenderer:
        """`extras`: what the header sees beside the properties (`itemkinds.header_extras`)."""
        more = {"site": "", "source_url": "", **(extras or {})}
        file = more.pop("file", False)

        def render(context: dict[str, Any]) -> str:
            if file:  # a file's title is often its file name
                context = {**context, "title": FILE_SUFFIX.sub("", context["title"])}
            return self.render_template("header.md.j2", language=language, **context, **more)

        return HeaderRenderer(
            render, fallback_uri=properties["zotero"], fallback_title=properties.get("title")
        )

    # --- templates -----------------------------------------------------------------------

    def template(self, name: str, language: str | None = None) -> jinja2.Template:
        language = language or self.note_language
        candidates = [f"{language}/{name}", name] if language != "en" else [name]
        try:
            return self.env.select_template(candidates)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}",
                hint="fix the template",
            ) from exc
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"template {name} not found", hint="check templates_dir") from exc

    def render_template(
        self, template_name: str, /, language: str | None = None, **context: Any
    ) -> str:
        """`language`: which language's template (default: the notes' language)."""
        template = self.template(template_name, language)
        try:
            return template.render(**context)
        except jinja2.TemplateError as exc:
            where = template.filename or template_name
            line = template_line(exc, where)
            raise ConfigError(
                f"template {where}{f', line {line}' if line else ''}: {exc}",
                hint="fix the template (see `zob templates export`)",
            ) from exc

    # --- paper notes ---------------------------------------------------------------------

    def paper(self, item: Item, names: LinkNames) -> RenderedNote:
        language = self.item_language(item)
        properties = self.paper_properties(item, names)
        template = self.body_template(item)
        extras = header_extras(item, light=template != PAPER_TEMPLATE)
        header = self.header_renderer(properties, language, extras)
        regions = {
            HEADER: header.render(properties),
            "abstract": neutralise.text(item.fields.get("abstractNote")).strip(),
            "annotations": self.annotations(item, language),
            "lineage": self.paper_lineage(properties, language),
            ZOTERO_NOTES: child_notes_markdown(item, language),
        }
        regions = {name: _lf(text) for name, text in regions.items()}
        context = {**self._paper_context(item, properties), **item_context(item, language)}
        body = self.render_template(
            template, **context, language=language,
            region=lambda name: wrap_region(name, regions.get(name, "")),
        )  # fmt: skip
        annotated = bool(item.annotations)
        return RenderedNote(
            note_id=item.key, kind="paper", properties=properties, regions=regions,
            initial_properties={"pass": 0, "status": "reading" if annotated else "to-read"},
            body=body, extra_base={"reading_hint": True} if annotated else {}, header=header,
            copies=tuple(
                (a.image_path, self.image_vault_path(a.key))
                for a in item.annotations if a.image_path
            ),
            additions=region_additions(regions, language),
        )  # fmt: skip

    def paper_properties(self, item: Item, names: LinkNames) -> dict[str, Any]:
        edges = item_edges(item, self.proposes_prefix, self.extends_prefix)
        pdf = first_pdf(item)
        related = sorted(filter(None, (names.paper(k) for k in item.related)), key=str.casefold)
        prop = neutralise.prop  # every Zotero string below passes it (or `tags`, `props`)
        title = prop(item.title)
        values: dict[str, Any] = {
            "title": title or None,
            "aliases": [title] if title else [],
            "authors": neutralise.props(authors(item)),
            "year": item.year,
            "venue": prop(venue(item)) or None,
            "venue_short": prop(short_venue(item)) or None,
            "item_type": prop(item.item_type) or None,
            "doi": prop(item.fields.get("DOI")) or None,
            "url": prop(own_url(item)) or None,
            "citekey": prop(item.citation_key) or None,
            "zotero_key": item.key,
            "zotero": f"zotero://select/{item.library.uri_part}/items/{item.key}",
            "pdf": f"zotero://open-pdf/{item.library.uri_part}/items/{pdf.key}" if pdf else None,
            "tags": neutralise.tags(
                t
                for t in item.tags
                if not is_lineage_tag(t, self.proposes_prefix, self.extends_prefix)
            ),
            "collections": neutralise.props(item.collections),
            "proposes": [link(names.method(m)) for m in edges.proposes],
            "extends": [link(names.method(m)) for m in edges.extends],
            "related": [link(r) for r in related],
            "date_added": prop(obsidian_datetime(item.date_added)) or None,
            "date_modified": prop(obsidian_datetime(item.date_modified)) or None,
        }
        if values["venue_short"] == values["venue"]:
            values["venue_short"] = None  # lists show `venue` when there is no shorter one
        return {k: v for k, v in values.items() if v not in (None, "", [])}

    def paper_lineage(self, properties: dict[str, Any], language: str | None = None) -> str:
        links = tuple(tuple(properties.get(k, ())) for k in ("proposes", "extends", "related"))
        key = (language, *links)
        if key in self._lineage_cache:  # nine papers in ten have none: one render serves
            return self._lineage_cache[key]
        text = self.render_template(
            "lineage.md.j2", language=language, proposes=list(links[0]),
            extends=list(links[1]), related=list(links[2]),
        ).strip("\n")  # fmt: skip
        if len(self._lineage_cache) < 1000:
            self._lineage_cache[key] = text
        return text

    def _paper_context(self, item: Item, properties: dict[str, Any]) -> dict[str, Any]:
        """What the paper template sees: Zotero's strings as body text (`doi` as part of a URL),
        and `item` only through the neutraliser's view."""
        return {
            "item": neutralise.NeutralView(item),
            "title": neutralise.inline(item.title) or "Untitled",
            "authors": [a for a in map(neutralise.inline, authors(item)) if a],
            "year": item.year or "",
            "venue": neutralise.inline(venue(item)),
            "zotero_uri": properties["zotero"],
            "pdf_uri": properties.get("pdf", ""),
            "doi": neutralise.url_part(item.fields.get("DOI")),
            "citekey": neutralise.inline(item.citation_key),
        }

    # --- item types: which template (`bridge.vault.itemkinds`) -----------------------------

    def body_template(self, item: Item) -> str:
        """The template a new note of `item` is made from: `[templates.by_type]`, else the
        bundled choice (`DEFAULT_TYPE_TEMPLATES`), else the three-pass `paper.md.j2`."""
        return self.type_templates.get(item.item_type, PAPER_TEMPLATE)

    # --- method notes --------------------------------------------------------------------

    def method_link(self, name: str) -> str:
        """The note name a link to the method NAME (or an alias of it) targets."""
        return self.method_links.get(name.casefold()) or method_stem(name)

    def method(self, method: Method, graph: MethodGraph, depth: int) -> RenderedNote:
        """A method note: the papers proposing it, its ancestors and descendants as methods
        (with the paper that made each step), the papers extending it, and a diagram."""
        parents = sorted(method.parents, key=graph.order)
        papers = [_paper_row(p) for p in method.proposed_in]
        properties = {
            "type": "method",
            "method_id": neutralise.prop(method.key),  # Zotero's text: nothing may run
            "aliases": neutralise.props(sorted(method.aliases, key=str.casefold)),
            "proposed_in": [link(p["stem"]) for p in papers],
            "extends": [link(graph.stem(key)) for key in parents],
        }
        properties = {k: v for k, v in properties.items() if v not in (None, "", [])}
        context = {
            "name": neutralise.inline(method.name), "papers": papers,
            "parents": [graph.stem(key) for key in parents],
            "children": [graph.stem(key) for key in sorted(method.children, key=graph.order)],
            "ancestors": method_tree(graph, method, depth, up=True),
            "descendants": method_tree(graph, method, depth, up=False),
            "extended_by": [_paper_row(p) for p in method.extended_by],
        }  # fmt: skip
        regions = {
            name: self.render_template("method-region.md.j2", region=name, **context).strip("\n")
            for name in ("proposed-in", "extends", "extended-by")
        }
        regions["lineage"] = (
            mermaid(graph, method.name, depth) if (method.parents or method.children) else ""
        )
        regions = {name: _lf(text) for name, text in regions.items()}
        body = self.render_template(
            "method.md.j2", **context,
            region=lambda name: wrap_region(name, regions.get(name, "")),
        )  # fmt: skip
        # the parents only papers give, by key and by the note name written in `extends`
        # (`X (method)`, a renamed note): read back, they are not the user's declaration;
        # one the user declared as well stays theirs when the paper drops it
        only_papers = [k for k in parents if method.steps.get(k) and k not in method.declared]
        from_papers = sorted({*only_papers, *(graph.stem(k).casefold() for k in only_papers)})
        return RenderedNote(
            note_id=f"method:{method.key}", kind="method", properties=properties,
            regions=regions, body=body, owned_keys=METHOD_KEYS,
            extra_base={"paper_parents": from_papers},
        )  # fmt: skip

    # --- annotations ---------------------------------------------------------------------

    def image_vault_path(self, annotation_key: str) -> str:
        return f"{self.attachments_folder}/{annotation_key}.png"

    def annotations(self, item: Item, language: str | None = None) -> str:
        sections = self.annotation_sections(item, language)
        if not sections:
            return ""
        return self.render_template(
            "annotations.md.j2", language=language, sections=sections,
            item=neutralise.NeutralView(item),
        ).strip("\n")  # fmt: skip

    def annotation_sections(self, item: Item, language: str | None = None) -> list[dict[str, Any]]:
        """Annotations grouped by the section their colour stands for, in colour-map order."""
        sections = self.sections_for(language or self.note_language)
        order = list(dict.fromkeys(sections.values()))
        grouped: dict[str, list[dict[str, Any]]] = {title: [] for title in order}
        for attachment in item.attachments:
            for annotation in sorted(attachment.annotations, key=lambda a: (a.sort_index, a.key)):
                title = self.section_for(annotation.color, sections)
                context = annotation_context(item, attachment, annotation)
                if annotation.image_path:
                    context["image"] = self.image_vault_path(annotation.key).rsplit("/", 1)[-1]
                    context["image_missing"] = False
                grouped.setdefault(title, []).append(context)
        return [TemplateRow(title=t, annotations=a) for t, a in grouped.items() if a]

    def section_for(self, color: str, sections: dict[str, str] | None = None) -> str:
        sections = self.color_sections if sections is None else sections
        if not sections:
            return "Highlights"
        color = (color or "#ffd400").lower()
        if color in sections:
            return sections[color]
        return sections[nearest_color(color, list(sections))]


class TemplateRow(dict):
    """A dict whose keys templates read as attributes (`a.text`): Jinja tries `getattr`
    before `[]`, and a plain dict makes every such lookup raise and catch an exception."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def annotation_context(item: Item, attachment: Attachment, annotation: Annotation) -> dict:
    index = annotation.page_index
    page = index + 1 if index is not None else None
    page_param = (
        f"page={page}&"
        if page is not None
        else (f"page={annotation.page_label}&" if annotation.page_label.isdigit() else "")
    )
    uri = (
        f"zotero://open-pdf/{item.library.uri_part}/items/{attachment.key}"
        f"?{page_param}annotation={annotation.key}"
    )
    return TemplateRow(
        {
            "key": annotation.key,
            "type": neutralise.inline(annotation.annotation_type),
            "text": neutralise.text(annotation.text),
            "comment": neutralise.text(annotation.comment),
            "color": neutralise.inline(annotation.color),
            "page_label": (
                neutralise.link_label(annotation.page_label) or (str(page) if page else "")
            ),
            "tags": neutralise.tags(annotation.tags),
            "link": uri,
            "block_id": annotation.key.lower(),
            "attachment": neutralise.NeutralView(attachment),
            "image": None,
            "image_missing": annotation.annotation_type in ("image", "ink"),
        }
    )


def template_line(exc: BaseException, filename: str) -> int | None:
    """The template line a render error happened on: Jinja2 rewrites the traceback so the
    template's own frames carry its file name and line numbers; the innermost one wins."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _lf(text: str) -> str:
    """Regions are compared with what the note holds, read back with LF line ends."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def nearest_color(color: str, palette: list[str]) -> str:
    """The palette colour closest in RGB space (for external colours such as #ffed00)."""

    def rgb(hex_code: str) -> tuple[int, int, int]:
        try:
            return (int(hex_code[1:3], 16), int(hex_code[3:5], 16), int(hex_code[5:7], 16))
        except ValueError:
            return (255, 212, 0)

    target = rgb(color)
    return min(
        palette, key=lambda c: sum((a - b) ** 2 for a, b in zip(rgb(c), target, strict=True))
    )


# --- small helpers ---------------------------------------------------------------------------

LANGUAGES = ("en", "zh")
_CHINESE_CODES = frozenset({"zh", "chi", "zho", "cn", "chinese", "中文", "汉语", "漢語", "简体中文",
                            "繁體中文", "普通话", "国语"})  # fmt: skip
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(field: str | None, title: str | None) -> str:
    """`zh` for an item whose Zotero `language` field says Chinese (`zh`, `zh-CN`, `Chinese`,
    `中文`, …), or, with the field empty, whose title is mostly Chinese (Han characters, no
    kana or Hangul, as many Han characters as Latin letters); else `en`."""
    code = (field or "").strip().casefold()
    if code:
        first = re.split(r"[-_\s,;/()]+", code)[0]
        return "zh" if first in _CHINESE_CODES or "chinese" in code or "中文" in code else "en"
    title = title or ""
    han = len(_HAN.findall(title))
    if han < 2 or _KANA_HANGUL.search(title):
        return "en"
    return "zh" if han >= len(_LATIN.findall(title)) / 2 else "en"


def _paper_row(paper: PaperInfo) -> TemplateRow:
    return TemplateRow(
        stem=paper.stem, title=neutralise.inline(paper.title), year=paper.year or "",
        venue=neutralise.inline(paper_venue(paper)),
        status=neutralise.inline(paper.status), citekey=neutralise.inline(paper.citekey),
        **{"pass": paper.reading_pass},
    )  # fmt: skip


def method_tree(graph: MethodGraph, root: Method, depth: int, *, up: bool) -> list[TemplateRow]:
    """The ancestors (`up`) or descendants of a method as rows, depth first, each with its
    `level` (0: next to the method), note name `stem`, and `via`: the papers that made the
    step (`declared`: the step is written in the method note, no paper makes it)."""
    rows: list[TemplateRow] = []

    def walk(method: Method, level: int, path: frozenset[str]) -> None:
        for other in sorted(method.parents if up else method.children, key=graph.order):
            if other in path:
                continue  # a cycle: reported elsewhere, shown once
            child, parent = (method, graph.methods[other]) if up else (graph.methods[other], method)
            via = child.steps.get(parent.key, [])
            rows.append(TemplateRow(
                level=level, stem=graph.stem(other), via=[_paper_row(p) for p in via],
                declared=not via,
            ))  # fmt: skip
            if level + 1 < depth:
                walk(graph.methods[other], level + 1, path | {other})

    walk(root, 0, frozenset({root.key}))
    return rows


def link(stem: str) -> str:
    return f"[[{stem}]]"


def first_pdf(item: Item) -> Attachment | None:
    for attachment in item.attachments:
        if attachment.content_type == "application/pdf":
            return attachment
    return None


def authors(item: Item) -> list[str]:
    """The authors' names as Zotero has them (every creator when none is an author)."""
    names = [c.display for c in item.creators if c.creator_type in ("author", "")]
    return names or [c.display for c in item.creators]


def venue(item: Item) -> str | None:
    for name in _VENUE_FIELDS:
        if item.fields.get(name):
            return item.fields[name]
    return None


# --- properties Obsidian and lists read well --------------------------------------------------

_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?(?:\.\d+)?(?:Z|[+-]00:?00)?")
_ACRONYM_YEAR = re.compile(r"\b([A-Z][A-Za-z]*[A-Z][A-Za-z]*)['’]?\s?((?:19|20)\d{2})\b")
_ACRONYM = re.compile(r"\(([A-Z][A-Za-z]*[A-Z][A-Za-z]*)\)")
_PROCEEDINGS = re.compile(r"^(?:proceedings of (?:the )?|in: )", re.IGNORECASE)
_SHORT = 60
_DOI_URL = re.compile(r"https?://(?:dx\.)?doi\.org/(.+)", re.IGNORECASE)


def obsidian_datetime(value: str | None) -> str | None:
    """Zotero's UTC timestamps (`2024-01-02 10:11:12` from its database, `…T…Z` from the API)
    as Obsidian writes a Date & time property, `2024-01-02T10:11:12` (still UTC; Obsidian
    stores no offset). Anything else is kept as it is."""
    match = _DATETIME.fullmatch((value or "").strip())
    if match is None:
        return value
    return f"{match.group(1)}T{match.group(2)}{match.group(3) or ':00'}"


def short_venue(item: Item) -> str | None:
    """A venue short enough for a list row: the journal abbreviation, an acronym with its year
    from a conference or proceedings title ("ICLR 2015"), the series, the conference name, or
    the venue trimmed ("Proceedings of the", everything after the first comma)."""
    fields = item.fields
    if fields.get("journalAbbreviation", "").strip():
        return fields["journalAbbreviation"].strip()
    long = [fields.get(name, "") for name in ("conferenceName", "proceedingsTitle")]
    long.append(venue(item) or "")
    for text in long:
        if (match := _ACRONYM_YEAR.search(text)) is not None:
            return f"{match.group(1)} {match.group(2)}"
        if (match := _ACRONYM.search(text)) is not None:
            return f"{match.group(1)} {item.year}" if item.year else match.group(1)
    for text in long:
        if (known := known_venue(text)) is not None:
            return f"{known} {item.year}" if item.year else known
    for name in ("series", "conferenceName"):
        text = fields.get(name, "").strip()
        if text and len(text) <= _SHORT:
            return text
    full = (venue(item) or "").strip()
    trimmed = _PROCEEDINGS.sub("", full).split(", ", 1)[0].strip()
    if len(trimmed) > _SHORT:
        trimmed = trimmed[:_SHORT].rsplit(" ", 1)[0] + "…"
    return trimmed or None


def own_url(item: Item) -> str | None:
    """The item's URL, unless it only repeats the DOI link the note has already."""
    url = (item.fields.get("url") or "").strip()
    doi = (item.fields.get("DOI") or "").strip()
    match = _DOI_URL.fullmatch(url)
    if match and doi and unquote(match.group(1)).casefold() == doi.casefold():
        return None
    return url or None


@cache
def _bundled_templates_dir() -> str:
    return str(resources.files("obsidian_templates"))


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """Jinja2's own cache of compiled templates (keyed by the template's name and checked
    against a hash of its source), which must never fail a sync: a read-only or full disk
    only means compiling again. Compiling the templates is otherwise a noticeable share of a
    sync that changes one note."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _bytecode_cache(cache_dir: Path, sandboxed: bool) -> jinja2.BytecodeCache | None:
    """A cache folder per Jinja2 version and environment kind: the code Jinja2 generates
    differs between versions, and between the sandbox and the plain environment."""
    kind = "sandboxed" if sandboxed else "plain"
    folder = cache_dir / f"jinja2-{jinja2.__version__}-{kind}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _CompiledTemplates(str(folder))


def _environment(templates_dir: Path | None, cache_dir: Path | None = None) -> jinja2.Environment:
    """The user's templates (when `templates_dir` is set) render in Jinja2's sandbox: a shared
    template must not reach Python internals. The bundled ones are ours and render without
    the sandbox's per-attribute checks, which cost ~20 % of a large first sync.

    `cache_dir` keeps compiled templates between runs. It must be the user's own cache
    folder, never one inside the vault: compiled code runs as it is, so a shared vault must
    not be able to hand some other machine code to run."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.FileSystemLoader(_bundled_templates_dir()))
    kind = SandboxedEnvironment if templates_dir is not None else jinja2.Environment
    env = kind(
        auto_reload=False,  # one sync renders thousands of notes: no stat per template use
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        bytecode_cache=(
            _bytecode_cache(cache_dir, templates_dir is not None) if cache_dir else None
        ),
    )
    env.filters["tagify"] = lambda tag: f" #{tag}"
    env.filters["quote"] = lambda text: "\n".join(
        f"> {line}" if line else ">" for line in str(text).splitlines() or [""]
    )
    return env
