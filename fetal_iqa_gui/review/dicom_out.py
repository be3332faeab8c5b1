"""DICOM outputs a clinic's archive (PACS) accepts: each sweep's chosen frame as an image, and a
Structured Report of what was measured on them, in the input's study.

- The images (dicom_image.py): an Ultrasound Image when the input is ultrasound DICOM (its header
  carried over, its Sequence of Ultrasound Regions kept as the calibration), else a Secondary
  Capture with Pixel Spacing when the spacing is known; the original pixels at their size, blanked
  outside the image when asked (privacy.py), Burned In Annotation saying which.
- The report (dicom_sr.py): TID 1500 Measurement Report in a Comprehensive 3D SR.
- The patient and the study: a DICOM input's own (same Study Instance UID: the outputs file beside
  the sweep); another input's from what the user typed (`case.study`), else a pseudonym derived from
  the pixels and a Study Instance UID derived from them too, so that a second export of the same
  case joins the same study. Each output series gets a new Series Instance UID, each file a new SOP
  Instance UID. Never an empty Type 1 attribute.

Every file of a case is written together (base/fileio.py): all of them or none.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import ExportRefused
from ..base.fileio import safe_name, write_together
from ..case.case import Case
from .export import frame_basename
from .privacy import image_area
from .report import chosen_frames
from .scored_case import ScoredCase

log = logging.getLogger(__name__)

SR_SUFFIX = "_SR.dcm"
IMAGE_SUFFIX = ".dcm"
IMAGE_SERIES_NUMBER = 9101  # high: clear of the scanner's own series numbers (the report's is 9102)
PSEUDONYM_PREFIX = "ANON-"

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


@dataclass
class DicomExport:
    """What a DICOM export wrote, for one message to the user."""

    images: list[Path] = field(default_factory=list)
    report: Path | None = None
    image_kind: str = ""  # "Ultrasound Image" or "Secondary Capture"
    frames: list[int] = field(default_factory=list)

    @property
    def written(self) -> list[Path]:
        return self.images + ([self.report] if self.report else [])

    def message(self, folder: Path) -> str:
        return (f"Exported to DICOM in {folder}: {len(self.images)} {self.image_kind} image"
                f"{'' if len(self.images) == 1 else 's'} and a Structured Report ({self.report.name}).")


def pseudonym(case: Case) -> str:
    """A stable stand-in for a patient nobody named: the same pixels, the same pseudonym."""
    return PSEUDONYM_PREFIX + case.content_hash[:8]


def planned_names(scored: ScoredCase) -> list[str]:
    """The names `write_dicom` gives its files (the images', then the report's)."""
    images = [frame_basename(scored.case, frame, bool(scored.is_good(frame))) + IMAGE_SUFFIX
              for frame in chosen_frames(scored).values()]
    return images + [safe_name(scored.case.case_id) + SR_SUFFIX] if images else []


def write_dicom(scored: ScoredCase, folder: str | Path, variant: str = "", overwrite: bool = False,
                blank: bool = False, rename: bool = False) -> DicomExport:
    """Each sweep's chosen frame as a DICOM image and the case's Structured Report, in `folder`.
    `variant`: how the model ran (device, precision), recorded in the report. `blank`: the pixels
    are 0 outside the image (`BlankingRefused` when nothing says where it lies). An existing name
    is refused unless `overwrite`, or `rename` (then every file of the export gets the first free
    `-2`, `-3`, ... : a second export is a second series, beside the first)."""
    from .dicom_image import frame_image, makes_ultrasound_image
    from .dicom_sr import measurement_report
    if scored.model is None:
        raise ExportRefused("the sweep is not scored yet")
    chosen = chosen_frames(scored)
    if not chosen:
        raise ExportRefused("no frame is scored yet")
    area = image_area(scored.case) if blank else None
    header = source_header(scored.case)
    patient = patient_and_study(scored.case, header)
    from pydicom.uid import generate_uid
    image_series = generate_uid()
    images = {sweep: frame_image(scored, frame, header, patient, image_series, number, area)
              for number, (sweep, frame) in enumerate(chosen.items(), 1)}
    report = measurement_report(scored, {sweep: (chosen[sweep], image) for sweep, image in images.items()},
                                variant, blanked=area is not None)
    folder = Path(folder)
    names = planned_names(scored)
    if rename and not overwrite:
        names = _free_names(folder, names)
    datasets = [*images.values(), report]
    written = write_together([(folder / name, _writer(dataset)) for name, dataset in zip(names, datasets)],
                             overwrite)
    kind = "Ultrasound Image" if makes_ultrasound_image(scored, header) else "Secondary Capture"
    log.info("wrote %d DICOM files of %s to %s", len(written), scored.case.case_id, folder)
    return DicomExport(written[:-1], written[-1], kind, list(chosen.values()))


def _free_names(folder: Path, names: list[str]) -> list[str]:
    def numbered(n: int) -> list[str]:
        return names if n == 1 else [name.removesuffix(IMAGE_SUFFIX) + f"-{n}{IMAGE_SUFFIX}" for name in names]
    return next(numbered(n) for n in range(1, 10_000) if not any((folder / name).exists() for name in numbered(n)))


def _writer(dataset):
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)  # encoded before any file is opened: a bad dataset writes nothing
    data = buffer.getvalue()
    return lambda file: file.write(data)


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
    study = case.study
    typed = {"PatientName": _person_name(study.patient_name), "PatientID": study.patient_id,
             "PatientBirthDate": _dicom_date(study.birth_date), "StudyDate": _dicom_date(study.study_date),
             "StudyDescription": study.study_description, "AccessionNumber": study.accession_number,
             "StudyInstanceUID": study.study_uid}
    for keyword, value in typed.items():  # what the header lacked and the user typed (a non-DICOM input)
        if value and not values.get(keyword):
            values[keyword] = value
    if not str(values.get("PatientID") or "").strip():
        values["PatientID"] = pseudonym(case)
    if not str(values.get("PatientName") or "").strip():
        values["PatientName"] = pseudonym(case) + "^"  # a family name alone, as DICOM writes one
    if not str(values.get("StudyInstanceUID") or "").strip():
        from pydicom.uid import generate_uid
        values["StudyInstanceUID"] = generate_uid(entropy_srcs=["fetal-iqa study", case.content_hash])
    return values


def apply_patient_and_study(dataset, values: dict) -> None:
    for keyword, value in values.items():
        setattr(dataset, keyword, value)


def _person_name(shown: str) -> str:
    """'Doe, Jane' (as Study shows a name) -> DICOM's 'Doe^Jane'."""
    return "^".join(part.strip() for part in shown.split(",", 1)) if shown else ""


def _dicom_date(shown: str) -> str:
    """'2026-12-03' (as Study shows a date) or '20261203' -> DICOM's '20261203'; anything else is no DICOM date."""
    date = (shown or "").replace("-", "")
    return date if re.fullmatch(r"\d{8}", date) else ""
