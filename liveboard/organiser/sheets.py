"""Reading an uploaded sheet (xlsx or CSV) into rows of text, with every problem named by sheet, row, column.

Nothing here trusts the file: its size is checked before it is parsed (and the xlsx's unpacked size, against
zip bombs), its kind is told from its first bytes (an old .xls, a PDF or a picture is named as such), and
the cells are checked one by one: merged cells, formulas, dates where text is expected (and numbers where
a date is expected), numbers Excel has already rounded, full-width digits and letters (normalised, NFKC),
blank rows (skipped). A sheet with too many rows is refused as a whole.

The result is a :class:`Table`: the header row mapped to the caller's fields by their names (Chinese or
English aliases), and each data row as ``{field: text}`` with its row number, so a later check can name
the cell too.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # refused before parsing
MAX_UNPACKED_BYTES = 200 * 1024 * 1024  # an xlsx is a zip: its parts together, unpacked
MAX_ROWS = 20_000  # data rows of one sheet (Hubei's 3,000 contestants fit many times over)

_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls (Excel 97-2003), .doc, ...


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth a look) in an upload. ``row`` and ``column`` are as the spreadsheet shows
    them (row 1 is the first row; column "C"); either may be empty for a problem of the whole file."""

    severity: str  # "error" (nothing is written) or "warning" (shown, does not block)
    code: str  # machine-readable, English: duplicate_account, quota_exceeded, formula, ...
    message: str  # Chinese first, for the organiser
    sheet: str = ""
    row: int | None = None
    column: str = ""
    field: str = ""

    def where(self) -> str:
        parts = []
        if self.sheet:
            parts.append(f"工作表「{self.sheet}」")
        if self.row is not None:
            parts.append(f"第{self.row}行")
        if self.column:
            parts.append(f"{self.column}列" + (f"（{self.field}）" if self.field else ""))
        elif self.field:
            parts.append(f"（{self.field}）")
        return " ".join(parts)

    def text(self) -> str:
        where = self.where()
        return f"{where}：{self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "field": self.field,
            "text": self.text(),
        }


class SheetError(Exception):
    """The file cannot be read at all; ``problems`` says why (and where, when known)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.text() for p in problems))


@dataclass(frozen=True, slots=True)
class Column:
    """A field the caller expects. ``kind``: text (ids, names: numbers are turned into their digits), int,
    date (a date or date-time cell, or text such as 2020-09-26)."""

    name: str  # field name, English (contestant_id, account_id, ...)
    headers: tuple[str, ...]  # accepted header texts, the first is the template's
    required: bool = False
    kind: str = "text"


@dataclass(slots=True)
class Row:
    number: int  # the spreadsheet's row number
    values: dict[str, Any]  # field -> normalised text (or int / datetime for those kinds); absent when blank
    columns: dict[str, str]  # field -> column letter (for problems)


@dataclass(slots=True)
class Table:
    sheet: str
    header_row: int
    columns: dict[str, str]  # field -> column letter
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    extra_headers: list[str] = field(default_factory=list)  # headers that name no known field

    def problem(self, row: Row | None, fname: str, code: str, message: str, severity: str = "error") -> Problem:
        p = Problem(
            severity,
            code,
            message,
            self.sheet,
            row.number if row is not None else None,
            self.columns.get(fname, ""),
            fname,
        )
        self.problems.append(p)
        return p

    def ordered_problems(self) -> list[Problem]:
        """The problems, errors first, then by row and column."""
        return sorted(self.problems, key=lambda p: (p.severity != "error", p.row or 0, p.column))


def row_round(
    table: Table, row: Row, rounds: dict[str, Any], by_name: dict[str, Any], *, name_choices: bool = False
) -> Any | None:
    """The round a row's 轮次 names, by id or by name (the contest's only round when the cell is blank), or
    None with the row's problem recorded (``name_choices``: the message lists the round names)."""
    v = row.values
    if "round" in v:
        rnd = rounds.get(v["round"]) or by_name.get(v["round"])
        if rnd is None:
            choices = f"（可选：{'、'.join(by_name)}）" if name_choices else ""
            table.problem(row, "round", "unknown_round", f"轮次「{v['round']}」不存在{choices}")
        return rnd
    if len(rounds) == 1:
        return next(iter(rounds.values()))
    table.problem(row, "round", "required", "轮次必填（本赛有多个轮次）")
    return None


# full-width digits and Latin letters (what a Chinese input method types) and the ideographic space
_FULL_WIDTH = {
    **{cp: cp - 0xFEE0 for cp in range(0xFF10, 0xFF1A)},
    **{cp: cp - 0xFEE0 for cp in range(0xFF21, 0xFF3B)},
    **{cp: cp - 0xFEE0 for cp in range(0xFF41, 0xFF5B)},
    0x3000: 0x20,
}


def normalise_text(value: str) -> str:
    """Full-width digits, letters and spaces become ASCII ("１２３" → "123"), trimmed, inner whitespace
    collapsed. Chinese punctuation stays as typed (a name "张三（哈尔滨）" keeps its brackets)."""
    return " ".join(value.translate(_FULL_WIDTH).split())


def header_key(value: str) -> str:
    """A header (or a metric name) as compared: NFKC, so （元） and (元) are the same, no spaces, no *."""
    return unicodedata.normalize("NFKC", value).replace(" ", "").replace("*", "").lower()


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    out = ""
    n = index + 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def sniff(data: bytes, filename: str) -> str:
    """ "xlsx" or "csv", or SheetError naming what the file is instead."""
    name = filename.lower()
    if data.startswith(_XLSX_MAGIC):
        return "xlsx"
    if data.startswith(_OLE_MAGIC):
        raise SheetError(
            [Problem("error", "xls_format", "这是旧版 Excel（.xls）文件，请在 Excel/WPS 中另存为 .xlsx 后再上传")]
        )
    if data.startswith(b"%PDF"):
        raise SheetError([Problem("error", "not_a_sheet", "这是 PDF 文件，不是表格；请上传 .xlsx 或 .csv")])
    head = data[:4096]
    if b"\x00" in head:
        raise SheetError([Problem("error", "not_a_sheet", "文件不是 .xlsx 或 .csv 表格（无法识别的二进制内容）")])
    if name.endswith(".xlsx"):
        raise SheetError(
            [Problem("error", "not_a_sheet", "文件名是 .xlsx，但内容不是 Excel 表格（文件已损坏或被改名）")]
        )
    return "csv"


def read_table(
    data: bytes,
    filename: str,
    columns: list[Column],
    *,
    sheet: str | None = None,
    max_rows: int = MAX_ROWS,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> Table:
    """Read the sheet ``sheet`` (default: the first visible one) of an xlsx, or a CSV, into a Table.

    Raises SheetError when the file cannot be read as a table at all (too big, wrong kind, no header row,
    required columns missing, too many rows); cell problems are collected in ``Table.problems``.
    """
    if len(data) > max_bytes:
        raise SheetError(
            [
                Problem(
                    "error",
                    "too_large",
                    f"文件 {len(data) / 1048576:.1f} MB，超过上限 {max_bytes // 1048576} MB；请拆分后分批导入",
                )
            ]
        )
    if not data:
        raise SheetError([Problem("error", "empty_file", "文件是空的")])
    kind = sniff(data, filename)
    grid = _xlsx_grid(data, sheet, max_rows) if kind == "xlsx" else _csv_grid(data, max_rows)
    return _table(grid, columns)


# ------------------------------------------------------------------------------------------ grids


@dataclass(slots=True)
class _Grid:
    sheet: str
    rows: list[tuple[int, list[Any]]]  # (row number, cell values), blank rows already dropped
    merged: list[str]  # merged ranges ("A3:B3")
    formulas: list[tuple[int, int, str]]  # (row, col index, formula)
    date_formatted: set[tuple[int, int]]  # numeric cells shown as dates (a date typed into a text column)


def _xlsx_grid(data: bytes, sheet: str | None, max_rows: int) -> _Grid:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(i.file_size for i in zf.infolist())
        names = set(zf.namelist())
    except zipfile.BadZipFile:
        raise SheetError([Problem("error", "not_a_sheet", "文件不是有效的 .xlsx（压缩包已损坏）")]) from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise SheetError(
            [Problem("error", "too_large", f"表格解压后 {unpacked // 1048576} MB，超过上限；请拆分后分批导入")]
        )
    if "xl/workbook.xml" not in names:
        raise SheetError([Problem("error", "not_a_sheet", "压缩包里没有 Excel 工作簿（不是 .xlsx 文件）")])

    import openpyxl  # imported here: only uploads need it

    try:
        # first a streaming pass: counts rows without building the whole sheet (50,000 rows are refused fast)
        wb_ro = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:
        raise SheetError(
            [Problem("error", "not_a_sheet", f"无法读取 .xlsx：{type(exc).__name__}: {exc}"[:300])]
        ) from None
    try:
        title = _pick_sheet(wb_ro, sheet)
        ws_ro = wb_ro[title]
        count = 0
        last = 0
        for r in ws_ro.iter_rows(values_only=True):
            last += 1
            if any(v is not None and str(v).strip() != "" for v in r):
                count += 1
                if count > max_rows + 1:  # + the header row
                    raise SheetError(
                        [
                            Problem(
                                "error",
                                "too_many_rows",
                                f"数据超过 {max_rows} 行上限（第{last}行起）；请拆分后分批导入",
                                title,
                                last,
                            )
                        ]
                    )
    finally:
        wb_ro.close()
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=False, data_only=False)
    ws = wb[title]
    rows: list[tuple[int, list[Any]]] = []
    formulas: list[tuple[int, int, str]] = []
    dated: set[tuple[int, int]] = set()
    for r in ws.iter_rows():
        values = []
        for cell in r:
            v = cell.value
            if cell.data_type == "f" or (isinstance(v, str) and v.startswith("=") and len(v) > 1):
                formulas.append((cell.row, cell.column - 1, str(v)))
            elif isinstance(v, int | float) and not isinstance(v, bool) and cell.is_date:
                dated.add((cell.row, cell.column - 1))
            values.append(v)
        if any(v is not None and str(v).strip() != "" for v in values):
            rows.append((r[0].row, values))
    merged = [str(m) for m in ws.merged_cells.ranges]
    return _Grid(title, rows, merged, formulas, dated)


def _pick_sheet(wb: Any, sheet: str | None) -> str:
    if sheet is not None:
        if sheet not in wb.sheetnames:
            raise SheetError(
                [
                    Problem(
                        "error",
                        "missing_sheet",
                        f"没有名为「{sheet}」的工作表（有：{'、'.join(wb.sheetnames)}）",
                    )
                ]
            )
        return sheet
    for ws in wb.worksheets:
        if getattr(ws, "sheet_state", "visible") == "visible":
            return ws.title
    return wb.sheetnames[0]


def _csv_grid(data: bytes, max_rows: int) -> _Grid:
    text = None
    for enc in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK unless told otherwise
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise SheetError([Problem("error", "encoding", "CSV 文件既不是 UTF-8 也不是 GBK 编码")])
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    rows: list[tuple[int, list[Any]]] = []
    try:
        for i, rec in enumerate(csv.reader(io.StringIO(text), dialect), start=1):
            if any(c.strip() for c in rec):
                rows.append((i, list(rec)))
                if len(rows) > max_rows + 1:
                    raise SheetError(
                        [
                            Problem(
                                "error",
                                "too_many_rows",
                                f"数据超过 {max_rows} 行上限（第{i}行起）；请拆分后分批导入",
                                "CSV",
                                i,
                            )
                        ]
                    )
    except csv.Error as exc:
        raise SheetError([Problem("error", "csv_syntax", f"CSV 格式错误：{exc}", "CSV")]) from None
    return _Grid("CSV", rows, [], [], set())


# ------------------------------------------------------------------------------------------ table


def _table(grid: _Grid, columns: list[Column]) -> Table:
    if not grid.rows:
        raise SheetError([Problem("error", "no_rows", "表格没有任何内容", grid.sheet)])
    aliases: dict[str, str] = {}
    for col in columns:
        for h in (*col.headers, col.name):
            aliases[header_key(h)] = col.name
    # the header row: the first of the first five non-blank rows that names the most known fields
    best: tuple[int, int] | None = None
    for idx, (_n, values) in enumerate(grid.rows[:5]):
        hits = sum(1 for v in values if isinstance(v, str) and header_key(v) in aliases)
        if hits and (best is None or hits > best[1]):
            best = (idx, hits)
    if best is None:
        expected = "、".join(c.headers[0] for c in columns if c.required)
        raise SheetError(
            [
                Problem(
                    "error",
                    "no_header",
                    f"找不到表头行：前几行没有可识别的列名（至少需要：{expected}）；请使用下载的模板",
                    grid.sheet,
                    grid.rows[0][0],
                )
            ]
        )
    header_idx = best[0]
    header_no, header_values = grid.rows[header_idx]
    mapping: dict[int, str] = {}
    letters: dict[str, str] = {}
    extra: list[str] = []
    dup: list[Problem] = []
    for i, v in enumerate(header_values):
        if v is None or str(v).strip() == "":
            continue
        fname = aliases.get(header_key(str(v)))
        if fname is None:
            extra.append(str(v).strip())
            continue
        if fname in letters:
            dup.append(
                Problem(
                    "error",
                    "duplicate_column",
                    f"列名「{v}」与 {letters[fname]} 列重复",
                    grid.sheet,
                    header_no,
                    column_letter(i),
                    fname,
                )
            )
            continue
        mapping[i] = fname
        letters[fname] = column_letter(i)
    missing = [c for c in columns if c.required and c.name not in letters]
    if missing or dup:
        raise SheetError(
            dup
            + [
                Problem(
                    "error",
                    "missing_column",
                    f"缺少必填列「{c.headers[0]}」",
                    grid.sheet,
                    header_no,
                    "",
                    c.name,
                )
                for c in missing
            ]
        )
    table = Table(grid.sheet, header_no, letters, extra_headers=extra)
    kinds = {c.name: c.kind for c in columns}
    for rng in grid.merged:
        first = rng.split(":")[0]
        row_no = int("".join(ch for ch in first if ch.isdigit()))
        if row_no > header_no:
            table.problems.append(
                Problem(
                    "error",
                    "merged_cells",
                    f"合并单元格 {rng}：请取消合并，并在每一行填上完整的值",
                    grid.sheet,
                    row_no,
                    "".join(ch for ch in first if ch.isalpha()),
                )
            )
    formula_at = {(r, c): f for r, c, f in grid.formulas}
    for number, values in grid.rows[header_idx + 1 :]:
        out: dict[str, Any] = {}
        for i, fname in mapping.items():
            raw = values[i] if i < len(values) else None
            letter = column_letter(i)
            if (number, i) in formula_at:
                table.problems.append(
                    Problem(
                        "error",
                        "formula",
                        f"单元格是公式 {formula_at[(number, i)][:60]}：请复制后「粘贴为数值」",
                        grid.sheet,
                        number,
                        letter,
                        fname,
                    )
                )
                continue
            value, problem = _cell(raw, kinds[fname], (number, i) in grid.date_formatted)
            if problem is not None:
                table.problems.append(Problem("error", problem[0], problem[1], grid.sheet, number, letter, fname))
                continue
            if value is not None and value != "":
                out[fname] = value
        if out or any(i not in mapping and v not in (None, "") for i, v in enumerate(values)):
            table.rows.append(Row(number, out, letters))
    return table


def _cell(raw: Any, kind: str, shown_as_date: bool) -> tuple[Any, tuple[str, str] | None]:
    """The normalised value of one cell, or (code, message) of what is wrong with it."""
    if raw is None:
        return None, None
    if kind == "date":
        if isinstance(raw, datetime):
            return raw, None
        if isinstance(raw, date):
            return datetime.combine(raw, time()), None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            guess = _excel_date(raw)
            hint = f"（可能是 {guess}）" if guess else ""
            return None, (
                "date_as_number",
                f"日期被存成了数字 {raw}{hint}：请把单元格格式设为日期，或写成 2020-09-26 这样的文本",
            )
        text = normalise_text(str(raw))
        for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y年%m月%d日", "%Y.%m.%d"):
            try:
                return datetime.strptime(text, fmt), None
            except ValueError:
                continue
        return None, ("bad_date", f"「{text[:40]}」不是日期（写成 2020-09-26 或 2020-09-26 20:00）")
    if isinstance(raw, datetime | date | time) or shown_as_date:
        return None, ("date_in_text", f"单元格是日期/时间格式（{raw}）：这里应填文本或数字，请把单元格格式改为「文本」")
    if isinstance(raw, bool):
        return None, ("bad_value", f"单元格是逻辑值 {raw}，应填文本或数字")
    if isinstance(raw, float):
        if not raw.is_integer():
            if kind == "int":
                return None, ("not_integer", f"{raw} 不是整数")
            return normalise_text(repr(raw)), None
        if abs(raw) >= 1e15:
            return None, (
                "number_rounded",
                f"数字 {raw:.0f} 位数太多，Excel 已把末几位变成 0：请把单元格设为「文本」后重新输入",
            )
        raw = int(raw)
    if isinstance(raw, int):
        return (raw if kind == "int" else str(raw)), None
    text = normalise_text(str(raw))
    if kind == "int":
        digits = text.replace(",", "")
        if digits.lstrip("-").isdigit():
            return int(digits), None
        return None, ("not_integer", f"「{text[:40]}」不是整数")
    return text, None


def _excel_date(serial: float) -> str | None:
    if 20_000 <= serial <= 80_000:  # 1954 .. 2119: a plausible date serial
        from datetime import timedelta

        d = datetime(1899, 12, 30) + timedelta(days=serial)
        return d.strftime("%Y-%m-%d") if d.time() == time() else d.strftime("%Y-%m-%d %H:%M")
    return None
