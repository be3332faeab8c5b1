"""The patient and the study every DICOM output carries (dicom_out.py): a DICOM input's own, read
again from its header with pydicom (Study holds only what the window shows); another input's from
what the user typed (`case.study`), else a pseudonym and a Study Instance UID derived from the
pixels' hash, stable for the case. Never an empty Type 1 attribute; Type 2 ones are written, empty
when unknown."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from ..base.errors import ExportRefused
from ..base.text import shown
from ..case.case import Case

log = logging.getLogger(__name__)

IMAGE_SERIES_NUMBER = 9101  # high: clear of the scanner's own series numbers (the report's is 9102)
# what is carried from a DICOM input's header into every output: the Patient, General Study and
# Patient Study modules' attributes (empty Type 2 ones are written empty, as the input had them)
PATIENT_STUDY_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "OtherPatientIDsSequence",
    "EthnicGroup", "PatientComments", "PatientAge", "PatientSize", "PatientWeight",
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
    "StudyDescription", "IssuerOfAccessionNumberSequence", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy",
)
TYPE_2 = ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
          "ReferringPhysicianName")  # of the above, what every output has, empty when unknown


def source_header(case: Case):
    """The input's DICOM header (pixels not read), or None for other formats or one that cannot be read again."""
    if case.dicom_file is None:
        return None
    import pydicom
    try:
        return pydicom.dcmread(case.dicom_file, stop_before_pixels=True)
    except Exception as error:  # noqa: BLE001 - read once already; moved or damaged since: the outputs lose only its header
        log.warning("could not read the DICOM header of %s again: %s", case.dicom_file, error)
        return None


def patient_and_study(case: Case, header) -> dict:
    """Keyword -> value of the Patient and Study modules every output carries."""
    values = {keyword: "" for keyword in TYPE_2}
    if header is not None:
        values.update({keyword: header[keyword].value for keyword in PATIENT_STUDY_KEYWORDS if keyword in header})
    study = case.study.for_outputs(case.content_hash)  # a patient nobody named: the pixels' pseudonym
    typed = {"PatientName": _person_name(study.patient_name), "PatientID": study.patient_id,
             "PatientBirthDate": _dicom_date(study.birth_date), "StudyDate": _dicom_date(study.study_date),
             "StudyDescription": study.study_description, "AccessionNumber": study.accession_number,
             "StudyInstanceUID": study.study_uid}
    for keyword, value in typed.items():  # what the header lacked and the user typed (a non-DICOM input)
        if value and not values.get(keyword):
            values[keyword] = value
    if not str(values.get("StudyInstanceUID") or "").strip():
        from pydicom.uid import generate_uid
        values["StudyInstanceUID"] = generate_uid(entropy_srcs=["fetal-iqa study", case.content_hash])
    for keyword, value in values.items():
        check_carried(keyword, value)
    return values


def apply_patient_and_study(dataset, values: dict) -> None:
    for keyword, value in values.items():
        setattr(dataset, keyword, value)


_TEXT_CONTROLS = {"LT": "\r\n\t\f", "ST": "\r\n\t\f", "UT": "\r\n\t\f"}  # what else a VR's text may hold
_DATE_FORMATS = {"DA": "%Y%m%d"}


def check_carried(keyword: str, value) -> None:
    """`ExportRefused` saying why, when the value `keyword` would carry into an output (from the
    input's header, or typed) is not valid DICOM: the archive would refuse the file or, worse, file
    it under a patient mangled on the way (several names, a name or ID cut short). Changing a
    patient's details to make them fit is not ours to do: the input is to be corrected."""
    from pydicom import config
    from pydicom.datadict import dictionary_description, dictionary_VM, dictionary_VR
    from pydicom.multival import MultiValue
    from pydicom.sequence import Sequence
    from pydicom.valuerep import validate_value
    if value is None or isinstance(value, Sequence):
        return
    vr, vm = dictionary_VR(keyword), dictionary_VM(keyword)
    values = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    why = ""
    if vm == "1" and len(values) > 1:
        why = f"it holds {len(values)} values where DICOM allows one"
    for item in values:
        text = str(item)
        if why:
            break
        if any(ord(c) < 0x20 and c not in _TEXT_CONTROLS.get(vr, "") or ord(c) == 0x7F for c in text):
            why = "it holds control characters"
        elif vr in _DATE_FORMATS and text.strip():
            try:
                datetime.strptime(text.strip(), _DATE_FORMATS[vr])
            except ValueError:
                why = "it is not a date as DICOM writes one, YYYYMMDD"
        if not why and not isinstance(item, bytes):
            try:
                validate_value(vr, item, config.RAISE)
            except (ValueError, TypeError) as error:
                said = str(error).split(" Please see")[0].rstrip(".")
                why = said[:1].lower() + said[1:]
    if why:
        raise ExportRefused(f"the input's {dictionary_description(keyword)} '{shown(value)[:80]}' is not valid DICOM ({why}), so no DICOM "
                            "file that carries it is written",
                            "Correct it at its source (the scanner's record, or Edit > Patient details); the "
                            "other exports do not need it.")


def _person_name(shown: str) -> str:
    """'Doe, Jane' (as Study shows a name) -> DICOM's 'Doe^Jane'."""
    return "^".join(part.strip() for part in shown.split(",", 1)) if shown else ""


def _dicom_date(shown: str) -> str:
    """'2026-12-03' (as Study shows a date) or '20261203' -> DICOM's '20261203'; anything else is no DICOM date."""
    date = (shown or "").replace("-", "")
    return date if re.fullmatch(r"\d{8}", date) else ""
