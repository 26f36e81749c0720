"""Unit and shape conversions every platform's normaliser needs.

* money: 元 floats → integer 分 with ``Decimal(str(yuan)) * 100`` rounded half-up (architecture.md), so
  ``0.1 + 0.2``-style binary noise never reaches a score; 分 integers pass through checked.
* ratios → parts per million, the same way.
* WeChat blocks may arrive as an object or as a string holding JSON: both are accepted.
* anything that is not what the field must be raises :class:`NormaliseError`, which the caller turns
  into a dead letter (the collector never stops on a bad payload).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import orjson

CST = timezone(timedelta(hours=8))
_ONE = Decimal(1)


class NormaliseError(ValueError):
    """The payload does not have the shape or values the platform documents."""


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise NormaliseError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise NormaliseError(f"{what}: expected a number, got {type(value).__name__}")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise NormaliseError(f"{what}: {value!r} is not a number") from None
    if not d.is_finite():
        raise NormaliseError(f"{what}: {value!r} is not finite")
    return d


def yuan_to_fen(value: Any, what: str = "amount") -> int:
    d = _decimal(value, what)
    if d < 0:
        raise NormaliseError(f"{what}: negative amount {value!r}")
    return int((d * 100).quantize(_ONE, rounding=ROUND_HALF_UP))


def fen(value: Any, what: str = "amount") -> int:
    """An amount the platform already sends in integer 分."""
    n = count(value, what)
    return n


def count(value: Any, what: str = "count") -> int:
    if type(value) is int and value >= 0:  # the common case first: this runs ~20 times per event
        return value
    if isinstance(value, bool):
        raise NormaliseError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    else:
        raise NormaliseError(f"{what}: expected an integer, got {value!r}")
    if n < 0:
        raise NormaliseError(f"{what}: negative {n}")
    return n


def opt_count(value: Any, what: str = "count") -> int | None:
    if value is None or (type(value) is int and value >= 0):  # inlined fast path (hot: ~15 calls per event)
        return value
    return count(value, what)


def ratio_to_ppm(value: Any, what: str = "ratio") -> int:
    d = _decimal(value, what)
    if not 0 <= d <= 1:
        raise NormaliseError(f"{what}: ratio {value!r} outside 0..1")
    return int((d * 1_000_000).quantize(_ONE, rounding=ROUND_HALF_UP))


def seconds_to_ms(value: Any, what: str = "time") -> int:
    d = _decimal(value, what)
    if d < 0:
        raise NormaliseError(f"{what}: negative {value!r}")
    return int((d * 1000).quantize(_ONE, rounding=ROUND_HALF_UP))


def block(doc: dict[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    """A WeChat data block, given as an object or as a string holding JSON."""
    value = doc.get(name)
    if value is None or value == "":
        if required:
            raise NormaliseError(f"{name}: missing")
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise NormaliseError(f"{name}: string block is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise NormaliseError(f"{name}: expected an object, got {type(value).__name__}")
    return value


def json_object(value: Any, what: str) -> dict[str, Any]:
    """A JSON object that may itself be carried as a JSON string (Douyin ``content``, Kuaishou ``info``)."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise NormaliseError(f"{what}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise NormaliseError(f"{what}: expected an object")
    return value


def cst_to_ms(text: Any, what: str = "time") -> int | None:
    """``"2026-01-01 08:00:00"`` in China Standard Time (how oceanengine sends times) → UTC ms."""
    if text in (None, "", "0"):
        return None
    if not isinstance(text, str):
        raise NormaliseError(f"{what}: expected 'YYYY-MM-DD HH:MM:SS', got {text!r}")
    ms = _cst_ms(text.strip())
    if ms is None:
        raise NormaliseError(f"{what}: {text!r} is not 'YYYY-MM-DD HH:MM:SS'")
    return ms


@lru_cache(maxsize=65_536)
def _cst_ms(text: str) -> int | None:
    # strptime is slow and a room's start time comes back in every poll: parse each string once
    try:
        dt = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
    except ValueError:
        return None
    return int(dt.timestamp() * 1000)


def epoch_s_to_ms(value: Any, what: str = "time") -> int | None:
    if value in (None, 0, "0", ""):
        return None
    return count(value, what) * 1000


def epoch_ms(value: Any, what: str = "time") -> int | None:
    if value in (None, 0, "0", ""):
        return None
    return count(value, what)
