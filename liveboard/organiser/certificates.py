"""奖状 (certificates) for a published round's award winners, as PDF.

fpdf2 draws them: it embeds a subset of a real CJK font, and it reads Noto CJK straight from Debian's
``fonts-noto-cjk`` .ttc collections, whose outlines are CFF (reportlab embeds TrueType outlines only and
refuses these; WeasyPrint would pull in Pango and a browser-grade layout engine for one page of text). The
creation date is the freeze time and nothing else varies, so the same frozen round gives byte-identical
PDFs. The freeze hash is printed small at the foot of each certificate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from liveboard.errors import ConfigError
from liveboard.organiser.publication import SHANGHAI, Publication

FONT_ENV = "LIVEBOARD_ORGANISER_CJK_FONT"  # a .ttf/.otf/.ttc path, optionally "path#index"
_CANDIDATES = (
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc", 2),  # SC is face 2 of Debian's collections
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),
)


@dataclass(frozen=True, slots=True)
class Certificate:
    key: str  # file name stem: contestant id, or org-<rule>-<organisation>
    recipient: str
    organisation: str
    honour: str  # what was won, e.g. "个人组 一等奖"


def find_cjk_font() -> tuple[str, int]:
    """(path, face index) of a Simplified-Chinese font to embed."""
    env = os.environ.get(FONT_ENV)
    if env:
        path, _, idx = env.partition("#")
        if not Path(path).is_file():
            raise ConfigError(f"{FONT_ENV}: no font file {path}")
        return path, int(idx or 0)
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}|%{index}", "Noto Serif CJK SC:style=Bold"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
            path, _, idx = out.partition("|")
            if "CJK" in path and Path(path).is_file():
                return path, int(idx or 0)
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    for path, idx in _CANDIDATES:
        if Path(path).is_file():
            return path, idx
    raise ConfigError(
        "证书需要中文字体：请安装 Debian 的 fonts-noto-cjk（apt-get install fonts-noto-cjk），"
        f"或用 {FONT_ENV}=/path/to/font.ttc#2 指定"
    )


def certificates_of(pub: Publication) -> list[Certificate]:
    out = []
    for r in pub.winners():
        group = f"{r.group_name} " if len(pub.groups) > 1 or r.group_name not in ("", r.group_id) else ""
        out.append(Certificate(r.contestant_id, r.name, r.organisation, f"{group}{r.award}".strip()))
    for c in pub.collective:
        for r in c.rows:
            if r.award:
                honour = r.award if r.award == c.name else f"{c.name} {r.award}"
                out.append(Certificate(f"org-{c.rule_id}-{r.organisation_id}", r.organisation, "", honour))
    return out


def render(pub: Publication, certs: list[Certificate] | None = None) -> bytes:
    """One A4 landscape page per certificate, in one PDF."""
    from fpdf import FPDF

    certs = certificates_of(pub) if certs is None else certs
    path, index = find_cjk_font()
    frozen = datetime.fromtimestamp(pub.frozen_at / 1000, UTC)
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_creation_date(frozen)
    pdf.set_creator("Liveboard")
    pdf.set_producer("Liveboard")
    pdf.set_title(f"{pub.contest_name} {pub.round_name} 荣誉证书")
    pdf.set_auto_page_break(False)
    pdf.add_font("cjk", fname=path, collection_font_number=index)
    local = frozen + SHANGHAI
    date_text = f"{local.year}年{local.month}月{local.day}日"
    for cert in certs:
        pdf.add_page()
        w, h = pdf.w, pdf.h
        pdf.set_draw_color(176, 32, 32)
        pdf.set_line_width(2.0)
        pdf.rect(10, 10, w - 20, h - 20)
        pdf.set_line_width(0.5)
        pdf.rect(14, 14, w - 28, h - 28)
        pdf.set_text_color(176, 32, 32)
        pdf.set_font("cjk", size=44)
        pdf.set_xy(0, 34)
        pdf.cell(w, 20, "荣誉证书", align="C")
        pdf.set_text_color(20, 20, 20)
        pdf.set_font("cjk", size=22)
        pdf.set_xy(36, 72)
        who = cert.recipient + (f"（{cert.organisation}）" if cert.organisation else "")
        pdf.cell(w - 72, 12, f"{who}：", align="L")
        pdf.set_xy(48, 90)
        pdf.set_font("cjk", size=18)
        pdf.multi_cell(
            w - 96,
            11,
            f"在{pub.contest_name}{pub.round_name}中，荣获",
            align="L",
        )
        pdf.set_font("cjk", size=34)
        pdf.set_text_color(176, 32, 32)
        pdf.set_xy(0, 118)
        pdf.cell(w, 18, cert.honour, align="C")
        pdf.set_text_color(20, 20, 20)
        pdf.set_font("cjk", size=18)
        pdf.set_xy(48, 142)
        pdf.cell(w - 96, 10, "特发此证，以资鼓励。", align="L")
        pdf.set_xy(w - 150, 160)
        pdf.cell(110, 10, pub.organiser, align="R")
        pdf.set_xy(w - 150, 171)
        pdf.cell(110, 10, date_text, align="R")
        pdf.set_font("cjk", size=7)
        pdf.set_text_color(110, 110, 110)
        pdf.set_xy(18, h - 26)
        pdf.cell(
            w - 36,
            4,
            f"冻结哈希 {pub.content_hash} · 规则版本 {pub.rule_version or pub.file_rule_version} · 编号 {cert.key}",
            align="C",
        )
        pdf.set_xy(18, h - 22)
        pdf.cell(w - 36, 4, f"核验：liveboard results verify {pub.contest_id} {pub.round_id}", align="C")
    return bytes(pdf.output())
