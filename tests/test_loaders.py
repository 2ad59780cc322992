"""Loaders on small real files the tests generate (pdf via reportlab, docx via python-docx, html)."""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import pytest

from assistant.loaders import SUPPORTED_SUFFIXES, LoadError, load_text, page_marker
from assistant.settings import ROOT

MARKER = re.compile(r"^-----------------------Page (\d+) End-----------------------$")


def pages_of(text: str) -> dict[int, str]:
    """Page number -> text, read from the markers the way the chunker does (text precedes its marker)."""
    pages, current = {}, []
    for line in text.split("\n"):
        m = MARKER.match(line)
        if m:
            pages[int(m.group(1))] = "\n".join(current).strip()
            current = []
        else:
            current.append(line)
    return pages


def expect_error(path: Path, *fragments: str) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_text(path)
    err = info.value
    message = str(err)
    assert "\n" not in message
    assert message.startswith(f"{path.name}: ")
    assert err.path == path
    for fragment in fragments:
        assert fragment.lower() in err.reason.lower(), err.reason
    return err


# ------------------------------------------------------------------------------------------ text


def test_supported_suffixes():
    assert SUPPORTED_SUFFIXES >= {".txt", ".md", ".pdf", ".docx", ".html", ".htm"}


def test_txt_utf8_crlf_and_bom(tmp_path):
    path = tmp_path / "note.txt"
    path.write_bytes("\ufeffSverige ger lätt öronmärkt kärnstöd.\r\nRad två  \r\n".encode("utf-8"))
    # Line endings are normalised; nothing else in a text file changes (passages cite offsets into it).
    assert load_text(path) == "Sverige ger lätt öronmärkt kärnstöd.\nRad två  \n"


def test_md_and_uppercase_suffix(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\nBody text.\n", encoding="utf-8")
    (tmp_path / "B.TXT").write_text("Upper case suffix\n", encoding="utf-8")
    assert load_text(tmp_path / "a.md") == "# Title\n\nBody text.\n"
    assert load_text(tmp_path / "B.TXT") == "Upper case suffix\n"


def test_seed_text_is_loaded_unchanged():
    path = ROOT / "corpus" / "dk-iom-strategy-2023-2026.txt"
    assert load_text(path) == path.read_text(encoding="utf-8")


def test_seed_text_keeps_page_markers():
    text = load_text(ROOT / "corpus" / "iom-annual-report-2020.txt")
    pages = pages_of(text)
    assert sorted(pages) == list(range(1, len(pages) + 1))
    assert len(pages) > 50
    assert "ANNUAL" in pages[1]


def test_non_utf8_rejected(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("öronmärkt kärnstöd".encode("latin-1"))
    expect_error(path, "utf-8", "0xf6")


def test_utf16_rejected(tmp_path):
    path = tmp_path / "utf16.txt"
    path.write_bytes("kärnstöd".encode("utf-16"))
    expect_error(path, "utf-16", "utf-8")


def test_binary_rejected(tmp_path):
    path = tmp_path / "blob.md"
    path.write_bytes(b"text\x00\x01\x02 more")
    expect_error(path, "binary")


def test_empty_and_whitespace_rejected(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    expect_error(empty, "empty")
    blank = tmp_path / "blank.md"
    blank.write_text(" \n\t\n  \n", encoding="utf-8")
    expect_error(blank, "whitespace")


def test_missing_directory_and_unknown_suffix(tmp_path):
    expect_error(tmp_path / "nowhere.txt", "not found")
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    expect_error(folder, "directory")
    odd = tmp_path / "sheet.xlsx"
    odd.write_bytes(b"PK\x03\x04")
    err = expect_error(odd, "unsupported", ".xlsx", ".pdf", ".docx")
    noext = tmp_path / "README"
    noext.write_text("hello", encoding="utf-8")
    expect_error(noext, "unsupported")
    assert err.path.name == "sheet.xlsx"


def test_load_error_is_one_line_and_picklable(tmp_path):
    err = LoadError(tmp_path / "x.pdf", "corrupt\nPDF   (details)")
    assert str(err) == "x.pdf: corrupt PDF (details)"
    assert err.reason == "corrupt PDF (details)"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.path == err.path


# ------------------------------------------------------------------------------------------- pdf


def make_pdf(path: Path, pages: list[list[str]]) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for lines in pages:
        y = 780
        for line in lines:
            c.drawString(72, y, line)
            y -= 18
        c.showPage()
    c.save()
    return path


def test_pdf_page_markers_give_real_page_numbers(tmp_path):
    path = make_pdf(
        tmp_path / "report.pdf",
        [
            ["Annual Report 2020", "Softly earmarked core support"],
            [],  # a page without text keeps its number
            ["Unearmarked Income 3 508 772"],
        ],
    )
    text = load_text(path)
    assert [int(m.group(1)) for m in map(MARKER.match, text.split("\n")) if m] == [1, 2, 3]
    pages = pages_of(text)
    assert "Annual Report 2020" in pages[1] and "Softly earmarked core support" in pages[1]
    assert pages[2] == ""
    assert "Unearmarked Income 3 508 772" in pages[3]
    assert "Unearmarked" not in pages[1]
    assert text.rstrip("\n").endswith(page_marker(3))


def _platypus_pdf(path: Path, story_of) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import SimpleDocTemplate

    SimpleDocTemplate(str(path), pagesize=A4).build(story_of(getSampleStyleSheet()))
    return path


def test_pdf_tables_come_out_as_tab_separated_rows(tmp_path):
    """pypdf's plain text puts every cell on its own line; the loader puts each row back on one line,
    cells tab-separated, like the seed texts' tables, so the chunker sees a table with its header."""
    import sys

    from assistant.chunking import chunk_document
    from assistant.records import DocumentInfo

    sys.path.insert(0, str(Path(__file__).parent))
    from _pdf import zembla_pdf

    path = tmp_path / "zembla.pdf"
    path.write_bytes(zembla_pdf())
    page3 = pages_of(load_text(path))[3]
    assert "Facility\tYear\tAmount (USD)" in page3
    assert "Coastal Displacement Tracking Facility\t2031\t4,321,987" in page3
    assert "Total Zembla\t2031\t5,440,237" in page3
    assert "The table below lists the Zemblan contributions to IOM by facility." in page3  # prose untouched
    doc = DocumentInfo(id="zembla", file="zembla.pdf", title="Zembla")
    rows = [n for n in chunk_document(doc, load_text(path)) if "4,321,987" in n.text]
    assert rows and rows[0].metadata["table_header"] == "Facility\tYear\tAmount (USD)", [r.metadata for r in rows]
    assert rows[0].metadata["page"] == 3


def test_pdf_tables_with_right_aligned_figures_and_blank_cells(tmp_path):
    from reportlab.platypus import Paragraph, Table, TableStyle

    def story(styles):
        table = Table([["Donor", "2019", "2020", "Total"],
                       ["Norway", "12,500", "", "12,500"],
                       ["Sweden", "7", "1,234,567", "1,234,574"],
                       ["Denmark", "450", "98", "548"]])
        table.setStyle(TableStyle([("ALIGN", (1, 0), (-1, -1), "RIGHT")]))
        return [Paragraph("Contributions by donor", styles["Heading2"]), table,
                Paragraph("Figures in USD thousands.", styles["BodyText"])]

    text = load_text(_platypus_pdf(tmp_path / "donors.pdf", story))
    assert "Donor\t2019\t2020\tTotal" in text
    assert "Norway\t12,500\t\t12,500" in text  # the blank 2020 cell keeps its column
    assert "Sweden\t7\t1,234,567\t1,234,574" in text
    assert "Denmark\t450\t98\t548" in text
    assert "Contributions by donor\n" in text and "Figures in USD thousands." in text


def test_pdf_text_in_columns_is_not_taken_for_a_table(tmp_path):
    """Two columns of prose line up like a table in pypdf's layout mode; their text stays as it is."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import BaseDocTemplate, Frame, PageTemplate, Paragraph

    styles = getSampleStyleSheet()
    w, h = A4
    frames = [Frame(40, 40, w / 2 - 50, h - 80, id="left"), Frame(w / 2 + 10, 40, w / 2 - 50, h - 80, id="right")]
    path = tmp_path / "columns.pdf"
    doc = BaseDocTemplate(str(path), pagesize=A4, pageTemplates=[PageTemplate(frames=frames)])
    prose = ("The partnership supports the return and reintegration of migrants and strengthens the "
             "capacity of national authorities to manage borders in line with international standards. ")
    doc.build([Paragraph(prose * 6, styles["BodyText"]) for _ in range(4)])
    text = load_text(path)
    assert "\t" not in text
    plain = __import__("pypdf").PdfReader(str(path)).pages[0].extract_text()
    assert pages_of(text)[1].strip() == "\n".join(line.rstrip() for line in plain.split("\n")).strip()


def test_pdf_without_text_rejected(tmp_path):
    path = make_pdf(tmp_path / "scan.pdf", [[], []])
    expect_error(path, "no extractable text")


def test_corrupt_pdfs_rejected(tmp_path):
    good = make_pdf(tmp_path / "good.pdf", [["Some text on a page"]]).read_bytes()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(good[: len(good) // 3])
    expect_error(truncated, "pdf")
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.4\n" + bytes(range(1, 256)) * 8)
    expect_error(garbage, "corrupt")
    not_pdf = tmp_path / "renamed.pdf"
    not_pdf.write_text("just text, not a pdf", encoding="utf-8")
    expect_error(not_pdf, "not a pdf")


def test_encrypted_pdfs(tmp_path):
    from reportlab.lib import pdfencrypt
    from reportlab.pdfgen import canvas

    locked = tmp_path / "locked.pdf"
    c = canvas.Canvas(str(locked), encrypt="secret")
    c.drawString(72, 700, "hidden text")
    c.showPage()
    c.save()
    expect_error(locked, "password")

    # only an owner password (printing/copying restrictions): readable with an empty user password
    owner = tmp_path / "owner.pdf"
    c = canvas.Canvas(str(owner), encrypt=pdfencrypt.StandardEncryption("", ownerPassword="owner"))
    c.drawString(72, 700, "Owner restricted text")
    c.showPage()
    c.save()
    assert pages_of(load_text(owner)) == {1: "Owner restricted text"}


# ------------------------------------------------------------------------------------------ docx


def make_docx(path: Path) -> Path:
    import docx

    doc = docx.Document()
    doc.add_heading("Strategic Partnership", level=1)
    doc.add_paragraph("Denmark supports IOM with   unearmarked funding.")
    doc.add_heading("Annex 2: Income", level=2)
    doc.add_paragraph("First priority", style="List Bullet")
    doc.add_paragraph("Second priority", style="List Bullet")
    table = doc.add_table(rows=3, cols=3)
    for r, row in enumerate([["Donor", "Unearmarked", "Total"], ["Denmark", "3 508 772", "9 120 000"], ["Sweden", "10 100 000", "40 000 000"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    doc.add_paragraph("Text after the table.")
    doc.save(str(path))
    return path


def test_docx_paragraphs_headings_and_tables(tmp_path):
    text = load_text(make_docx(tmp_path / "strategy.docx"))
    lines = text.split("\n")
    for line in [
        "Strategic Partnership",
        "Denmark supports IOM with unearmarked funding.",
        "Annex 2: Income",
        "Donor\tUnearmarked\tTotal",
        "Denmark\t3 508 772\t9 120 000",
        "Sweden\t10 100 000\t40 000 000",
        "Text after the table.",
    ]:
        assert line in lines, (line, lines)
    order = [lines.index(x) for x in ["Strategic Partnership", "Annex 2: Income", "Donor\tUnearmarked\tTotal", "Text after the table."]]
    assert order == sorted(order)
    # table rows are consecutive lines, header first
    header = lines.index("Donor\tUnearmarked\tTotal")
    assert lines[header + 1] == "Denmark\t3 508 772\t9 120 000"
    assert any(line.endswith("First priority") for line in lines)


def test_corrupt_docx_rejected(tmp_path):
    junk = tmp_path / "junk.docx"
    junk.write_bytes(b"\x00\x01 this is no docx at all")
    expect_error(junk, "docx")
    broken_zip = tmp_path / "broken.docx"
    broken_zip.write_bytes(make_docx(tmp_path / "ok.docx").read_bytes()[:400])
    expect_error(broken_zip, "corrupt")
    other_zip = tmp_path / "other.docx"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("hello.txt", "a zip, but not a word document")
    expect_error(other_zip, "corrupt")


def test_docx_without_text_rejected(tmp_path):
    import docx

    path = tmp_path / "blank.docx"
    docx.Document().save(str(path))
    expect_error(path, "no text")


# ------------------------------------------------------------------------------------------ html

HTML = """<!DOCTYPE html>
<html><head><title>Page title</title><style>body { color: red }</style>
<script>var tracking = "SCRIPT-SECRET";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/menu">NAV-MENU</a></nav>
<h1>Annual   Report 2020</h1>
<p>IOM received <b>softly earmarked</b>
core support from Sweden.</p>
<!-- COMMENT-TEXT -->
<ul><li>Migration governance</li><li>Return and reintegration</li></ul>
<table><caption>Annex 2</caption>
<tr><th>Donor</th><th>Unearmarked</th></tr>
<tr><td>Denmark</td><td>3 508 772</td></tr>
</table>
<script>console.log("INLINE-SCRIPT")</script>
</body></html>
"""


@pytest.mark.parametrize("suffix", [".html", ".htm"])
def test_html_keeps_structure_and_drops_chrome(tmp_path, suffix):
    path = tmp_path / f"page{suffix}"
    path.write_text(HTML, encoding="utf-8")
    text = load_text(path)
    lines = text.split("\n")
    assert "Annual Report 2020" in lines
    assert "IOM received softly earmarked core support from Sweden." in lines
    assert any(line.endswith("Migration governance") for line in lines)
    assert any(line.endswith("Return and reintegration") for line in lines)
    assert "Donor\tUnearmarked" in lines
    assert "Denmark\t3 508 772" in lines
    assert "Annex 2" in lines
    for dropped in ("SCRIPT-SECRET", "INLINE-SCRIPT", "NAV-MENU", "color: red", "COMMENT-TEXT"):
        assert dropped not in text
    assert lines.index("Annual Report 2020") < lines.index("Donor\tUnearmarked")


def test_html_without_text_rejected(tmp_path):
    path = tmp_path / "empty.html"
    path.write_text("<html><head><script>var x = 1;</script></head><body><nav>Menu</nav></body></html>", encoding="utf-8")
    expect_error(path, "no text")
    binary = tmp_path / "binary.html"
    binary.write_bytes(b"<html>\x00\x00\x00</html>")
    expect_error(binary, "binary")
