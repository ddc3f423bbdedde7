"""An Obsidian-compatible link index: which note links to which file, exactly as Obsidian counts it.

The bridge must never leave a link that Obsidian shows as unresolved, and must find backlinks the
way the user sees them in Obsidian. So this module reproduces Obsidian's own link tables,
`app.metadataCache.resolvedLinks` and `unresolvedLinks`, and it is tested against tables that real
Obsidian computed for a reference vault (tests/test_links.py).

Two halves:

* parsing (`parse_links`, `parse_canvas_links`, in `bridge.vault.linkparse`): what Obsidian
  counts as a link in one file.
* resolving (`LinkIndex`, here): a port of Obsidian's `getLinkpathDest` — candidates by
  lower-cased file name, then relative paths, exact vault paths, and path suffixes (same folder
  first, then the shortest path).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable
from pathlib import Path

from bridge.vault.guard import is_zotero_data_dir
from bridge.vault.linkparse import (
    NOTE_EXTENSIONS,
    Link,
    parse_canvas_links,
    parse_links,
    split_subpath,
)

__all__ = ["Link", "LinkIndex", "parse_canvas_links", "parse_links", "NOTE_EXTENSIONS"]

# ===============================================================================================
# Resolving
# ===============================================================================================


def _file_name(path: str) -> str:
    return path[path.rfind("/") + 1 :]


def _parent(path: str) -> str:
    slash = path.rfind("/")
    return path[:slash] if slash >= 0 else ""


def _extension(path: str) -> str:
    name = _file_name(path)
    dot = name.rfind(".")
    return name[dot + 1 :] if dot >= 0 else ""


def _unresolved_key(linkpath: str) -> str:
    """How Obsidian records an unresolved link: the path as written, a `.md` extension dropped."""
    return linkpath[:-3] if _extension(linkpath) == "md" else linkpath


class LinkIndex:
    """Links of every note in a vault, resolved the way Obsidian resolves them.

    Built once from a whole vault (`build`, `from_files`); parsed links are kept per note and
    each note's links are resolved when first asked for, then kept.
    """

    def __init__(self) -> None:
        self._files: set[str] = set()
        self._by_name: dict[str, list[str]] = {}  # lower-cased file name -> sorted paths
        self._links: dict[str, tuple[Link, ...]] = {}  # note path -> its links
        self._results: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
        self._backlinks: dict[str, list[str]] | None = None

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def build(cls, vault: Path) -> LinkIndex:
        """Index a vault on disk; dot-folders and dot-files (.obsidian, .trash) are left out."""
        index = cls()
        for relative, full in _walk_vault(Path(vault)):
            text = _read_text(full) if _extension(relative).lower() in NOTE_EXTENSIONS else None
            index._add(relative, text)
        return index

    @classmethod
    def from_files(cls, files: dict[str, str | None]) -> LinkIndex:
        """Index an in-memory vault: posix path -> text (None for images, PDFs and such)."""
        index = cls()
        for path, text in files.items():
            index._add(path, text)
        return index

    # --- queries ---------------------------------------------------------------------------

    def resolve(self, link_target: str, source_path: str) -> str | None:
        """Vault path a link resolves to from `source_path`, or None (Obsidian's first match).

        A `#heading` part is ignored, so a link text works as well as a bare link path.
        """
        return self._resolve(split_subpath(link_target)[0], source_path)

    def links(self, path: str) -> list[Link]:
        """The parsed links of one note (empty for non-notes and unknown paths)."""
        return list(self._links.get(path, ()))

    def resolved_links(self) -> dict[str, dict[str, int]]:
        """Source note -> {target path: count}, the shape of Obsidian's `resolvedLinks`."""
        return {path: dict(self._result(path)[0]) for path in sorted(self._links)}

    def unresolved_links(self) -> dict[str, dict[str, int]]:
        """Source note -> {link path as written: count}, the shape of `unresolvedLinks`."""
        return {path: dict(self._result(path)[1]) for path in sorted(self._links)}

    def backlinks(self, target_path: str) -> list[str]:
        """Sorted notes with at least one link resolving to `target_path` (itself included)."""
        if self._backlinks is None:
            self._backlinks = self._build_backlinks()
        return list(self._backlinks.get(target_path, ()))

    # --- internals -------------------------------------------------------------------------

    def _add(self, path: str, text: str | None) -> None:
        self._files.add(path)
        name = _file_name(path).lower()
        bisect.insort(self._by_name.setdefault(name, []), path)
        # a file with no text, or not .md/.canvas, is only a link target
        if text is not None and _extension(path).lower() in NOTE_EXTENSIONS:
            self._links[path] = tuple(_parse_file(path, text))

    def _result(self, path: str) -> tuple[dict[str, int], dict[str, int]]:
        cached = self._results.get(path)
        if cached is None:
            cached = self._results[path] = self._resolve_note(path)
        return cached

    def _resolve_note(self, path: str) -> tuple[dict[str, int], dict[str, int]]:
        resolved: dict[str, int] = {}
        unresolved: dict[str, int] = {}
        seen: dict[str, str | None] = {}
        for link in self._links.get(path, ()):
            linkpath = link.target
            if linkpath not in seen:
                seen[linkpath] = self._resolve(linkpath, path)
            dest = seen[linkpath]
            if dest is not None:
                resolved[dest] = resolved.get(dest, 0) + 1
            else:
                key = _unresolved_key(linkpath)
                unresolved[key] = unresolved.get(key, 0) + 1
        return resolved, unresolved

    def _resolve(self, linkpath: str, source: str) -> str | None:
        """Port of Obsidian's MetadataCache.getLinkpathDest, first result."""
        if linkpath == "":
            return source if source in self._files else None
        lowered = linkpath.lower()
        name = _file_name(lowered)
        candidates = self._by_name.get(name) if "." in name else None
        if not candidates:
            lowered = (linkpath + ".md").lower()
            name = _file_name(lowered)
            candidates = self._by_name.get(name)
        if not candidates:
            return None
        if name == lowered and len(candidates) == 1:
            return candidates[0]
        return _pick_candidate(candidates, lowered, linkpath, _parent(source).lower())

    def _build_backlinks(self) -> dict[str, list[str]]:
        reverse: dict[str, list[str]] = {}
        for source in sorted(self._links):
            for target in self._result(source)[0]:
                reverse.setdefault(target, []).append(source)
        return reverse


def _pick_candidate(candidates: list[str], wanted: str, linkpath: str, folder: str) -> str | None:
    """Choose among same-named files: relative path, exact path, then path suffix.

    Suffix matches in (or under) the source's folder come first, each group by shortest path;
    candidates are kept sorted, so equal lengths break ties alphabetically.
    """
    if wanted.startswith(("./", "../")):
        wanted, folder = _relative_to(wanted, folder)
        for path in candidates:
            if path.lower() == wanted:
                return path
    if wanted.startswith("/"):
        wanted = wanted[1:]
    for path in candidates:
        if path.lower() == wanted:
            return path
    if linkpath.startswith("/"):
        return None
    near: list[str] = []
    far: list[str] = []
    for path in candidates:
        lowered = path.lower()
        if lowered.endswith(wanted):
            (near if lowered.startswith(folder) else far).append(path)
    ranked = sorted(near, key=len) + sorted(far, key=len)
    return ranked[0] if ranked else None


def _relative_to(wanted: str, folder: str) -> tuple[str, str]:
    """Apply `./` and `../` to the source folder; Obsidian also keeps the moved folder after."""
    if wanted.startswith("./../"):
        wanted = wanted[2:]
    if wanted.startswith("./"):
        folder = folder + "/" if folder else folder
        return folder + wanted[2:], folder
    while wanted.startswith("../"):
        wanted = wanted[3:]
        folder = _parent(folder)
    folder = folder + "/" if folder else folder
    return folder + wanted, folder


# --- files -------------------------------------------------------------------------------------


def _parse_file(path: str, text: str) -> list[Link]:
    if _extension(path).lower() == "canvas":
        return parse_canvas_links(text)
    return parse_links(text)


def _walk_vault(vault: Path) -> Iterable[tuple[str, str]]:
    """(posix relative path, full path) of every file, skipping names that start with a dot
    and any Zotero data directory inside the vault (`bridge.vault.guard`)."""
    stack = [("", str(vault))]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as listing:
            entries = list(listing)
        if prefix and is_zotero_data_dir(entry.name for entry in entries):
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relative = prefix + entry.name
            if entry.is_dir():
                stack.append((relative + "/", entry.path))
            elif entry.is_file():
                yield relative, entry.path


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        return handle.read()
