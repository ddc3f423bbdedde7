"""Sync filters: which Zotero items get a note.

`[filters] collections` and `tags` each *add* items: an item passes when it is in one of the
collections (or any sub-collection of one) OR carries one of the tags; with both lists empty
every item passes. A collection is named by its own name (`Detection`) or by a path
(`Vision/Detection`), case ignored. Items pinned by `zob new` always pass.

Filtering only removes items from the snapshot's `items`; `all_keys` is left as the source
said, so an item outside the filters is still known to exist: its existing note is left alone
(not updated, and not marked `deleted-in-zotero` even when the item is trashed), and neither
the tripwire nor the erased-item detection of the planner ever counts it.
Saved searches are not supported: Zotero evaluates them itself, and no source can read their
results cheaply (the web API returns only their conditions).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from bridge.config import Config
from bridge.model import Item, LibrarySnapshot


def _segments(path: str) -> list[str]:
    return [part.strip().casefold() for part in path.split("/") if part.strip()]


@dataclass(frozen=True)
class SyncFilter:
    collections: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> SyncFilter:
        return cls(config.filter_collections, config.filter_tags)

    @property
    def active(self) -> bool:
        return bool(self.collections or self.tags)

    def matches(self, item: Item) -> bool:
        if not self.active:
            return True
        return any(self._in_collection(rule, item) for rule in self.collections) or any(
            self._has_tag(rule, item) for rule in self.tags
        )

    @staticmethod
    def _in_collection(rule: str, item: Item) -> bool:
        """`rule`'s segments appear, in order and contiguous, in one of the item's paths."""
        wanted = _segments(rule)
        if not wanted:
            return False
        for path in item.collections:
            parts = _segments(path)
            for start in range(len(parts) - len(wanted) + 1):
                if parts[start : start + len(wanted)] == wanted:
                    return True
        return False

    @staticmethod
    def _has_tag(rule: str, item: Item) -> bool:
        return rule.casefold() in {tag.casefold() for tag in item.tags}

    def unmatched(self, items: Iterable[Item]) -> list[str]:
        """Rules that matched no item at all (a typo, most likely)."""
        items = list(items)
        missing = [
            f"filters.collections: no item is in a collection {rule!r}"
            for rule in self.collections
            if not any(self._in_collection(rule, item) for item in items)
        ]
        missing += [
            f"filters.tags: no item has the tag {rule!r}"
            for rule in self.tags
            if not any(self._has_tag(rule, item) for item in items)
        ]
        return missing


def filter_snapshot(
    snapshot: LibrarySnapshot, sync_filter: SyncFilter, pinned: Collection[str] = ()
) -> LibrarySnapshot:
    """The snapshot with only the items that get notes (`all_keys` untouched, see above)."""
    if not sync_filter.active:
        return snapshot
    kept = tuple(i for i in snapshot.items if i.key in pinned or sync_filter.matches(i))
    warnings = list(snapshot.warnings)
    if not snapshot.incremental and snapshot.items:
        warnings += sync_filter.unmatched(snapshot.items)
    return replace(snapshot, items=kept, warnings=tuple(warnings))
