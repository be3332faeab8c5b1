"""DICOM outputs a clinic's archive (PACS) accepts: each sweep's chosen frame as an image, and a
Structured Report of what was measured on them, in the input's study.

- The images (dicom_image.py): an Ultrasound Image when the input is ultrasound DICOM (its header
  carried over, its Sequence of Ultrasound Regions kept as the calibration), else a Secondary
  Capture with Pixel Spacing when the spacing is known; the original pixels at their size, blanked
  outside the image when asked (privacy.py), Burned In Annotation saying which.
- The report (dicom_sr.py): TID 1500 Measurement Report in a Comprehensive 3D SR.
- The patient and the study (dicom_study.py): a DICOM input's own (same Study Instance UID: the
  outputs file beside the sweep), else what the user typed or a stable pseudonym. Each output
  series gets a new Series Instance UID, each file a new SOP Instance UID.

Every file of a case is written together (base/fileio.py): all of them or none.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import ExportRefused
from ..base.fileio import safe_name, write_together
from .dicom_image import frame_image, makes_ultrasound_image
from .dicom_sr import measurement_report
from .dicom_study import patient_and_study, source_header
from .export import frame_basename
from .privacy import image_area
from .report import chosen_frames
from .scored_case import ScoredCase

log = logging.getLogger(__name__)

SR_SUFFIX = "_SR.dcm"
IMAGE_SUFFIX = ".dcm"


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
        assert self.report is not None  # `write_dicom` writes one with the images
        return (f"Exported to DICOM in {folder}: {len(self.images)} {self.image_kind} image"
                f"{'' if len(self.images) == 1 else 's'} and a Structured Report ({self.report.name}).")


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
