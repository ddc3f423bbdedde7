"""The two kinds of stamp the bridge stores: UTC timestamps and content digests.

At the bottom of the package (it imports nothing of the bridge). The formats are stored in the
state DB and compared across versions: changing one makes every stored value look changed.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime


def iso(moment: datetime | None = None) -> str:
    """UTC `YYYY-MM-DDTHH:MM:SSZ` (the state DB's and Zotero's timestamp form); now by default.
    A naive `moment` is taken as UTC."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(data: bytes, size: int = 16) -> str:
    """The hex blake2b digest of `data` (`size` bytes) that every stored hash uses."""
    return hashlib.blake2b(data, digest_size=size).hexdigest()


def text_hash(text: str) -> str:
    """`digest` of a note's text; equal to `digest` of the file's bytes (UTF-8 round-trips)."""
    return digest(text.encode("utf-8", "surrogatepass"))


def digester() -> hashlib.blake2b:
    """An incremental `digest` (update it piece by piece), for input too large to join."""
    return hashlib.blake2b(digest_size=16)
