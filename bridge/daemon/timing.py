"""When the daemon syncs: after a burst of events goes quiet, and how long it waits after a
failed sync."""

from __future__ import annotations

from dataclasses import dataclass

MAX_BURST_FACTOR = 4  # a burst that never goes quiet still syncs after 4 × debounce (≥ 2 s)
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0


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
