"""Configuration: a TOML file (tomllib) plus command-line overrides → one frozen `Config`.

Validation collects every problem before failing, so a user fixes their file in one go, and an
unknown key is reported with the nearest valid name (a typo should never be silently ignored).
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from bridge.citekeys import DEFAULT_PATTERN as DEFAULT_CITEKEY_PATTERN
from bridge.citekeys import check_pattern
from bridge.errors import ConfigError
from bridge.model import ITEM_TYPES

APP_NAME = "zotero-obsidian-bridge"
SOURCES = ("sqlite", "sample", "web", "local")
LANGUAGES = ("auto", "en", "zh")
MAX_CONFIG_BYTES = 1_000_000  # a real config is a few kB; anything near this is not one
MAX_KEY_DEPTH = 100  # dotted-key levels (the config's deepest key has 3)

# Zotero 7's reader colours → the section each stands for (three-pass meanings).
DEFAULT_COLORS: dict[str, str] = {
    "#ffd400": "Key claims",
    "#2ea8e5": "Method & figures",
    "#5fb236": "Results & numbers",
    "#ff6666": "Unclear passages",
    "#a28ae5": "Cited works to look up",
    "#e56eee": "Other",
    "#f19837": "Other",
    "#aaaaaa": "Other",
}
DEFAULT_COLORS_ZH: dict[str, str] = {
    "#ffd400": "核心论点",
    "#2ea8e5": "方法与图表",
    "#5fb236": "结果与数据",
    "#ff6666": "不清楚的段落",
    "#a28ae5": "待查的引用文献",
    "#e56eee": "其他",
    "#f19837": "其他",
    "#aaaaaa": "其他",
}


@dataclass(frozen=True)
class Config:
    vault: Path | None = None
    source: str = "sqlite"
    zotero_dir: Path | None = None
    language: str = "auto"
    templates_dir: Path | None = None
    papers_folder: str = "Papers"
    methods_folder: str = "Methods"
    attachments_folder: str = "Attachments/zotero"
    library_id: str | None = None
    library_type: str = "user"
    api_url: str | None = None
    api_key_file: Path | None = None
    proposes_prefix: str = "proposes:"
    extends_prefix: str = "extends:"
    mermaid_depth: int = 3
    # `[lineage.aliases]`: another name → the method's own name (BN = "Batch Normalization")
    lineage_aliases: dict[str, str] = field(default_factory=dict)
    colors: dict[str, str] = field(default_factory=dict)
    debounce_seconds: float = 0.5
    # a note saved less than this ago is merged once it is quiet (bridge/vault/inflight.py)
    settle_seconds: float = 2.0
    poll_seconds: float = 30.0
    watch_polling: bool = False  # poll files instead of native events (network drives)
    # the reading workflow (bridge/workflow/)
    filter_collections: tuple[str, ...] = ()
    filter_tags: tuple[str, ...] = ()
    reading_queue: str = "Reading queue.md"
    queue_limit: int = 100  # papers listed per stage, newest first (0: every paper)
    reports_folder: str = "Reports"
    writeback: bool = False
    writeback_library_id: str | None = None
    writeback_library_type: str | None = None
    writeback_api_url: str | None = None
    writeback_api_key_file: Path | None = None
    # `zob ask`: an OpenAI-compatible chat endpoint (e.g. a local model server); none: no call
    ask_endpoint: str | None = None
    ask_model: str = "default"
    ask_api_key_file: Path | None = None
    # item types and citation keys (bridge/citekeys.py, bridge/vault/render.py)
    citekey_pattern: str = DEFAULT_CITEKEY_PATTERN
    type_templates: dict[str, str] = field(default_factory=dict)  # item type → template
    config_file: Path | None = None

    @property
    def color_sections(self) -> dict[str, str]:
        """Colour → section title, with the language's defaults under the user's choices."""
        return self.color_sections_for(self.language)

    def color_sections_for(self, language: str) -> dict[str, str]:
        """`color_sections` for notes in `language` (with `auto`, each paper has its own)."""
        base = DEFAULT_COLORS_ZH if language == "zh" else DEFAULT_COLORS
        return {**base, **{k.lower(): v for k, v in self.colors.items()}}

    def with_overrides(self, **overrides: Any) -> Config:
        """Apply command-line flags (None means "not given") and re-validate."""
        given = {k: v for k, v in overrides.items() if v is not None}
        for key in ("vault", "zotero_dir", "templates_dir", "api_key_file"):
            if key in given:
                given[key] = _path(given[key], Path.cwd())
        updated = replace(self, **given)
        problems = _validate(updated)
        if problems:
            raise ConfigError(problems, hint=_hint(updated, problems))
        return updated


# Where each TOML key lives: (table, key) → Config attribute.
_KEYS: dict[tuple[str, ...], str] = {
    ("vault",): "vault",
    ("language",): "language",
    ("templates_dir",): "templates_dir",
    ("papers_folder",): "papers_folder",
    ("methods_folder",): "methods_folder",
    ("attachments_folder",): "attachments_folder",
    ("source", "type"): "source",
    ("source", "zotero_dir"): "zotero_dir",
    ("source", "library_id"): "library_id",
    ("source", "library_type"): "library_type",
    ("source", "api_url"): "api_url",
    ("source", "api_key_file"): "api_key_file",
    ("lineage", "proposes_prefix"): "proposes_prefix",
    ("lineage", "extends_prefix"): "extends_prefix",
    ("lineage", "mermaid_depth"): "mermaid_depth",
    ("watch", "debounce_seconds"): "debounce_seconds",
    ("sync", "settle_seconds"): "settle_seconds",
    ("watch", "poll_seconds"): "poll_seconds",
    ("watch", "polling"): "watch_polling",
    ("filters", "collections"): "filter_collections",
    ("filters", "tags"): "filter_tags",
    ("workflow", "reading_queue"): "reading_queue",
    ("workflow", "queue_limit"): "queue_limit",
    ("workflow", "reports_folder"): "reports_folder",
    ("writeback", "enabled"): "writeback",
    ("writeback", "library_id"): "writeback_library_id",
    ("writeback", "library_type"): "writeback_library_type",
    ("writeback", "api_url"): "writeback_api_url",
    ("writeback", "api_key_file"): "writeback_api_key_file",
    ("ask", "endpoint"): "ask_endpoint",
    ("ask", "model"): "ask_model",
    ("ask", "api_key_file"): "ask_api_key_file",
    ("citekeys", "pattern"): "citekey_pattern",
}
_TABLES = {
    "source", "sync", "lineage", "watch", "annotations", "filters", "workflow", "writeback",
    "ask", "citekeys", "templates",
}  # fmt: skip
_PATH_KEYS = {
    "vault", "zotero_dir", "templates_dir", "api_key_file", "writeback_api_key_file",
    "ask_api_key_file",
}  # fmt: skip
_LIST_KEYS = {"filter_collections", "filter_tags"}
_TYPES: dict[str, tuple[type, ...]] = {
    "mermaid_depth": (int,),
    "queue_limit": (int,),
    "debounce_seconds": (int, float),
    "settle_seconds": (int, float),
    "poll_seconds": (int, float),
    "watch_polling": (bool,),
    "library_id": (str, int),
    "filter_collections": (list,),
    "filter_tags": (list,),
    "writeback": (bool,),
    "writeback_library_id": (str, int),
}


def default_config_path() -> Path:
    """`$ZOB_CONFIG`, else the platform's config dir (e.g. ~/.config/zotero-obsidian-bridge)."""
    env = os.environ.get("ZOB_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def load_config(path: Path | None = None, *, required: bool = False) -> Config:
    """Read the config file (or defaults when there is none and it is not `required`)."""
    explicit = path is not None or bool(os.environ.get("ZOB_CONFIG"))
    path = path or default_config_path()
    if not path.exists():
        if required or explicit:
            raise ConfigError(
                f"config file {path} does not exist",
                hint="create one with `zob init`, or pass --vault and --zotero-dir",
            )
        return Config()
    text = read_small_file(path, MAX_CONFIG_BYTES, "config file")
    if _key_too_deep(text):
        raise ConfigError(
            f"{path} has a key nested more than {MAX_KEY_DEPTH} levels deep (a.b.c…)",
            hint="a config needs at most a few levels; see config.example.toml",
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}",
            hint="fix the line named above; see config.example.toml",
        ) from exc
    except RecursionError:
        raise ConfigError(
            f"{path} is nested too deeply to read (arrays or tables inside each other)",
            hint="a config needs at most a few levels; see config.example.toml",
        ) from None
    try:
        return config_from_dict(data, path)
    except RecursionError:
        raise ConfigError(
            f"{path} is nested too deeply to read (tables inside each other)",
            hint="a config needs at most a few levels; see config.example.toml",
        ) from None


def _key_too_deep(text: str) -> bool:
    """A dotted key deeper than MAX_KEY_DEPTH (Python's TOML reader takes time quadratic in
    the depth: a small hostile file could stall every command). Dots in the part of a line before
    `=` are counted, which can only overestimate the depth of a key."""
    return any(line.split("=", 1)[0].count(".") > MAX_KEY_DEPTH for line in text.splitlines())


def read_small_file(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes, else ConfigError.

    Opened without blocking (a FIFO with no writer would hang `open`) and checked with fstat
    before anything is read: a device (`/dev/zero` never ends), a FIFO or a folder is refused,
    and no more than `limit` bytes are ever read, whatever the file claims.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror or exc}", hint="check the path"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"{what} {path} is {_file_kind(info.st_mode)}, not a regular file",
                hint="point it at a TOML file" if what == "config file" else "check the path",
            )
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise ConfigError(
            f"{what} {path} is larger than {limit // 1000} kB; it cannot be a {what}",
            hint="check the path",
        )
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from None


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def config_from_dict(data: dict[str, Any], path: Path | None = None) -> Config:
    problems: list[str] = []
    values: dict[str, Any] = {}
    base_dir = path.parent if path else Path.cwd()
    _collect(data, (), values, problems, base_dir)
    config = replace(Config(), **values, config_file=path)
    problems.extend(_validate(config))
    if problems:
        where = f" in {path}" if path else ""
        raise ConfigError([f"{p}{where}" for p in problems], hint=_hint(config, problems))
    return config


def _collect(
    table: dict[str, Any],
    prefix: tuple[str, ...],
    values: dict[str, Any],
    problems: list[str],
    base_dir: Path,
) -> None:
    for key, value in table.items():
        dotted = (*prefix, key)
        if prefix == ("annotations",) and key == "colors":
            values["colors"] = _colors(value, problems)
        elif prefix == ("lineage",) and key == "aliases":
            values["lineage_aliases"] = _aliases(value, problems)
        elif prefix == ("templates",) and key == "by_type":
            values["type_templates"] = _type_templates(value, problems)
        elif dotted in _KEYS:
            _set_value(_KEYS[dotted], ".".join(dotted), value, values, problems, base_dir)
        elif not prefix and key in _TABLES and isinstance(value, dict):
            _collect(value, dotted, values, problems, base_dir)
        else:
            problems.append(_unknown(".".join(dotted)))


def _set_value(
    attr: str, dotted: str, value: Any, values: dict[str, Any], problems: list[str], base_dir: Path
) -> None:
    expected = _TYPES.get(attr, (str,))
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        names = " or ".join(t.__name__ for t in expected)
        problems.append(f"{dotted} must be a {names}, not {type(value).__name__} ({value!r})")
        return
    if attr in _LIST_KEYS:
        if not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(f"{dotted} must be a list of non-empty strings, not {value!r}")
            return
        value = tuple(v.strip() for v in value)
    elif attr in _PATH_KEYS:
        value = _path(value, base_dir) if value else None
    elif attr in ("library_id", "writeback_library_id"):
        value = str(value)
    values[attr] = value


def _colors(value: Any, problems: list[str]) -> dict[str, str]:
    if not isinstance(value, dict):
        problems.append('annotations.colors must be a table of "#rrggbb" = "Section title"')
        return {}
    colors: dict[str, str] = {}
    for hex_code, title in value.items():
        if not _is_hex(hex_code) or not isinstance(title, str):
            problems.append(
                f'annotations.colors: {hex_code!r} = {title!r} must be "#rrggbb" = "title"'
            )
            continue
        colors[hex_code.lower()] = title
    return colors


def _aliases(value: Any, problems: list[str]) -> dict[str, str]:
    """`[lineage.aliases]`: `BN = "Batch Normalization"` (an alias to a method's name)."""
    if not isinstance(value, dict):
        problems.append('lineage.aliases must be a table of alias = "Method name"')
        return {}
    aliases: dict[str, str] = {}
    for alias, name in value.items():
        if not isinstance(name, str) or not name.strip() or not str(alias).strip():
            problems.append(f'lineage.aliases: {alias!r} = {name!r} must be alias = "Method name"')
            continue
        aliases[" ".join(str(alias).split())] = " ".join(name.split())
    return aliases


def _type_templates(value: Any, problems: list[str]) -> dict[str, str]:
    """`[templates.by_type]`: Zotero item type → a template file name (`name.md.j2`)."""
    if not isinstance(value, dict):
        problems.append('templates.by_type must be a table of itemType = "template.md.j2"')
        return {}
    found: dict[str, str] = {}
    for item_type, name in value.items():
        if item_type not in ITEM_TYPES:
            close = difflib.get_close_matches(item_type, ITEM_TYPES, n=1, cutoff=0.6)
            hint = (
                f" (did you mean '{close[0]}'?)"
                if close
                else " (Zotero's type names: webpage, blogPost, thesis…)"
            )
            problems.append(f"templates.by_type: {item_type!r} is not a Zotero item type{hint}")
            continue
        if (
            not isinstance(name, str)
            or not name.endswith(".md.j2")
            or "/" in name
            or "\\" in name
            or name.startswith(".")
        ):
            problems.append(
                f"templates.by_type: {item_type} = {name!r} must name a template file such as"
                ' "source.md.j2" or "paper.md.j2" (in templates_dir or bundled)'
            )
            continue
        found[item_type] = name
    return found


def _is_hex(text: str) -> bool:
    return (
        len(text) == 7 and text[0] == "#" and all(c in "0123456789abcdefABCDEF" for c in text[1:])
    )


def _unknown(dotted: str) -> str:
    known = [".".join(k) for k in _KEYS] + [
        "annotations.colors",
        "lineage.aliases",
        "templates.by_type",
    ]
    close = difflib.get_close_matches(dotted, known, n=1, cutoff=0.5)
    suggestion = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{dotted}'{suggestion}"


def _path(value: str | Path, base_dir: Path) -> Path:
    path = Path(os.path.expandvars(str(value))).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _validate(config: Config) -> list[str]:
    problems: list[str] = []
    if config.source not in SOURCES:
        problems.append(f"source must be one of {', '.join(SOURCES)}, not {config.source!r}")
    if config.language not in LANGUAGES:
        problems.append(f"language must be one of {', '.join(LANGUAGES)}, not {config.language!r}")
    if config.library_type not in ("user", "group"):
        problems.append(f"library_type must be 'user' or 'group', not {config.library_type!r}")
    if config.mermaid_depth < 1:
        problems.append("lineage.mermaid_depth must be at least 1")
    if config.queue_limit < 0:
        problems.append("workflow.queue_limit must be 0 (no limit) or more")
    if not 1 <= config.settle_seconds <= 60:  # below a second, a save in progress gets merged
        problems.append("sync.settle_seconds must be between 1 and 60")
    if config.debounce_seconds < 0 or config.poll_seconds <= 0:
        problems.append("watch.debounce_seconds must be >= 0 and watch.poll_seconds > 0")
    for attr in ("papers_folder", "methods_folder", "attachments_folder", "reports_folder"):
        folder = getattr(config, attr)
        if not folder or Path(folder).is_absolute() or ".." in Path(folder).parts:
            problems.append(f"{attr} must be a folder inside the vault, not {folder!r}")
    queue = config.reading_queue
    if queue and (
        not queue.endswith(".md") or Path(queue).is_absolute() or ".." in Path(queue).parts
    ):
        problems.append(
            f'workflow.reading_queue must be a .md path inside the vault (or ""), not {queue!r}'
        )
    if config.writeback_library_type not in (None, "user", "group"):
        problems.append(
            "writeback.library_type must be 'user' or 'group', "
            f"not {config.writeback_library_type!r}"
        )
    pattern_problem = check_pattern(config.citekey_pattern)
    if pattern_problem:
        problems.append(pattern_problem)
    if config.papers_folder.strip("/").casefold() == config.methods_folder.strip("/").casefold():
        problems.append("papers_folder and methods_folder must be different folders")
    if config.vault is not None:
        if config.vault.exists() and not config.vault.is_dir():
            problems.append(f"vault {config.vault} is a file, not a folder")
        elif not config.vault.exists():
            problems.append(f"vault folder {config.vault} does not exist")
    return problems


def _hint(config: Config, problems: list[str] | None = None) -> str:
    """What to do, naming the real problem: a vault path that is a file or missing wants
    another path, not an edit of a config file that may not even exist."""
    problems = problems or []
    if problems and all(p.startswith(("vault ", "vault folder ")) for p in problems):
        return (
            "give the Obsidian vault's folder (--vault DIR, or `vault` in the config file);"
            " create the folder first if it does not exist yet"
        )
    if config.config_file is not None:
        return (
            f"edit {config.config_file} (every key is documented in config.example.toml)"
            " or pass the flag"
        )
    if default_config_path().exists():
        return f"edit {default_config_path()} (see config.example.toml) or pass the flag"
    return "pass the flag, or write a config file with `zob init` (see config.example.toml)"


def require_vault(config: Config) -> Path:
    """The vault, once it is known to be one the bridge may fill (`bridge.vault.guard`):
    every command that reads or writes a vault asks here first, before anything is written."""
    from bridge.vault.guard import check_folders, check_vault_location

    if config.vault is None:
        raise ConfigError("no vault given", hint="pass --vault DIR, or run `zob init` once")
    check_vault_location(config.vault, config.zotero_dir)
    folders = {
        attr: getattr(config, attr)
        for attr in ("papers_folder", "methods_folder", "attachments_folder", "reports_folder")
    }
    check_folders(
        config.vault, config.zotero_dir, {**folders, "reading_queue": config.reading_queue}
    )
    return config.vault
