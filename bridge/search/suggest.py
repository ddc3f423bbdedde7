"""`zob lineage --suggest [METHOD]`: papers that discuss a method heavily but carry no edge to
it, and `--accept PAPER extends|proposes METHOD`, which writes the edge into the paper note.

Suggestions are only printed. Accepting one adds `[[METHOD]]` to the note's `extends` (or
`proposes`) property as a user's edit would — through `Vault.replace`, under the sync lock,
only if the note is still the file that was read — and then runs a sync, which merges it
three-way like any edit of the user's and rewrites the method notes. Nothing is automatic.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from bridge.config import Config
from bridge.errors import BridgeError
from bridge.lineage import MethodGraph, method_names
from bridge.search import engine, tokens
from bridge.search.store import SearchIndex
from bridge.vault.fs import Vault
from bridge.vault.notefile import parse_note

MIN_PASSAGES = 3  # a paper "discusses a method heavily" in this many passages or more
RELATIONS = ("extends", "proposes")
# what no note name may hold: Obsidian's own refusals (a link's `#`, `^`, `|`, `[]`, and what a
# file name cannot hold on some system), line breaks and control characters; `<` also rules
# out Templater's `<%`
_NOT_IN_A_NAME = re.compile(r'[\[\]|#^\\/:*?"<>\x00-\x1f\x7f-\x9f\u2028\u2029]')


class SuggestError(BridgeError):
    pass


@dataclass
class Suggestion:
    paper: dict
    method: str
    relation: str
    passages: int
    evidence: list[dict[str, Any]]

    def command(self) -> str:
        """The command that accepts it, each word quoted for a POSIX shell: a method or note
        name (from Zotero's tags, or a file name) must not run when the line is pasted."""
        name = self.paper["citekey"] or self.paper["path"].removesuffix(".md")
        words = [name, self.relation, self.method]
        return "zob lineage --accept " + " ".join(map(shlex.quote, words))


def method_aliases(config: Config, vault: Vault, name: str) -> list[str]:
    """The method's name and the `aliases` of its method note (when it has one)."""
    names = [name]
    rel = f"{config.methods_folder.strip('/')}/{name}.md"
    try:
        props = parse_note(rel, vault.read(rel)).properties or {}
    except BridgeError:
        return names
    aliases = props.get("aliases")
    for alias in aliases if isinstance(aliases, list) else [aliases] if aliases else []:
        if isinstance(alias, str) and alias.strip():
            names.append(alias.strip())
    return list(dict.fromkeys(names))


def _phrase(name: str) -> str:
    words = tokens.terms(name)
    return '"' + " ".join(w.replace('"', '""') for w in words) + '"' if words else ""


def mentions(index: SearchIndex, names: list[str]) -> dict[int, list]:
    """Paper id → the passages naming the method (any of its names), best first."""
    phrases = [p for p in map(_phrase, names) if p]
    if not phrases:
        return {}
    rows = index.db.execute(
        "SELECT p.id, p.doc FROM fts JOIN passages p ON p.id = fts.rowid "
        "JOIN docs d ON d.id = p.doc WHERE fts MATCH ? AND d.kind = 'paper' ORDER BY fts.rank",
        (" OR ".join(phrases),),
    ).fetchall()
    found: dict[int, list] = {}
    for pid, doc_id in rows:
        found.setdefault(doc_id, []).append(pid)
    return found


def suggest(
    index: SearchIndex, graph: MethodGraph, config: Config, method: str | None = None
) -> list[Suggestion]:
    """Every missing edge the papers' text points at (for one method, or for all)."""
    if method is not None and graph.get(method) is None:
        raise SuggestError(
            f"no method named {method!r} in this vault",
            hint="known methods: " + ", ".join(sorted(m.name for m in graph.methods.values())),
        )
    targets = [graph.get(method)] if method else list(graph.methods.values())
    vault = Vault(index.vault_root)
    out: list[Suggestion] = []
    for target in targets:
        assert target is not None
        linked = {p.path for p in (*target.proposed_in, *target.extended_by)}
        found = mentions(index, method_aliases(config, vault, target.name))
        docs = index.docs(found)
        for doc_id, pids in found.items():
            doc = docs[doc_id]
            if len(pids) < MIN_PASSAGES or doc["path"] in linked:
                continue
            relation = "proposes" if _names_it(doc, target.name, target) else "extends"
            out.append(
                Suggestion(doc, target.name, relation, len(pids), _evidence(index, doc, pids))
            )
    vault.close()
    return sorted(out, key=lambda s: (-s.passages, s.method.casefold(), s.paper["path"]))


def _names_it(doc: dict, name: str, target: Any) -> bool:
    """A paper titled after a method nobody proposes yet is taken to propose it."""
    return not target.proposed_in and name.casefold() in doc["title"].casefold()


def _evidence(index: SearchIndex, doc: dict, pids: list[int]) -> list[dict[str, Any]]:
    wanted = set(pids[:2])
    hits = [h for h in index.passages_of(doc["id"]) if h.passage_id in wanted]
    return [engine.passage_json(doc, hit, []) for hit in hits]


def suggestion_json(s: Suggestion) -> dict[str, Any]:
    return {
        "paper": s.paper["path"], "citekey": s.paper["citekey"] or None,
        "title": s.paper["title"], "relation": s.relation, "method": s.method,
        "passages": s.passages, "evidence": s.evidence, "accept": s.command(),
    }  # fmt: skip


def add_edge(
    vault: Vault, rel: str, relation: str, method: str, settle_seconds: float = 2.0
) -> bool:
    """Add `[[method]]` to the note's `relation` property; False when it is there already.

    Written like a user's edit: only the one property's YAML changes, and only if the note is
    still the file that was read (`Vault.replace` checks its etag and bytes). A note saved
    moments ago, or that looks like a save caught halfway, is not touched (the settle and
    in-flight rules of `bridge.vault.inflight`)."""
    from bridge.stamps import text_hash
    from bridge.vault.inflight import frontmatter_complete, in_flight, settling

    if relation not in RELATIONS:
        raise SuggestError(f"{relation!r} is not an edge", hint="use extends or proposes")
    check_method_name(method)
    etag = vault.etag(rel)
    if etag is None:
        raise SuggestError(f"{rel} is gone", hint="run `zob sync`, then suggest again")
    if settling(etag, int(settle_seconds * 1e9), rel):
        raise SuggestError(
            f"{rel} was changed moments ago (still being saved?); it was not touched",
            hint="accept again in a few seconds",
        )
    text = vault.read(rel)
    why = in_flight(text, None, None) or (None if frontmatter_complete(text) else "no properties")
    if why:
        raise SuggestError(
            f"{rel}: {why}; it was not touched", hint="check the note, then accept again"
        )
    note = parse_note(rel, text)
    props = dict(note.properties or {})
    current = props.get(relation)
    values = current if isinstance(current, list) else [current] if current else []
    if method.casefold() in {n.casefold() for n in method_names(values)}:
        return False
    props[relation] = [*values, f"[[{method}]]"]
    vault.replace(rel, note.render_changed(props), etag, text_hash(text))
    return True


def check_method_name(method: str) -> None:
    """Refuse a METHOD that no note can be named (it would be written into the paper note
    as a broken or extra link, or as text a plugin runs)."""
    bad = _NOT_IN_A_NAME.search(method)
    if bad or not method.strip() or method != method.strip() or method.startswith("."):
        raise SuggestError(
            f"{method!r} cannot be a method note's name"
            + (f" (it holds {bad.group()!r})" if bad else ""),
            hint="give the method's name as in [[Name]], without brackets, e.g. Soft-NMS",
        )


def find_paper(config: Config, vault: Vault, paper: str) -> str:
    """The vault path of the one note named by path, name or citekey; refused when it names
    none, or more than one (an edge is written into it: no guessing)."""
    wanted = paper.removeprefix("./").removesuffix(".md")
    if wanted.startswith("/") or any(p in ("", ".", "..") for p in wanted.split("/")):
        raise SuggestError(
            f"{paper!r} is not a note in the vault", hint="give its citekey or its vault path"
        )
    folder = config.papers_folder.strip("/")
    for rel in (f"{wanted}.md", f"{folder}/{wanted}.md"):
        if vault.etag_or_none(rel) is not None:
            return rel
    from bridge.search.related import note_candidates
    from bridge.search.store import INDEX_NAME
    from bridge.statefolder import STATE_DIRNAME

    if (vault.root / STATE_DIRNAME / INDEX_NAME).exists():
        with SearchIndex(vault.root, create=False) as index:
            found = [doc["path"] for doc in note_candidates(index, paper)]
        if len(found) > 1:
            raise SuggestError(
                f"{paper!r} names {len(found)} notes: " + ", ".join(found[:5]),
                hint="give the one you mean by its path in the vault",
            )
        if found:
            return found[0]
    raise SuggestError(
        f"no paper note named {paper!r}", hint="give its citekey or its path in the vault"
    )


def accept(config: Config, paper: str, relation: str, method: str) -> tuple[str, bool]:
    """Write one accepted edge into the paper note, under the sync lock: (note, changed)."""
    from bridge.session import writing

    with writing(config) as session:
        rel = find_paper(config, session.vault, paper)
        return rel, add_edge(session.vault, rel, relation, method, config.settle_seconds)
