"""`zob watch`: the daemon. Watchers queue events → a debouncer → the same `sync()` as `zob sync`.

The shape follows watchdog's debounced example: observer threads only put raw events on a
queue; the main thread drains it, drops what does not matter, waits until a burst has been
quiet for `debounce_seconds`, and then calls `bridge.sync.sync` — incremental thanks to the
cursor in the state DB. Everything that could go wrong is handled in that one thread:

- **No feedback loop.** The daemon's own note writes fire file events too. A vault event
  counts only when the file's etag (`mtime_ns;size;inode`) differs from the etag the state DB
  recorded for that path when the bridge last wrote it (or from the etag the daemon saw when a
  sync consumed the user's edit). Zotero's files are only ever read (copied), and open/close
  events are not subscribed to, so reading them fires nothing.
- **One daemon per vault.** `<vault>/.zotero-bridge/daemon.lock` is held with `flock`
  (Windows: `msvcrt.locking`) for the daemon's lifetime; the kernel drops it when the process
  dies, so a lock left by a killed daemon is simply taken over. The file carries the pid and a
  live status (`zob status` reads it).
- **Signals.** SIGINT/SIGTERM set a flag: a running sync stops between two atomic note writes
  (what was written is adopted by the next sync), observers stop, the lock is released, exit 0.
  SIGHUP reloads the config file.
- **Faults never kill it.** Any failed sync (database missing/locked/corrupt, vault gone, disk
  full, a template error) is logged and recorded, and retried with bounded exponential
  backoff; a file event shortens the wait (but never below one retry per second).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import logging.handlers
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

from bridge import api_server
from bridge.config import APP_NAME, Config, require_vault
from bridge.errors import BridgeError, DaemonRunningError
from bridge.locks import try_lock as _try_lock
from bridge.locks import unlock as _unlock
from bridge.redact import RedactingFilter, redact
from bridge.retries import fingerprint, held_fingerprints
from bridge.stamps import iso
from bridge.state import STATE_DIRNAME, State, check_state_folder
from bridge.statefolder import StateFileRefused, StateFolder, describe
from bridge.vault.fs import etag_of
from bridge.vault.guard import inside_any, zotero_folders_in_vault

log = logging.getLogger("bridge.daemon")

LOCK_NAME = "daemon.lock"
META_KEY = "daemon"  # the daemon's status in the state DB's meta table (JSON)
LOG_FILE = "watch.log"
WATCH_CHECK_SECONDS = 5.0  # how often watches are checked (folder replaced, thread died)
POLLING_INTERVAL = 1.0  # PollingObserver's scan interval
MAX_BURST_FACTOR = 4  # a burst that never goes quiet still syncs after 4 × debounce (≥ 2 s)
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
STOP_GRACE_SECONDS = 3.5  # a sync that reaches no safe point by then is abandoned (see _on_stop)
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "fuse.rclone", "davfs",
     "fuse.davfs2", "vboxsf", "afpfs", "fuse.gvfsd-fuse", "fuse.s3fs"}
)  # fmt: skip


# ---------------------------------------------------------------------------------- logging


class _LogFile(logging.handlers.RotatingFileHandler):
    """`watch.log`, never opened through a link: one planted in its place (or a FIFO, or a
    second hard link) is refused with `StateFileRefused`, not appended to."""

    def _open(self) -> Any:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        path = Path(self.baseFilename)
        try:
            fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise StateFileRefused(path, describe(path, path.lstat()) or "is a link") from None
        problem = describe(path, os.fstat(fd))
        if problem:
            os.close(fd)
            raise StateFileRefused(path, problem)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)  # noqa: SIM115


def setup_logging(verbose: bool) -> Path | None:
    """Human-readable lines on stderr and in a rotating file in the platform log dir."""
    import platformdirs

    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.addFilter(RedactingFilter())
    console.setFormatter(logging.Formatter("%(asctime)s zob watch: %(message)s", "%H:%M:%S"))
    log.addHandler(console)
    log_dir = Path(platformdirs.user_log_dir(APP_NAME))
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / LOG_FILE
        to_file = _LogFile(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the log file in %s (%s); logging to stderr only", log_dir, exc)
        return None
    to_file.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(message)s"))
    to_file.addFilter(RedactingFilter())
    log.addHandler(to_file)
    return path


# ------------------------------------------------------------------------------------- lock


def _read_all(fd: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, 1 << 20, 0)
    os.lseek(fd, 0, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, 1 << 20)  # pragma: no cover - Windows


def _read_json(fd: int) -> dict[str, Any]:
    """The lock file's content; a write may be under way, so a torn read is retried."""
    for _ in range(5):
        try:
            text = _read_all(fd).decode("utf-8", "replace")
        except OSError:
            return {}
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError:
            time.sleep(0.02)
    return {}


class DaemonLock:
    """`<vault>/.zotero-bridge/daemon.lock`: held for the daemon's whole life.

    The file is never deleted (deleting lock files races); a clean exit empties it. Its
    content is the holder's pid and live status, rewritten as the daemon works. It is opened
    without following a link (`StateFolder`): a planted link is refused, not truncated.
    """

    def __init__(self, vault: Path) -> None:
        self.vault = vault
        self.path = vault / STATE_DIRNAME / LOCK_NAME
        self.fd: int | None = None
        self.inode: int | None = None

    def acquire(self, status: dict[str, Any]) -> None:
        """Take the lock or raise `DaemonRunningError` naming the running daemon's pid."""
        try:
            with StateFolder(self.vault) as folder:
                fd = folder.open(LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BridgeError(
                f"cannot create {self.path}: {exc.strerror or exc}",
                "check that the vault folder exists and is writable",
            ) from exc
        for attempt in range(4):  # a `zob status` probe holds it for microseconds
            if _try_lock(fd):
                break
            if attempt == 3:
                holder = _read_json(fd)
                os.close(fd)
                pid = holder.get("pid", "unknown")
                raise DaemonRunningError(
                    f"another `zob watch` (pid {pid}) is already watching this vault",
                    f"stop it first (kill {pid}), or use `zob status` to see what it does",
                )
            time.sleep(0.05)
        previous = _read_json(fd)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            log.info(
                "taking over the lock of a daemon that did not stop cleanly (pid %s)",
                previous["pid"],
            )
        self.fd = fd
        self.inode = os.fstat(fd).st_ino
        self.write(status)

    def write(self, status: dict[str, Any]) -> None:
        if self.fd is None:
            return
        data = json.dumps(status, ensure_ascii=False).encode()
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
            os.write(self.fd, data)

    def still_ours(self) -> bool:
        """False when the lock file vanished or was replaced (vault unmounted, folder reset)."""
        try:
            return self.inode is not None and self.path.lstat().st_ino == self.inode
        except OSError:
            return False

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        with contextlib.suppress(OSError):
            _unlock(self.fd)
        os.close(self.fd)
        self.fd = None


def probe_lock(vault: Path) -> dict[str, Any] | None:
    """The running daemon's live status for `vault`, or None when no daemon holds the lock.
    A link planted as the lock file is refused (`StateFileRefused`), never read through."""
    try:
        with StateFolder(vault, create=False) as folder:
            fd = folder.open(LOCK_NAME, os.O_RDONLY if os.name != "nt" else os.O_RDWR)
    except OSError:
        return None
    try:
        if _try_lock(fd, shared=True):
            _unlock(fd)
            return None
        return _read_json(fd) or {"pid": None}
    finally:
        os.close(fd)


def daemon_status(vault: Path, recorded: str | None) -> dict[str, Any]:
    """For `zob status`: whether a daemon runs for this vault, and what it last did.

    `recorded` is the state DB's copy (kept after the daemon stops); the lock file's copy is
    the live one while it runs.
    """
    live = probe_lock(vault)
    info: dict[str, Any] = {}
    if recorded:
        with contextlib.suppress(ValueError):
            info.update(json.loads(recorded))
    if live is not None:
        info.update(live)
    info["running"] = live is not None
    return info


# ----------------------------------------------------------------------- debounce & backoff


@dataclass
class Debouncer:
    """Trailing-edge debounce: fire once a burst has been quiet for `quiet` seconds, or
    `longest` seconds after it began when it never goes quiet (Zotero importing)."""

    quiet: float
    longest: float
    first: float | None = None
    last: float | None = None

    def note(self, now: float) -> None:
        self.first = now if self.first is None else self.first
        self.last = now

    def deadline(self) -> float | None:
        if self.first is None or self.last is None:
            return None
        return min(self.last + self.quiet, self.first + self.longest)

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    def reset(self) -> None:
        self.first = self.last = None


@dataclass
class Backoff:
    """Bounded exponential backoff: 1, 2, 4 … 60 s between retries of a failing sync."""

    first: float = BACKOFF_FIRST
    most: float = BACKOFF_MAX
    failures: int = 0
    retry_at: float | None = None
    last_attempt: float = 0.0

    def failed(self, now: float) -> float:
        self.failures += 1
        delay = min(self.most, self.first * 2 ** (self.failures - 1))
        self.retry_at = now + delay
        self.last_attempt = now
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = None

    def hurry(self, when: float) -> None:
        """A file changed: maybe the fault is fixed. Retry then, but at most once a second."""
        if self.retry_at is not None:
            self.retry_at = min(self.retry_at, max(when, self.last_attempt + self.first))


# ----------------------------------------------------------------------------- watching


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


# -------------------------------------------------------------------- what counts as a change


@dataclass
class VaultFilter:
    """Tells the user's edits from the daemon's own writes (and from noise)."""

    root: Path
    papers_folder: str
    written: dict[str, str | None] = field(default_factory=dict)  # path → etag in state DB
    consumed: dict[str, str | None] = field(default_factory=dict)  # path → etag a sync read
    # notes that could not take Zotero's change (`bridge.retries`): path → fingerprint then;
    # making one writable (chmod) moves no etag, yet must bring the sync it waits for
    held: dict[str, str | None] = field(default_factory=dict)
    # Zotero's data directory when it lies inside the vault (`bridge.vault.guard`): its files
    # are Zotero's, never notes
    skip: frozenset[str] = frozenset()

    def rel(self, path: str) -> str | None:
        try:
            rel = PurePosixPath(Path(path).relative_to(self.root).as_posix())
        except ValueError:
            return None
        if any(part.startswith(".") for part in rel.parts):
            return None  # .zotero-bridge, .obsidian, .trash, the bridge's temp files
        if self.skip and inside_any(str(rel), self.skip):
            return None
        return str(rel)

    def relevant_paths(self, event: RawEvent) -> list[str]:
        """The vault-relative note paths this event may have changed."""
        paths = [p for p in (event.src, event.dest) if p]
        if event.is_directory:
            # a folder's mode matters only to the notes held in it; a move or delete, to all
            notes = self.held if event.kind in ("attrib", "modified") else self.written
            found = []
            for path in paths:
                rel = self.rel(path)
                if rel is not None:
                    found += [p for p in notes if p.startswith(rel + "/")]
            return found
        rels = [self.rel(p) for p in paths]
        return [r for r in rels if r is not None and r.endswith(".md") and self._watched(r)]

    def _watched(self, rel: str) -> bool:
        return rel in self.written or rel.startswith(self.papers_folder.rstrip("/") + "/")

    def etag(self, rel: str) -> str | None:
        try:
            return etag_of(os.stat(self.root / rel, follow_symlinks=False))
        except OSError:
            return None

    def changed(self, rel: str) -> str | None | bool:
        """The file's etag when it changed since the bridge wrote or read it; False if not."""
        current = self.etag(rel)
        if rel in self.held and fingerprint(self.root, rel) != self.held[rel]:
            return current
        if rel in self.written and self.written[rel] == current:
            return False
        if rel in self.consumed and self.consumed[rel] == current:
            return False
        if current is None and rel not in self.written:
            return False  # something that never was a note came and went
        return current

    def refresh(self, state: State) -> None:
        self.written = state.note_etags()
        self.held = held_fingerprints(state)


# ------------------------------------------------------------------------------- the daemon


class _Stopping(Exception):
    """Raised between two note writes when SIGTERM/SIGINT arrived during a sync."""


@dataclass
class Status:
    """What the daemon tells `zob status` (lock file: live; state DB: kept after exit)."""

    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    since: str = field(default_factory=iso)
    mode: str = ""
    syncs: int = 0
    last_sync_at: str | None = None
    last_sync_seconds: float | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    failures: int = 0
    next_retry_in: float | None = None
    log_file: str | None = None
    stopped_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Daemon:
    """One `zob watch`: owns the lock, the observers, and the loop that calls `sync()`."""

    def __init__(
        self,
        load_config: Callable[[], Config],
        *,
        polling: bool = False,
        log_file: Path | None = None,
    ) -> None:
        self.load_config = load_config
        self.config = load_config()
        self.vault = require_vault(self.config).resolve()
        self.polling_flag = polling
        self.events: queue.SimpleQueue[RawEvent] = queue.SimpleQueue()
        self.wake = threading.Event()
        self.stop_requested = False
        self.reload_requested = False
        self.syncing = False
        self.lock = DaemonLock(self.vault)
        self.status = Status(log_file=str(log_file) if log_file else None)
        self.filter = VaultFilter(
            self.vault,
            self.config.papers_folder,
            skip=zotero_folders_in_vault(self.vault, self.config.zotero_dir),
        )
        self.debounce = self._debouncer()
        self.backoff = Backoff()
        self.watches = Watches(self._queue_event, self._polling())
        self.triggers: set[str] = set()
        self.pending_consumed: dict[str, str | None] = {}
        self.next_poll: float | None = None
        # notes deferred while being saved: sync again once they settle (monotonic time)
        self.next_settle: float | None = None
        self.next_watch_check = 0.0
        self.zotero_db, self.zotero_dir = self._zotero_paths()

    # -- setup

    def _debouncer(self) -> Debouncer:
        quiet = self.config.debounce_seconds
        return Debouncer(quiet, max(2.0, MAX_BURST_FACTOR * quiet))

    def _polling(self) -> bool:
        return self.polling_flag or bool(getattr(self.config, "watch_polling", False))

    def _targets(self) -> list[tuple[str, Path, bool]]:
        """(origin, folder, recursive) to watch for the current config."""
        targets: list[tuple[str, Path, bool]] = [("vault", self.vault, True)]
        if self.zotero_dir is not None:
            targets.append(("zotero", self.zotero_dir, False))
            cache = self.zotero_dir / "cache" / "library"
            if cache.is_dir():
                targets.append(("zotero", cache, True))
        return targets

    def _zotero_paths(self) -> tuple[Path | None, Path | None]:
        """zotero.sqlite and the data directory, when the source is the sqlite file."""
        if self.config.source != "sqlite" or self.config.zotero_dir is None:
            return None, None
        from bridge.sources.sqlite import SqliteSource

        source = SqliteSource(self.config.zotero_dir)
        return source.db_path, source.data_dir

    def _describe_mode(self) -> str:
        if self.config.source in ("web", "local"):
            return f"polling the {self.config.source} API every {self.config.poll_seconds:g} s"
        if self.config.source == "sqlite":
            return "file polling" if self._polling() else "file events"
        return "vault only (the sample source never changes)"

    # -- signals

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        """Ask the loop to stop. A sync stops at its next safe point (between two atomic note
        writes). Planning a huge first sync has no such point for a while: if the sync is
        still busy after STOP_GRACE_SECONDS, or on a second signal, the process exits at once.
        That loses nothing: every note write is a rename, the state DB commits atomically, and
        the next start adopts notes written but not yet recorded (found by zotero_key)."""
        if self.stop_requested:
            self._abandon("second stop signal")
        self.stop_requested = True
        self.wake.set()
        if self.syncing:
            timer = threading.Timer(STOP_GRACE_SECONDS, self._abandon, ("sync still busy",))
            timer.daemon = True
            timer.start()

    def _abandon(self, why: str) -> None:
        if not self.syncing:
            return
        log.warning("%s; exiting now (writes are atomic; the next start catches up)", why)
        self.lock.release()
        logging.shutdown()
        os._exit(0)

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested = True
        self.wake.set()

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous  # embedded in a thread (tests): the caller stops it
        wanted: list[tuple[str, Callable[..., None]]] = [
            ("SIGINT", self._on_stop), ("SIGTERM", self._on_stop), ("SIGHUP", self._on_hup),
        ]  # fmt: skip
        for name, handler in wanted:
            signum = getattr(signal, name, None)
            if signum is not None:
                previous[signum] = signal.signal(signum, handler)
        return previous

    # -- the loop

    def run(self) -> int:
        """Sync, then watch until SIGINT/SIGTERM. Returns the exit code (0)."""
        check_state_folder(self.vault)
        self.lock.acquire(self.status.as_dict())
        previous = self._install_signals()
        api = api_server.serve(self.vault, lambda: self.config, self.status.as_dict)  # Obsidian
        try:
            if self.status.log_file:
                log.info("log file: %s", self.status.log_file)
            self.status.mode = self._describe_mode()
            log.info(
                "pid %d watching vault %s (%s); Ctrl-C or SIGTERM stops, SIGHUP reloads config",
                os.getpid(), self.vault, self.status.mode,
            )  # fmt: skip
            self.watches.start(self._targets())
            self.next_watch_check = time.monotonic() + WATCH_CHECK_SECONDS
            self._sync("start")
            while not self.stop_requested:
                try:
                    self._step()
                except Exception:  # a bug in the loop itself: log it, keep the vault watched
                    log.exception("internal error in the watch loop (please report it)")
                    time.sleep(1.0)
        finally:
            if api is not None:
                api.close()
            self.watches.stop()
            self.status.stopped_at = iso()
            self.status.next_retry_in = None
            self._publish()
            self.lock.release()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            log.info("stopped")
        return 0

    def _step(self) -> None:
        self.wake.wait(self._wait_seconds())
        self.wake.clear()
        if self.stop_requested:
            return
        if self.reload_requested:
            self.reload_requested = False
            self._reload()
        now = time.monotonic()
        self._drain(now)
        if now >= self.next_watch_check:
            self._check_watches()
        if self.backoff.retry_at is not None:  # failing: retries replace the debounce
            if now >= self.backoff.retry_at:
                self._sync("retry")
        elif self.debounce.due(now):
            self._sync(self._reason())
        elif self.next_settle is not None and now >= self.next_settle:
            self._sync("a note being saved settled")
        elif self.next_poll is not None and now >= self.next_poll:
            self._sync("poll")

    def _wait_seconds(self) -> float:
        now = time.monotonic()
        failing = self.backoff.retry_at is not None
        deadlines = [self.next_watch_check, self.backoff.retry_at, self.next_poll,
                     None if failing else self.next_settle,
                     None if failing else self.debounce.deadline()]  # fmt: skip
        soonest = min((d for d in deadlines if d is not None), default=now + 1.0)
        return max(0.0, min(soonest - now, WATCH_CHECK_SECONDS))

    def _queue_event(self, event: RawEvent) -> None:
        """Called from observer threads."""
        self.events.put(event)
        self.wake.set()

    def _drain(self, now: float) -> None:
        """Take queued events; those that matter start or extend the debounce window."""
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            reason = self._classify(event)
            if reason is None:
                continue
            log.debug("%s: %s %s", reason, event.kind, event.dest or event.src)
            self.triggers.add(reason)
            self.debounce.note(now)
            self.backoff.hurry(now + self.debounce.quiet)

    def _classify(self, event: RawEvent) -> str | None:
        if event.origin == "zotero":
            return "Zotero changed" if self._zotero_file(event) else None
        changed = False
        for rel in self.filter.relevant_paths(event):
            etag = self.filter.changed(rel)
            if etag is not False:
                self.pending_consumed[rel] = etag if isinstance(etag, str) else None
                changed = True
        return "a note changed" if changed else None

    def _zotero_file(self, event: RawEvent) -> bool:
        """zotero.sqlite, its -wal/-journal, Better BibTeX's database, the image cache."""
        data_dir = self.zotero_dir
        if data_dir is None or self.zotero_db is None:
            return False
        names = {f"{self.zotero_db.name}{s}" for s in ("", "-wal", "-journal")}
        names |= {f"better-bibtex.sqlite{s}" for s in ("", "-wal", "-journal")}
        cache = data_dir / "cache"
        for path in (event.src, event.dest):
            if not path:
                continue
            p = Path(path)
            if (p.parent == data_dir and p.name in names) or (cache == p or cache in p.parents):
                return True
        return False

    def _reason(self) -> str:
        return ", ".join(sorted(self.triggers)) or "change"

    # -- one sync

    def _sync(self, reason: str) -> None:
        from bridge.sync import SyncOptions, sync

        self.debounce.reset()
        self.next_settle = None
        self.triggers.clear()
        consumed, self.pending_consumed = self.pending_consumed, {}
        started = time.monotonic()
        self.syncing = True
        try:
            self._check_vault()
            # notes being saved are not waited for here: the loop syncs again when they settle
            options = SyncOptions(wait_for_saves=False)
            result = sync(self.config, options, progress=self._progress)
        except _Stopping:
            log.info("stopping in the middle of a sync; notes written so far are complete")
            return
        except Exception as exc:  # noqa: BLE001 - a fault must never kill the daemon
            self.pending_consumed = {**consumed, **self.pending_consumed}
            self._failed(reason, exc)
            return
        finally:
            self.syncing = False
        seconds = time.monotonic() - started
        self.filter.consumed.update(consumed)
        try:
            self._refresh_filter()
        except Exception as exc:  # noqa: BLE001 - next sync refreshes it again
            log.warning("cannot read back what the sync wrote (%s)", exc)
        self.backoff.succeeded()
        if self.config.source in ("web", "local"):
            self.next_poll = time.monotonic() + self.config.poll_seconds
        self.status.syncs += 1
        self.status.last_sync_at = iso()
        self.status.last_sync_seconds = round(seconds, 3)
        self.status.failures = 0
        self.status.next_retry_in = None
        counts = ", ".join(
            f"{k} {getattr(result, k)}"
            for k in ("created", "updated", "conflicts", "skipped", "deleted")
            if getattr(result, k)
        )
        log.info(
            "sync #%d (%s) done in %.2f s: %s",
            self.status.syncs, reason, seconds, counts or "nothing to change",
        )  # fmt: skip
        for error in result.errors:
            log.warning("skipped: %s", error["message"])
        if result.deferred:
            for deferred in result.deferred:
                log.info("waiting: %s", deferred["message"])
            quiet = max(d["settles_at"] for d in result.deferred) - time.time()
            self.next_settle = time.monotonic() + min(max(quiet, 0.0), 60.0) + 0.05
        for warning in result.warnings:
            log.debug("warning: %s", warning)
        self._publish()

    def _progress(self, total: int) -> Callable[[int], None]:
        def tick(_: int) -> None:
            if self.stop_requested:
                raise _Stopping

        return tick

    def _check_vault(self) -> None:
        """Refuse to sync into a vault that vanished: an unmounted drive leaves an empty mount
        point, and a sync there would happily create every note anew."""
        if not self.vault.is_dir():
            raise BridgeError(f"the vault {self.vault} is gone (unmounted?)", "waiting for it")
        if not self.lock.still_ours():
            raise BridgeError(
                f"{self.lock.path} vanished: the vault was unmounted, moved or reset",
                "restart `zob watch` once the vault is back",
            )

    def _failed(self, reason: str, exc: Exception) -> None:
        now = time.monotonic()
        delay = self.backoff.failed(now)
        if isinstance(exc, BridgeError):
            message = exc.message
        else:
            message = f"{type(exc).__name__}: {exc}"
            log.debug("traceback of the failed sync", exc_info=exc)
        message = redact(message)  # it may quote a server's answer or a URL
        self.status.failures = self.backoff.failures
        self.status.last_error = message
        self.status.last_error_at = iso()
        self.status.next_retry_in = round(delay, 1)
        log.error("sync (%s) failed: %s — retrying in %.0f s", reason, message, delay)
        self._publish()
        self.next_watch_check = min(self.next_watch_check, now)

    def _refresh_filter(self) -> None:
        with State(self.vault) as state:
            self.filter.refresh(state)
        # drop consumed etags the state DB now knows anyway; keep the rest bounded
        for rel in [r for r in self.filter.consumed if r in self.filter.written]:
            if self.filter.written[rel] == self.filter.consumed[rel]:
                del self.filter.consumed[rel]
        if len(self.filter.consumed) > 10_000:
            self.filter.consumed.clear()

    # -- upkeep

    def _check_watches(self) -> None:
        self.next_watch_check = time.monotonic() + WATCH_CHECK_SECONDS
        targets = self._targets()
        if self.watches.healthy(targets):
            return
        log.info("a watched folder appeared, vanished or was replaced; watching again")
        self.watches.stop()
        self.watches = Watches(self._queue_event, self._polling())
        self.watches.start(targets)
        self.debounce.note(time.monotonic())  # something may have changed unseen
        self.triggers.add("watches renewed")

    def _reload(self) -> None:
        try:
            config = self.load_config()
            require_vault(replace(config, vault=self.vault))  # a new zotero_dir may cover it
        except BridgeError as exc:
            log.error("config reload failed, keeping the previous settings: %s", exc)
            return
        if config.vault is None or config.vault.resolve() != self.vault:
            log.warning("the vault cannot change while running; restart `zob watch` for that")
            config = replace(config, vault=self.vault)
        old_targets = self._targets()
        self.config = config
        self.zotero_db, self.zotero_dir = self._zotero_paths()
        self.filter.papers_folder = config.papers_folder
        self.filter.skip = zotero_folders_in_vault(self.vault, config.zotero_dir)
        self.debounce = self._debouncer()
        if self._targets() != old_targets or self.watches.polling != self._polling():
            self.watches.stop()
            self.watches = Watches(self._queue_event, self._polling())
            self.watches.start(self._targets())
        self.status.mode = self._describe_mode()
        self.next_poll = None
        log.info("config reloaded (%s)", config.config_file or "flags only")
        self._sync("config reloaded")

    def _publish(self) -> None:
        """Live status into the lock file; a copy into the state DB when it exists (never
        creating one: the vault may be an empty mount point)."""
        data = self.status.as_dict()
        self.lock.write(data)
        if not (self.vault / STATE_DIRNAME / "state.sqlite").is_file():
            return
        try:
            with State(self.vault) as state, state.transaction():
                state.set_meta(META_KEY, json.dumps(data, ensure_ascii=False))
        except Exception as exc:  # noqa: BLE001 - status is best effort
            log.debug("cannot record the status in the state DB: %s", exc)


def watch(
    load_config: Callable[[], Config], *, polling: bool = False, verbose: bool = False
) -> int:
    """`zob watch`: run the daemon in the foreground until SIGINT/SIGTERM."""
    require_vault(load_config())  # a vault the bridge must not fill: refused before any write
    log_file = setup_logging(verbose)
    return Daemon(load_config, polling=polling, log_file=log_file).run()
