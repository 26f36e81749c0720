"""Helpers: real xlsx files written with openpyxl (as a spreadsheet program would save them)."""

from __future__ import annotations

import io
from typing import Any

import openpyxl


def xlsx(rows: list[list[Any]], title: str = "报名表", extra_sheets: dict[str, list[list[Any]]] | None = None) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    for name, srows in (extra_sheets or {}).items():
        s = wb.create_sheet(name)
        for r in srows:
            s.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def fill_template(template: bytes, rows: list[list[Any]]) -> bytes:
    """The downloaded template with rows typed in from row 2, as an organiser does."""
    wb = openpyxl.load_workbook(io.BytesIO(template))
    ws = wb["报名表"]
    for i, r in enumerate(rows, start=2):
        for j, v in enumerate(r, start=1):
            ws.cell(row=i, column=j, value=v)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
