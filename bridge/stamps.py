"""The two kinds of stamp the bridge stores: UTC timestamps and content digests.

At the bottom of the package (the digests live in `bridge.digests`, which reads no clock). The
formats are stored in the state DB and compared across versions: changing one makes every stored
value look changed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.digests import digest, digester, text_hash

__all__ = ["digest", "digester", "iso", "text_hash"]


def iso(moment: datetime | None = None) -> str:
    """UTC `YYYY-MM-DDTHH:MM:SSZ` (the state DB's and Zotero's timestamp form); now by default.
    A naive `moment` is taken as UTC."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
