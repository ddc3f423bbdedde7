"""Content digests: the hash every stored note hash and etag-free comparison uses.

Pure and at the bottom of the package (it imports nothing of the bridge, and reads no clock
or file), so the planner can hash what it is given. `bridge.stamps` re-exports these.
"""

from __future__ import annotations

import hashlib


def digest(data: bytes, size: int = 16) -> str:
    """The hex blake2b digest of `data` (`size` bytes) that every stored hash uses."""
    return hashlib.blake2b(data, digest_size=size).hexdigest()


def text_hash(text: str) -> str:
    """`digest` of a note's text; equal to `digest` of the file's bytes (UTF-8 round-trips)."""
    return digest(text.encode("utf-8", "surrogatepass"))


def digester() -> hashlib.blake2b:
    """An incremental `digest` (update it piece by piece), for input too large to join."""
    return hashlib.blake2b(digest_size=16)
