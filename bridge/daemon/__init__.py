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

The parts: `loop` (`Daemon`, signals, `watch`), `watches` (the observers and their raw
events), `filter` (`VaultFilter`: which events are the user's), `timing` (`Debouncer`,
`Backoff`), `lock` (`DaemonLock`, `probe_lock`, `daemon_status`) and `logs`.
"""

from bridge.daemon.filter import VaultFilter
from bridge.daemon.lock import LOCK_NAME, DaemonLock, daemon_status, probe_lock
from bridge.daemon.logs import LOG_FILE, setup_logging
from bridge.daemon.loop import STOP_GRACE_SECONDS, WATCH_CHECK_SECONDS, Daemon, Status, watch
from bridge.daemon.timing import BACKOFF_FIRST, BACKOFF_MAX, MAX_BURST_FACTOR, Backoff, Debouncer
from bridge.daemon.watches import (
    NETWORK_FS,
    POLLING_INTERVAL,
    RawEvent,
    Watch,
    Watches,
    _event_types,
    _handler,
    is_network_fs,
)
from bridge.state.marks import DAEMON as META_KEY

__all__ = [
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "LOCK_NAME",
    "LOG_FILE",
    "MAX_BURST_FACTOR",
    "META_KEY",
    "NETWORK_FS",
    "POLLING_INTERVAL",
    "STOP_GRACE_SECONDS",
    "WATCH_CHECK_SECONDS",
    "Backoff",
    "Daemon",
    "DaemonLock",
    "Debouncer",
    "RawEvent",
    "Status",
    "VaultFilter",
    "Watch",
    "Watches",
    "_event_types",
    "_handler",
    "daemon_status",
    "is_network_fs",
    "probe_lock",
    "setup_logging",
    "watch",
]
