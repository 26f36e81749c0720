"""The constrained scalar types every contract is built from.

Each one exists twice, here and in ``schemas/events/envelope.v1.json#/$defs``; the contract test
(tests/contracts/test_schema_agreement.py) checks the two against each other, so change both together.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

# Counters and money stay exact in JavaScript (the board) and fit ClickHouse Int64.
MAX_SAFE_INT = 9_007_199_254_740_991
# 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in ms: a timestamp in seconds (1.7e9) falls below the
# floor, which is the most common unit mistake a collector makes.
MIN_TIME_MS = 946_684_800_000
MAX_TIME_MS = 4_102_444_800_000
PPM_SCALE = 1_000_000

# Our own identifiers (contest, contestant, round, judge, criterion, group...). No colon: the topic key
# is ``contest_id:contestant_id``.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
ID_MAX_LENGTH = 64
# Identifiers the platforms hand us (accounts, rooms, videos, orders, messages): any text without
# whitespace or control characters. Spelled out rather than ``\S`` because Python's ``re`` (jsonschema)
# and Rust's ``regex`` (pydantic-core) disagree on what ``\s`` covers (e.g. U+001C..U+001F). Lengths are
# separate keywords: a counted repetition of a large class costs the regex engine ~1 µs per field.
PLATFORM_REF_PATTERN = r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u180e\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]+$"
PLATFORM_REF_MAX_LENGTH = 128
EVENT_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"
SHA256_HEX_PATTERN = r"^[0-9a-f]{64}$"
# Judges' points and adjustments travel as decimal strings so "8.5" never becomes 8.4999999.
DECIMAL_PATTERN = r"^(0|[1-9][0-9]{0,5})(\.[0-9]{1,4})?$"
SIGNED_DECIMAL_PATTERN = r"^-?(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$"
RAW_TOPIC_PATTERN = r"^lb\.raw\.v[0-9]+$"

Count = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
Fen = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
Millis = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
TimeMs = Annotated[int, Field(ge=MIN_TIME_MS, le=MAX_TIME_MS)]
Ppm = Annotated[int, Field(ge=0, le=PPM_SCALE)]
Id = Annotated[str, Field(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)]
PlatformRef = Annotated[str, Field(pattern=PLATFORM_REF_PATTERN, max_length=PLATFORM_REF_MAX_LENGTH)]
EventId = Annotated[str, Field(pattern=EVENT_ID_PATTERN)]
Sha256Hex = Annotated[str, Field(pattern=SHA256_HEX_PATTERN)]
DecimalStr = Annotated[str, Field(pattern=DECIMAL_PATTERN)]
SignedDecimalStr = Annotated[str, Field(pattern=SIGNED_DECIMAL_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=2000)]

Platform = Literal["douyin", "kuaishou", "wechat_channels"]
Source = Literal["poll", "push", "manual"]
Revision = Literal["provisional", "final"]

PLATFORMS: tuple[str, ...] = ("douyin", "kuaishou", "wechat_channels")
