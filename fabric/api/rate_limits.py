"""Per-caller limits of an endpoint's calls: requests and tokens in the last minute.

An endpoint's spec sets `rate_limit` (requests and tokens per minute); each key, member's
token or the anonymous public has its own window. Windows live in the server process: with
several servers (or workers) each admits up to the limit, which the limit's owner should
divide by their number.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fabric.errors import RateLimited

WINDOW_SECONDS = 60.0
# Beyond this many callers' windows, forget the idle ones rather than grow without bound.
MAX_WINDOWS = 10_000


@dataclass
class _Window:
    # (when, tokens) of each call in the last minute; tokens are added once a call ends.
    calls: deque[list[float]] = field(default_factory=deque)

    def trim(self, now: float) -> None:
        while self.calls and self.calls[0][0] <= now - WINDOW_SECONDS:
            self.calls.popleft()


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str, str], _Window] = {}
        self._lock = threading.Lock()

    def admit(
        self,
        endpoint: tuple[str, str],
        caller: str,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
    ) -> list[float] | None:
        """Count a call against the caller's window, or refuse it (RateLimited, with the
        seconds until the window has room). The call's entry, to which `spend` adds its
        tokens; None when the endpoint has no limit."""
        if requests_per_minute is None and tokens_per_minute is None:
            return None
        now = self._clock()
        with self._lock:
            window = self._window((*endpoint, caller), now)
            window.trim(now)
            if requests_per_minute is not None and len(window.calls) >= requests_per_minute:
                wait = window.calls[0][0] + WINDOW_SECONDS - now
                raise RateLimited(
                    f"rate limit reached: {requests_per_minute} requests per minute for this "
                    f"caller of {'/'.join(endpoint)}; retry in {math.ceil(wait)} s",
                    math.ceil(wait),
                )
            if tokens_per_minute is not None:
                spent = sum(tokens for _, tokens in window.calls)
                if spent >= tokens_per_minute:
                    wait = self._until_below(window, spent - tokens_per_minute, now)
                    raise RateLimited(
                        f"rate limit reached: {tokens_per_minute} tokens per minute for this "
                        f"caller of {'/'.join(endpoint)}; retry in {math.ceil(wait)} s",
                        math.ceil(wait),
                    )
            entry = [now, 0.0]
            window.calls.append(entry)
            return entry

    def spend(self, entry: list[float] | None, tokens: int) -> None:
        """The tokens a call admitted by `admit` used, counted in its window."""
        if entry is not None:
            with self._lock:
                entry[1] += tokens

    @staticmethod
    def _until_below(window: _Window, excess: float, now: float) -> float:
        """Seconds until calls holding more than `excess` tokens have left the window."""
        freed = 0.0
        for when, tokens in window.calls:
            freed += tokens
            if freed > excess:
                return max(when + WINDOW_SECONDS - now, 1.0)
        return WINDOW_SECONDS

    def _window(self, key: tuple[str, str, str], now: float) -> _Window:
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= MAX_WINDOWS:
                for stale, idle in list(self._windows.items()):
                    idle.trim(now)
                    if not idle.calls:
                        del self._windows[stale]
            window = self._windows[key] = _Window()
        return window
