"""Structure-aware chunking on the real seed documents (no models needed)."""

from __future__ import annotations

import re

import pytest

from assistant.catalog import load_catalog
from assistant.chunking import chunk_document, count_tokens, split_lines
from assistant.loaders import load_text
from assistant.settings import ROOT

CORPUS = ROOT / "corpus"


@pytest.fixture(scope="module")
def chunks():
    docs = {d.id: d for d in load_catalog(CORPUS)}
    out = {}
    for doc_id, doc in docs.items():
        source = load_text(CORPUS / doc.file)
        out[doc_id] = (source, chunk_document(doc, source, chunk_tokens=256))
    return out


def test_annex2_row_carries_table_title_and_column_header(chunks):
    _, nodes = chunks["dk-2023-2026"]
    [node] = [n for n in nodes if "Unearmarked Income\t\t3 508 772" in n.text]
    assert "Annex 2: Overview of Danish unearmarked and earmarked funding for IOM in 2022" in node.text
    header = node.metadata["table_header"]
    assert header.split("\t")[2] == "Unearmarked"
    assert header in node.text or "columns: Donor and Project Title | In-kind contribution | Unearmarked" in node.text
    assert node.metadata["kind"] == "table"
    assert node.metadata["currency"] == "USD"


def test_every_chunk_of_a_table_repeats_title_and_header(chunks):
    _, nodes = chunks["dk-2023-2026"]
    annex2 = [n for n in nodes if n.metadata["kind"] == "table" and "Annex 2" in (n.metadata["section"] or "")]
    assert len(annex2) >= 2, "the Annex 2 table spans more than one passage at 256 tokens"
    for node in annex2:
        assert "Annex 2: Overview of Danish unearmarked" in node.text
        assert ("Donor and Project Title\tIn-kind contribution\tUnearmarked\tEarmarked\tTotal" in node.text
                or "columns: Donor and Project Title | In-kind contribution | Unearmarked | Earmarked | Total" in node.text)


def test_annual_report_2020_pages(chunks):
    source, nodes = chunks["iom-ar-2020"]
    # "IOM supported 100 disease surveillance systems" sits just before the "Page 10 End" marker.
    [node] = [n for n in nodes if "IOM supported 100 disease surveillance systems in 29 countries. IOM" in n.text]
    assert node.metadata["page"] == 10
    # The text after the "Page 9 End" marker is on PDF page 10, printed page 2 (running header).
    page10 = [n for n in nodes if n.metadata["page"] == 10]
    assert page10 and all(n.metadata["printed_page"] == "2" for n in page10)
    pages = [n.metadata["page"] for n in nodes]
    assert pages == sorted(pages), "passages are in document order, pages never go back"
    assert pages[0] >= 1 and max(pages) <= 72


def test_running_headers_and_page_markers_are_not_in_the_text(chunks):
    _, nodes = chunks["iom-ar-2020"]
    for node in nodes:
        assert "Page" not in node.text or not re.search(r"-{5,}Page \d+ End", node.text)
        assert not any(line.strip() == "C/112/INF/1" for line in node.text.splitlines())


def test_offsets_point_into_the_source(chunks):
    for doc_id, (source, nodes) in chunks.items():
        for node in nodes:
            span = source[node.start_char_idx:node.end_char_idx]
            assert node.text.startswith(span), (doc_id, node.node_id)


def test_numbered_paragraphs_and_sizes(chunks):
    _, nodes = chunks["iom-ar-2019"]
    para = [n for n in nodes if n.text.lstrip().startswith("300.")]
    assert para and para[0].metadata["paragraph"].startswith("300")
    sizes = [count_tokens(n.text) for n in nodes]
    assert max(sizes) < 256 * 1.6
    ids = [n.node_id for n in nodes]
    assert len(ids) == len(set(ids))


def test_sections_follow_headings_and_annexes(chunks):
    _, nodes = chunks["dk-2023-2026"]
    sections = {n.metadata["section"] for n in nodes}
    assert any(s and s.startswith("Annex 3: Donor ranking") for s in sections)
    assert any(s and s.startswith("6. Budget") for s in sections)


def test_split_lines_without_markers_has_no_pages():
    lines = split_lines("Title\n\nA paragraph of text.\n")
    assert all(line.page is None for line in lines)


def test_a_table_in_millions_carries_its_scale_and_currency(chunks):
    """"(DKK million)" in a header, or as a note under the table, is the unit of every figure in it."""
    _, nodes = chunks["dk-2023-2026"]
    [budget] = [n for n in nodes if "a. Core funding" in n.text and n.metadata["kind"] == "table"]
    assert (budget.metadata["currency"], budget.metadata["scale"]) == ("DKK", "million")
    _, nodes = chunks["dk-2018-2020"]
    [note_below] = [n for n in nodes if "Core funds (un-earmarked)" in n.text and n.metadata["kind"] == "table"]
    assert (note_below.metadata["currency"], note_below.metadata["scale"]) == ("DKK", "million")
    _, nodes = chunks["dk-2023-2026"]
    [annex2] = [n for n in nodes if "Unearmarked Income\t\t3 508 772" in n.text]
    assert annex2.metadata["scale"] is None, "figures written out in full have no scale"


def test_a_passage_repeats_the_footnotes_it_cites_from_elsewhere(chunks):
    """"MOPAN⁵" stands on one page and its footnote on the next: the citing passage repeats the footnote
    after its own text (an exact line of the document), and a footnote that is only a web address is
    not repeated."""
    source, nodes = chunks["se-2020-2022"]
    [node] = [n for n in nodes if "MOPAN⁵-utvärderingen" in source[n.start_char_idx:n.end_char_idx]]
    note = "⁵ *Multilateral Organisation Performance Assessment Network*"
    assert note in node.text and note in source and note not in source[node.start_char_idx:node.end_char_idx]
    _, danish = chunks["dk-2018-2020"]
    cites = [n for n in danish if "Respectful Working Environment¹⁷" in n.text]
    assert cites and all("¹⁷ https://" not in n.text for n in cites)
