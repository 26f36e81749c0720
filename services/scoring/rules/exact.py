"""Exact score arithmetic on integers.

Scores are carried as integers in units of 10⁻¹² point ("pico-points"). Sums and differences are
exact; every division rounds once, half to even, to the nearest pico-point. That is the only rounding
inside the engine, it is the same whatever order the contestants arrive in, and because every value is
an integer the parts of an explanation add up to the total exactly. Display rounds once more, half up,
to the contest's ``display_decimals`` (2 unless the file says otherwise).

Integers rather than ``Decimal`` or ``Fraction``: no context to switch per row, and CPython's int
arithmetic is several times faster than either on the 3,000-contestant fields we score.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from itertools import repeat

SCALE_DIGITS = 12
SCALE = 10**SCALE_DIGITS


def div_round(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half to even (denominator > 0).

    ``(2n + d) // 2d`` is ``floor(n/d + ½)``: round half up, for either sign. It is exactly halfway
    when the remainder is 0; then the even neighbour of the two is ``q`` or ``q − 1``.
    """
    q, r = divmod(2 * numerator + denominator, 2 * denominator)
    return q - 1 if r == 0 and q & 1 else q


def div_round_column(numerators: list[int], denominator: int) -> list[int]:
    """``div_round`` over a column, at list-comprehension speed (the engine's inner loop)."""
    return round_doubled([2 * n + denominator for n in numerators], denominator)


def round_doubled(doubled: list[int], denominator: int) -> list[int]:
    """``div_round`` of a column already written as ``2n + d`` (saves callers a pass over it)."""
    return [q - 1 if r == 0 and q & 1 else q for q, r in map(divmod, doubled, repeat(2 * denominator))]


def to_pico(value: Decimal | int) -> int:
    """An exact decimal (≤ 12 places) as pico-points; more places would need rounding, so refuse."""
    if isinstance(value, int):
        return value * SCALE
    scaled = value.scaleb(SCALE_DIGITS)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {SCALE_DIGITS} decimal places")
    return int(scaled)


def ratio_parts(value: Decimal) -> tuple[int, int]:
    """A decimal as an exact fraction ``(numerator, denominator)``, denominator > 0."""
    n, d = value.as_integer_ratio()
    return n, d


def from_pico(value: int) -> Decimal:
    """Pico-points as an exact Decimal with 12 places (e.g. ``Decimal('87.500000000000')``)."""
    return Decimal(value).scaleb(-SCALE_DIGITS)


_POW10 = [10**k for k in range(SCALE_DIGITS + 1)]


def pico_text(value: int) -> str:
    """Pico-points as plain decimal text with 12 places: ``format(from_pico(value), "f")`` by integer
    arithmetic (a leaderboard row has several; Decimal construction showed in the row builder's profile)."""
    q, r = divmod(-value if value < 0 else value, SCALE)
    return f"-{q}.{r:012d}" if value < 0 else f"{q}.{r:012d}"


def display(value: int, decimals: int = 2) -> str:
    """The one display rounding: half up to ``decimals`` places (87.125 → "87.13").

    Half up means away from zero, as Decimal's ROUND_HALF_UP; a negative value that rounds to zero keeps its
    sign ("-0.00"), as the Decimal text does. Up to 6 places by integer arithmetic; more (where Decimal would
    write an exponent) through Decimal itself."""
    if 0 <= decimals <= 6:
        unit = _POW10[SCALE_DIGITS - decimals]
        q, r = divmod(-value if value < 0 else value, unit)
        if 2 * r >= unit:
            q += 1
        sign = "-" if value < 0 else ""
        if decimals == 0:
            return f"{sign}{q}"
        whole, frac = divmod(q, _POW10[decimals])
        return f"{sign}{whole}.{frac:0{decimals}d}"
    return str(from_pico(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: Decimal("100.000") → "100", "8.50" → "8.5"."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
