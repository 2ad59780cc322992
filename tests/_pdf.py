"""A three-page PDF with a table, made with reportlab, for the upload tests."""

from __future__ import annotations

from io import BytesIO

TITLE = "Zemblan Partnership Review with IOM 2031"


def zembla_pdf() -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    buf = BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, title=TITLE)
    story = [
        Paragraph(TITLE, styles["Title"]),
        Paragraph("1. Introduction", styles["Heading1"]),
        Paragraph("This review describes the partnership between the Principality of Zembla and the "
                  "International Organization for Migration. It covers the years 2029 to 2031 and sets out "
                  "the priorities agreed by both parties.", styles["BodyText"]),
        PageBreak(),
        Paragraph("2. Priorities", styles["Heading1"]),
        Paragraph("Zembla supports displacement tracking in coastal regions and the training of border "
                  "officials. The partnership places particular weight on data protection and on the "
                  "participation of displaced communities.", styles["BodyText"]),
        PageBreak(),
        Paragraph("Annex 1: Zemblan funding to IOM", styles["Heading1"]),
        Paragraph("The table below lists the Zemblan contributions to IOM by facility.", styles["BodyText"]),
        Spacer(1, 12),
    ]
    table = Table([
        ["Facility", "Year", "Amount (USD)"],
        ["Coastal Displacement Tracking Facility", "2031", "4,321,987"],
        ["Border Officials Academy", "2031", "1,118,250"],
        ["Total Zembla", "2031", "5,440,237"],
    ])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey)]))
    story.append(table)
    doc.build(story)
    return buf.getvalue()
