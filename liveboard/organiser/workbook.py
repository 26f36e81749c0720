"""Writing xlsx files that are byte-identical for the same content (templates and exports).

openpyxl stamps the workbook's created/modified times and every zip member's time with "now"; both are
fixed here (to a time the caller chooses, e.g. the freeze time, or 1980-01-01), so the same frozen round
exported twice gives the same bytes and the same sha256.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime
from typing import Any

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def new_workbook() -> Any:
    import openpyxl

    wb = openpyxl.Workbook()
    return wb


def template_workbook(title: str, header: list[str], text_columns: str) -> tuple[Any, Any]:
    """An import template's workbook and its first sheet, ``title``: ``header`` in bold, and the columns
    named by the letters ``text_columns`` formatted as text (ids and numbers typed there stay as typed)."""
    wb = new_workbook()
    ws = wb.active
    ws.title = title
    write_table(ws, header, [])
    for col in text_columns:
        ws.column_dimensions[col].number_format = "@"
    return wb, ws


def write_table(ws: Any, header: list[str], rows: list[list[Any]]) -> None:
    """``header`` in bold below what ``ws`` has, then ``rows``."""
    from openpyxl.styles import Font

    ws.append(header)
    for c in ws[ws.max_row]:
        c.font = Font(bold=True)
    for r in rows:
        ws.append(r)


def save(wb: Any, stamp_ms: int = 315_532_800_000) -> bytes:
    """The workbook's bytes with fixed metadata: created/modified = ``stamp_ms`` (UTC), zip times fixed."""
    when = datetime.fromtimestamp(stamp_ms / 1000, UTC).replace(tzinfo=None, microsecond=0)
    wb.properties.created = when
    wb.properties.modified = when
    wb.properties.creator = "Liveboard"
    wb.properties.lastModifiedBy = "Liveboard"
    buf = io.BytesIO()
    wb.save(buf)
    return normalise_zip(buf.getvalue(), when.strftime("%Y-%m-%dT%H:%M:%SZ"))


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def normalise_zip(data: bytes, modified: str | None = None) -> bytes:
    """Re-pack a zip with every member's time fixed and the same compression, in the same order; openpyxl
    writes "now" as the document's modified time whatever it is told, so that is set to ``modified``."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            body = src.read(info.filename)
            if modified is not None and info.filename == "docProps/core.xml":
                body = _MODIFIED.sub(rb"\g<1>" + modified.encode() + rb"\g<2>", body)
            dst.writestr(fixed, body)
    return out.getvalue()


def autosize(ws: Any, widths: dict[int, int] | None = None) -> None:
    """Column widths from the content (CJK characters count double), capped."""
    from openpyxl.utils import get_column_letter

    best: dict[int, int] = dict(widths or {})
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None:
                continue
            text = str(cell.value)
            w = sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
            best[cell.column] = max(best.get(cell.column, 6), min(w + 2, 60))
    for col, w in best.items():
        ws.column_dimensions[get_column_letter(col)].width = w
