"""``liveboard score slot``: record a contestant's live slot in a slot-limited round (``live_slot_assigned``).

The contest file's ``slots.schedule`` is the plan made before the day; the organiser's draw, a late change
or a technical restart moves a contestant's slot with this command. The event goes to ``lb.events.v1`` like
any other fact, so the scorer, replay, freezes and ``score explain`` all see it (docs/scoring.md, "Live
slots"). What the scorer would ignore or count as nothing is refused here, with the reason.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from liveboard.contracts import encode_event, manual_event
from liveboard.contracts.contest import Contest, TimeValue
from liveboard.errors import ValidationError
from liveboard.kafka.catalog import EVENTS
from liveboard.kafka.clients import make_producer
from liveboard.settings import Settings

_TIME: TypeAdapter[int] = TypeAdapter(TimeValue)


def parse_time(text: str, what: str) -> int:
    """UTC ms from ISO-8601 with an offset (``2020-09-26T09:00:00+08:00``) or from UTC ms digits."""
    value: Any = int(text) if text.strip().isdigit() else text
    try:
        return _TIME.validate_python(value)
    except PydanticValidationError as exc:
        msg = exc.errors(include_url=False)[0]["msg"].replace("Value error, ", "")
        raise ValidationError(f"{what}: {msg}") from None


def slot_event(
    contest: Contest,
    round_id: str,
    contestant_id: str,
    start: int,
    end: int,
    reason: str | None,
    observed_at: int,
) -> Any:
    """The validated ``live_slot_assigned`` event, or ValidationError naming what is wrong."""
    try:
        rnd = contest.round(round_id)
    except KeyError:
        known = ", ".join(r.id for r in contest.rounds())
        raise ValidationError(f"round: {contest.id} has no round {round_id!r} (rounds: {known})") from None
    if rnd.slots is None:
        raise ValidationError(
            f"round: {round_id!r} is not slot-limited (its contest file has no slots:); a slot would change nothing"
        )
    if end <= start:
        raise ValidationError("end: must be after start")
    if start < rnd.window.start or end > rnd.window.end:
        raise ValidationError(
            f"start/end: the slot must lie inside the round's window [{rnd.window.start}, {rnd.window.end})"
        )
    data = {"round_id": round_id, "start": start, "end": end, "reason": reason}
    return manual_event("live_slot_assigned", contest.id, contestant_id, observed_at, data)


async def publish(settings: Settings, event: Any) -> None:
    producer = make_producer(settings, client_id="liveboard-slot", linger_ms=0)
    try:  # stopped even when it cannot start: no 'Unclosed AIOKafkaProducer' after the error
        await producer.start()
        await producer.send_and_wait(
            settings.topic(EVENTS),
            key=f"{event.contest_id}:{event.contestant_id}".encode(),
            value=encode_event(event),
            headers=[("type", b"live_slot_assigned"), ("schema_version", b"1")],
        )
    finally:
        await producer.stop()
