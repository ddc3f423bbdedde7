"""The observers: watchdog threads that only queue raw events for the daemon's loop."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.daemon.logs import log

POLLING_INTERVAL = 1.0  # PollingObserver's scan interval
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "fuse.rclone", "davfs",
     "fuse.davfs2", "vboxsf", "afpfs", "fuse.gvfsd-fuse", "fuse.s3fs"}
)  # fmt: skip


@dataclass(frozen=True)
class RawEvent:
    origin: str  # "zotero" | "vault"
    kind: str  # watchdog's event_type: created, modified, deleted, moved, closed
    src: str
    dest: str
    is_directory: bool


def _event_types(origin: str) -> list[type]:
    from watchdog import events as ev

    # No opened / closed-without-write events: the bridge's own reads must fire nothing.
    kinds: list[type] = [
        ev.FileCreatedEvent, ev.FileModifiedEvent, ev.FileDeletedEvent, ev.FileMovedEvent,
        ev.FileClosedEvent,
    ]  # fmt: skip
    if origin == "vault":
        kinds += [ev.DirMovedEvent, ev.DirDeletedEvent]
        # chmod of a note the sync could not write, or of its folder (`VaultFilter.held`);
        # watchdog 4 has no attribute events (its modified events stand in)
        kinds += [
            getattr(ev, "FileAttribEvent", ev.FileModifiedEvent),
            getattr(ev, "DirAttribEvent", ev.DirModifiedEvent),
        ]
    else:
        kinds += [ev.DirCreatedEvent]
    return kinds


def _handler(origin: str, sink: Callable[[RawEvent], None]) -> Any:
    from watchdog.events import FileSystemEventHandler

    class Queueing(FileSystemEventHandler):
        """Runs in the observer's thread: queue the event, nothing else."""

        def on_any_event(self, event: Any) -> None:
            sink(
                RawEvent(
                    origin,
                    event.event_type,
                    os.fsdecode(event.src_path),
                    os.fsdecode(getattr(event, "dest_path", "") or ""),
                    event.is_directory,
                )
            )

    return Queueing()


def is_network_fs(path: Path) -> bool:
    """Whether `path` lives on a network file system, where inotify sees no remote changes."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    target, best, kind = str(path.resolve()), "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind in NETWORK_FS


@dataclass
class Watch:
    origin: str
    path: Path
    recursive: bool
    inode: int
    observer: Any


class Watches:
    """The observers: one per watched folder, native where possible, polling otherwise."""

    def __init__(self, sink: Callable[[RawEvent], None], polling: bool) -> None:
        self.sink = sink
        self.polling = polling
        self.watches: list[Watch] = []

    def start(self, targets: Iterable[tuple[str, Path, bool]]) -> None:
        for origin, path, recursive in targets:
            try:
                inode = path.stat().st_ino
            except OSError:
                log.debug("not watching %s: it does not exist (yet)", path)
                continue
            observer = self._observe(origin, path, recursive)
            if observer is not None:
                self.watches.append(Watch(origin, path, recursive, inode, observer))

    def _observe(self, origin: str, path: Path, recursive: bool) -> Any:
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        polling = self.polling or is_network_fs(path)
        for use_polling in (polling, True) if not polling else (True,):
            observer = PollingObserver(timeout=POLLING_INTERVAL) if use_polling else Observer()
            try:
                observer.schedule(
                    _handler(origin, self.sink),
                    str(path),
                    recursive=recursive,
                    event_filter=_event_types(origin),
                )
                observer.start()
            except OSError as exc:  # e.g. inotify watch limit reached
                log.warning("file events unavailable for %s (%s); polling it instead", path, exc)
                with contextlib.suppress(Exception):
                    observer.stop()
                continue
            how = "polling" if use_polling else "events"
            log.info("watching %s (%s)", path, how)
            return observer
        log.error("cannot watch %s; it is only checked on retries", path)
        return None

    def healthy(self, targets: Iterable[tuple[str, Path, bool]]) -> bool:
        """False when a folder was replaced, appeared, vanished, or an observer died."""
        wanted = {(origin, str(path)) for origin, path, _ in targets if path.exists()}
        have = {(w.origin, str(w.path)) for w in self.watches}
        if wanted != have:
            return False
        for watch in self.watches:
            try:
                if watch.path.stat().st_ino != watch.inode or not watch.observer.is_alive():
                    return False
            except OSError:
                return False
        return True

    def stop(self) -> None:
        for watch in self.watches:
            with contextlib.suppress(Exception):
                watch.observer.stop()
        for watch in self.watches:
            with contextlib.suppress(Exception):
                watch.observer.join(timeout=2)
        self.watches = []
