"""The web API's key: from `ZOTERO_API_KEY` or the file `source.api_key_file` names.

The key never leaves this package: pyzotero sends it as an `Authorization: Bearer` header,
never in a URL, and `ApiClient` registers it with `bridge.redact` so no message quotes it.
"""

from __future__ import annotations

import os
from pathlib import Path

from bridge.config import Config, read_small_file
from bridge.errors import ConfigError

KEYS_PAGE = "https://www.zotero.org/settings/keys"


def read_api_key(config: Config, warnings: list[str]) -> str:
    """`ZOTERO_API_KEY`, else the first line of `api_key_file`; ConfigError when neither."""
    key = os.environ.get("ZOTERO_API_KEY", "").strip()
    if key:
        return key
    path = config.api_key_file
    if path is None:
        raise ConfigError(
            "the web API needs an API key",
            f"create a read-only key on {KEYS_PAGE}, then export ZOTERO_API_KEY=… or put it "
            "in a file named by source.api_key_file (chmod 600)",
        )
    try:  # bounded and non-blocking: the path may name a FIFO or a device
        key = read_small_file(Path(path), 4096, "api_key_file").strip()
    except ConfigError as exc:
        raise ConfigError(exc.message, "check the path in source.api_key_file") from None
    if not key:
        raise ConfigError(f"api_key_file {path} is empty", f"paste the key from {KEYS_PAGE}")
    if os.name != "nt" and Path(path).stat().st_mode & 0o044:
        warnings.append(f"api_key_file {path} is readable by other users; run: chmod 600 {path}")
    return key
