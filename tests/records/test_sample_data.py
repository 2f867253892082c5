"""The sample data the tests and the demo use: a Synthea bundle and a valid PDF."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "fhir"


def test_bundle_has_the_record_types_the_issue_names() -> None:
    raw = (SAMPLE / "synthea-patient-bundle.json").read_bytes()
    Bundle.model_validate_json(raw)
    types = {e["resource"]["resourceType"] for e in json.loads(raw)["entry"]}
    assert {
        "Patient",
        "Condition",
        "Observation",
        "MedicationRequest",
        "AllergyIntolerance",
        "Immunization",
    } <= types
    assert "Apache" in (SAMPLE / "ATTRIBUTION.md").read_text()


def test_pdf_is_well_formed() -> None:
    """Header, trailer, and every xref offset pointing at its object."""
    pdf = (SAMPLE / "discharge-summary.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\s+(\d+)", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[startxref:].startswith(b"xref")
    header = re.match(rb"xref\s+0 (\d+)\s+", pdf[startxref:])
    assert header is not None
    count = int(header.group(1))
    table = pdf[startxref + header.end() :].split(b"\n")[:count]
    for number, entry in enumerate(table[1:], start=1):
        offset = int(entry[:10])
        assert pdf[offset:].startswith(b"%d 0 obj" % number)
