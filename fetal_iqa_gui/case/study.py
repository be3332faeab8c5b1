"""Who and what a recording is of, as its DICOM header says: the patient, the exam, the operator
and the machine, for the report (and the window). Other formats carry none of it; the fields are
then empty, to be filled in by hand on the printed report, never invented."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

from .spacing import Box, Spacing, dicom_header_spacing, region_boxes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Study:
    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    study_date: str = ""
    study_description: str = ""
    accession_number: str = ""
    operator: str = ""
    institution: str = ""
    machine: str = ""  # manufacturer and model
    study_uid: str = ""

    LABELS = {"patient_name": "Patient", "patient_id": "Patient ID", "birth_date": "Birth date",
              "study_date": "Exam date", "study_description": "Exam", "accession_number": "Accession number",
              "operator": "Operator", "institution": "Institution", "machine": "Ultrasound machine"}

    @property
    def known(self) -> bool:
        return any(getattr(self, name) for name in self.LABELS)

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) for the report's patient and exam block; empty values stay empty."""
        return [(label, getattr(self, name)) for name, label in self.LABELS.items()]


def read_dicom(path: Path) -> tuple[Spacing, Study, tuple[Box, ...]]:
    """The calibration, the study and the ultrasound regions' boxes of a DICOM file's header (its
    pixels are not read)."""
    import pydicom  # imported here: only DICOM needs it
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as error:  # noqa: BLE001 - ITK read the pixels; an unparsable header only loses these
        log.warning("could not read the DICOM header of %s: %s", path, error)
        return Spacing(None, "the DICOM header could not be read for its calibration"), Study(), ()
    return dicom_header_spacing(header), study_of(header), region_boxes(header)


def study_of(header) -> Study:
    def text(keyword: str) -> str:
        value = header.get(keyword)
        return "" if value is None else str(value).strip()

    machine = " ".join(part for part in (text("Manufacturer"), text("ManufacturerModelName")) if part)
    values = {"patient_name": _person(header.get("PatientName")), "patient_id": text("PatientID"),
              "birth_date": _date(text("PatientBirthDate")), "study_date": _date(text("StudyDate")),
              "study_description": text("StudyDescription"), "accession_number": text("AccessionNumber"),
              "operator": _person(header.get("OperatorsName")), "institution": text("InstitutionName"),
              "machine": machine, "study_uid": text("StudyInstanceUID")}
    assert set(values) == {f.name for f in fields(Study)}
    return Study(**values)


def _person(value) -> str:
    """'Doe^Jane' -> 'Doe, Jane'; several names (a multi-valued operator) joined."""
    if value is None or value == "":
        return ""
    names = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    shown = []
    for name in names:
        parts = [p for p in str(name).split("^")[:2] if p]
        shown.append(", ".join(parts))
    return "; ".join(s for s in shown if s)


def _date(value: str) -> str:
    """DICOM's YYYYMMDD as YYYY-MM-DD; anything else as written."""
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value
