"""`zob templates export DIR`: a copy of the bundled templates to customise.

Copies every Jinja2 template (`*.j2`, with the `zh/` variants) and the plain Obsidian
core-Templates notes (`core/*.md`) into DIR, keeping the layout. Point `templates_dir` at DIR
and the bridge uses the files found there, falling back to the bundled ones for the rest (so
deleting a file you did not change is fine). Existing files are never overwritten unless
`force` is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from bridge.errors import ConfigError

PACKAGE = "obsidian_templates"
SUFFIXES = (".j2", ".md")


@dataclass
class ExportResult:
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # existed already; left alone


def bundled_templates() -> list[tuple[str, Traversable]]:
    """(relative posix path, resource) of every bundled template, sorted."""
    found: list[tuple[str, Traversable]] = []

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.name.startswith(("_", ".")):
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.is_file() and entry.name.endswith(SUFFIXES):
                found.append((f"{prefix}{entry.name}", entry))

    walk(resources.files(PACKAGE), "")
    return sorted(found, key=lambda pair: pair[0])


def export_templates(dest: Path, *, force: bool = False) -> ExportResult:
    result = ExportResult()
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} is a file", "give a folder to copy the templates into")
    try:
        for relative, resource in bundled_templates():
            target = dest / relative
            if target.exists() and not force:
                result.kept.append(target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(resource.read_bytes())
            result.written.append(target)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the templates into {dest}: {exc.strerror or exc}",
            "choose a folder you can write to",
        ) from exc
    return result
