"""One retry policy for the scorer's ClickHouse work and its sends to the internal topic (tenacity),
driven by the service clock.

Every write and read of the scorer that ClickHouse may refuse (an outage, a restart, a lost answer) is
retried the same way: for ever (results are never dropped; offsets stay held meanwhile), with an
exponential back-off from ``retry_base_s`` up to ``retry_cap_s``, each failure logged with what was being
done. The waits go through ``Clock.sleep`` — the event loop's clock by default — so a test can drive them
without real time passing and a cancelled service stops at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

log = logging.getLogger(__name__)

T = TypeVar("T")


class Clock:
    """The service clock: what a retry waits on. ``asyncio.sleep`` in a service."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float
    cap_s: float
    clock: Clock = field(default_factory=Clock)

    def _retrying(
        self,
        what: str,
        on_failure: Callable[[BaseException, float], None] | None,
        final: tuple[type[BaseException], ...] = (),
    ) -> AsyncRetrying:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            if exc is not None and on_failure is not None:
                on_failure(exc, delay)
            log.error(
                f"{what}: failed, retrying",
                extra={"fields": {"error": repr(exc)[:300], "attempt": state.attempt_number, "retry_in_s": delay}},
            )

        return AsyncRetrying(
            sleep=self.clock.sleep,
            wait=wait_exponential(multiplier=self.base_s, min=self.base_s, max=self.cap_s),
            # never CancelledError (a stopping service stops), nor an answer that would only come again (``final``)
            retry=retry_if_exception(lambda e: isinstance(e, Exception) and not isinstance(e, final)),
            before_sleep=before_sleep,
            reraise=True,
        )

    async def call(
        self,
        what: str,
        fn: Callable[[], Awaitable[T]],
        on_failure: Callable[[BaseException, float], None] | None = None,
        final: tuple[type[BaseException], ...] = (),
    ) -> T:
        """Await ``fn()`` until it succeeds. ``on_failure(exc, next_delay)`` runs after each failure; an
        exception of a ``final`` type is raised at once (a refusal, not an outage)."""
        async for attempt in self._retrying(what, on_failure, final):
            with attempt:
                return await fn()
        raise AssertionError("unreachable: the policy never stops")  # pragma: no cover

    async def in_thread(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run the blocking ``fn`` in a worker thread until it succeeds."""
        return await self.call(what, lambda: asyncio.to_thread(fn))
