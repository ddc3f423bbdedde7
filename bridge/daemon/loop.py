"""The daemon itself: the lock, the observers and the loop that calls `sync()` (see the
package's docstring)."""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from bridge import api_server
from bridge.config import Config, require_vault
from bridge.daemon.filter import VaultFilter
from bridge.daemon.lock import DaemonLock
from bridge.daemon.logs import log, setup_logging
from bridge.daemon.timing import MAX_BURST_FACTOR, Backoff, Debouncer
from bridge.daemon.watches import RawEvent, Watches
from bridge.errors import BridgeError
from bridge.redact import redact
from bridge.session import reading
from bridge.stamps import iso
from bridge.state import DB_NAME, STATE_DIRNAME, check_state_folder
from bridge.vault.guard import zotero_folders_in_vault

WATCH_CHECK_SECONDS = 5.0  # how often watches are checked (folder replaced, thread died)
STOP_GRACE_SECONDS = 3.5  # a sync that reaches no safe point by then is abandoned (see _on_stop)


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
        with reading(self.config, root=self.vault) as session:
            self.filter.refresh(session.state)
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
        if not (self.vault / STATE_DIRNAME / DB_NAME).is_file():
            return
        try:
            with reading(self.config, root=self.vault) as session, session.state.transaction():
                session.marks.daemon = data
        except Exception as exc:  # noqa: BLE001 - status is best effort
            log.debug("cannot record the status in the state DB: %s", exc)


def watch(
    load_config: Callable[[], Config], *, polling: bool = False, verbose: bool = False
) -> int:
    """`zob watch`: run the daemon in the foreground until SIGINT/SIGTERM."""
    require_vault(load_config())  # a vault the bridge must not fill: refused before any write
    log_file = setup_logging(verbose)
    return Daemon(load_config, polling=polling, log_file=log_file).run()
