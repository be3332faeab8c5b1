"""Who and what a recording is of, as its DICOM header says: the patient, the exam, the operator
and the machine, for the window, the report and the DICOM outputs. Other formats carry none of it;
the fields are then empty (to be filled in by hand on the printed report), or what the user typed
(`typed_study`), or a pseudonym made from the frames (`pseudonym`): never invented values."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields, replace
from datetime import date
from pathlib import Path

from .spacing import Box, Spacing, dicom_header_spacing, region_boxes

log = logging.getLogger(__name__)

# where a study's details came from: what the window and the report say of them
FROM_DICOM, TYPED, PSEUDONYMOUS = "the DICOM header", "entered by hand", "a pseudonym"
PSEUDONYM_PREFIX = "ANON-"
TYPED_FIELDS = ("patient_name", "patient_id", "birth_date", "study_date")  # what Edit > Patient details asks
HIDDEN_TEXT = "Patient hidden (de-identified view)"
ORIGIN_WORDS = {FROM_DICOM: "From the DICOM header.",
                TYPED: "Entered by hand in fetal-iqa (the file names no patient).",
                PSEUDONYMOUS: "A pseudonym made from the pixels: the file names no patient, and none was entered."}


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
    origin: str = ""  # FROM_DICOM, TYPED, PSEUDONYMOUS; "" when nothing states it

    # what names the patient (or, through the hospital's systems, leads to them): a de-identified view hides it
    IDENTIFYING = ("patient_name", "patient_id", "birth_date", "accession_number")
    LABELS = {"patient_name": "Patient", "patient_id": "Patient ID", "birth_date": "Birth date",
              "study_date": "Exam date", "study_description": "Exam", "accession_number": "Accession number",
              "operator": "Operator", "institution": "Institution", "machine": "Ultrasound machine"}

    @property
    def known(self) -> bool:
        return any(getattr(self, name) for name in self.LABELS)

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) for the report's patient and exam block; empty values stay empty."""
        return [(label, getattr(self, name)) for name, label in self.LABELS.items()]

    @property
    def from_dicom(self) -> bool:
        return self.origin == FROM_DICOM

    def hidden(self) -> "Study":
        """The study as a de-identified view shows it: nothing that names the patient (a pseudonym names nobody)."""
        if self.origin == PSEUDONYMOUS:
            return self
        return replace(self, **{name: "" for name in self.IDENTIFYING})

    def for_outputs(self, content_hash: str) -> "Study":
        """What an output that must name a patient (a DICOM file) carries: the patient's name and ID as
        known, else the frames' pseudonym, never empty."""
        if self.patient_name and self.patient_id:
            return self
        alias = pseudonym(content_hash)
        return replace(self, patient_name=self.patient_name or alias, patient_id=self.patient_id or alias)


def pseudonym(content_hash: str) -> str:
    """A stable name for a case without patient details: ANON- and the first 8 hex digits of its
    pixels' sha256 (the report's "pixels sha256" starts with them), the same in every format."""
    return f"{PSEUDONYM_PREFIX}{content_hash[:8].upper()}"


def pseudonymous(content_hash: str) -> Study:
    """The study of a case the user chose to leave unnamed."""
    alias = pseudonym(content_hash)
    return Study(patient_name=alias, patient_id=alias, origin=PSEUDONYMOUS)


def typed_study(name: str = "", patient_id: str = "", birth_date: str = "", study_date: str = "") -> Study:
    """What the user typed for a case whose file names no patient; raises ValueError saying what is
    wrong (a date that is not YYYY-MM-DD, a birth after the exam). All empty: an empty study."""
    values = {"patient_name": name.strip(), "patient_id": patient_id.strip(),
              "birth_date": birth_date.strip(), "study_date": study_date.strip()}
    born = _typed_date(values["birth_date"], "birth date")
    examined = _typed_date(values["study_date"], "exam date")
    if born and examined and born > examined:
        raise ValueError(f"The birth date {born} is after the exam date {examined}.")
    if born and born > date.today():
        raise ValueError(f"The birth date {born} is in the future.")
    return Study(**values, origin=TYPED) if any(values.values()) else Study()


def entered_record(study: Study) -> dict | None:
    """What a review keeps of the details the user entered (the file cannot give them again); None for
    details the file states, or none."""
    if study.origin not in (TYPED, PSEUDONYMOUS):
        return None
    return {"origin": study.origin, **{name: getattr(study, name) for name in TYPED_FIELDS if getattr(study, name)}}


def entered_study(record, content_hash: str) -> Study | None:
    """The study `entered_record` kept, checked as when typed; None when the record is not one."""
    if not isinstance(record, dict) or set(record) - {"origin", *TYPED_FIELDS}:
        return None
    if record.get("origin") == PSEUDONYMOUS:
        return pseudonymous(content_hash)  # made again: the same frames give the same name
    values = [record.get(name, "") for name in TYPED_FIELDS]
    if record.get("origin") != TYPED or not all(isinstance(value, str) for value in values):
        return None
    try:
        return typed_study(*values)
    except ValueError:
        return None


def _typed_date(text: str, what: str) -> date | None:
    if not text:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"The {what} {text!r} is not a date: type it as YYYY-MM-DD (for example 2026-11-30).")


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
              "machine": machine, "study_uid": text("StudyInstanceUID"), "origin": FROM_DICOM}
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
