"""The daemon's log: human-readable lines on stderr and in a rotating `watch.log`."""

from __future__ import annotations

import errno
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Any

from bridge.config import APP_NAME
from bridge.redact import RedactingFilter
from bridge.statefolder import StateFileRefused, describe

log = logging.getLogger("bridge.daemon")  # one logger for the whole daemon (`setup_logging`)
LOG_FILE = "watch.log"


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
