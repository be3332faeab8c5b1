"""A chosen frame as a DICOM image: Ultrasound Image where the input's header makes one, else
Secondary Capture (highdicom).

An Ultrasound Image (single frame) is written for an ultrasound DICOM input whose calibration is
its Sequence of Ultrasound Regions: the regions are copied as they are (a frame of the cine has
the cine's geometry), so that a viewer measures on it as on the scanner's own image, and so is
what the header says of the machine. Any other input (another format, DICOM of another kind, a
spacing the user entered or one from Pixel Spacing) gives a Secondary Capture, with Pixel Spacing
when the spacing is known and none when it is not. Either way the pixels are the frame's own at
their size (grey, 8 bits, as the app holds them; blanked outside the image when asked), and
Burned In Annotation says whether the scanner's text may be in them.
"""

from __future__ import annotations

from datetime import datetime

from .. import __version__
from .dicom_study import IMAGE_SERIES_NUMBER, apply_patient_and_study, check_carried
from .export import frame_pixels
from .privacy import ImageArea, burned_in_annotation
from .scored_case import ScoredCase

MANUFACTURER = "fetal-iqa"
ULTRASOUND_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
ULTRASOUND_SOURCES = ("1.2.840.10008.5.1.4.1.1.3.1", ULTRASOUND_IMAGE)  # US Multi-frame Image, US Image
# the scanner's General Equipment and what else of its header holds for one frame of its cine
_CARRIED = ("Manufacturer", "InstitutionName", "InstitutionAddress", "StationName", "InstitutionalDepartmentName",
            "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions", "OperatorsName",
            "PerformingPhysicianName", "BodyPartExamined", "SequenceOfUltrasoundRegions", "TransducerData",
            "ProcessingFunction", "AcquisitionDateTime", "ContentDate", "ContentTime", "PatientOrientation",
            "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod")


# what the US Region Calibration module asks of each region (Type 1): a region lacking one is not copied
_REGION_TYPE_1 = ("RegionSpatialFormat", "RegionDataType", "RegionFlags", "RegionLocationMinX0", "RegionLocationMinY0",
                  "RegionLocationMaxX1", "RegionLocationMaxY1", "PhysicalUnitsXDirection", "PhysicalUnitsYDirection",
                  "PhysicalDeltaX", "PhysicalDeltaY")


def makes_ultrasound_image(scored: ScoredCase, header) -> bool:
    """An ultrasound DICOM input whose regions, complete, are the calibration the app measures with
    (ITK, for one, writes an empty region: that input gets a Secondary Capture)."""
    if header is None or str(header.get("SOPClassUID", "")) not in ULTRASOUND_SOURCES:
        return False
    regions = header.get("SequenceOfUltrasoundRegions") or []
    complete = bool(regions) and all(region.get(name) not in (None, "") for region in regions for name in _REGION_TYPE_1)
    spacing = scored.case.spacing
    return complete and (not spacing.known or "(0018,6011)" in spacing.source)


def frame_image(scored: ScoredCase, frame: int, header, patient: dict, series_uid: str, number: int,
                area: ImageArea | None = None):
    """The DICOM dataset of one chosen frame; `number` is its Instance Number in `series_uid`."""
    from pydicom.uid import generate_uid
    pixels = frame_pixels(scored.case, frame, area)
    if makes_ultrasound_image(scored, header):
        image = _ultrasound_image(pixels, header, frame)
    else:
        image = _secondary_capture(pixels, scored.case.spacing_mm, patient["StudyInstanceUID"])
    apply_patient_and_study(image, patient)
    image.SeriesInstanceUID, image.SeriesNumber, image.InstanceNumber = series_uid, IMAGE_SERIES_NUMBER, number
    image.SOPInstanceUID = image.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    sweep, model = scored.case.layout.sweep_of(frame), scored.model
    assert model is not None  # what is exported to DICOM was scored by a model
    demo = " (demo model: synthetic data, not for clinical use)" if model.is_demo else ""
    image.SeriesDescription = "fetal-iqa chosen frames" + (" (DEMO MODEL)" if model.is_demo else "")
    image.ImageComments = (f"Sweep {sweep.number}, frame {frame} of the recording (from 0): chosen by fetal-iqa "
                           f"{__version__}, quality score {float(scored.scores[frame]):.3f} with {model.name}"
                           f"{demo}; threshold {scored.threshold:.3f}.")
    image.BurnedInAnnotation = burned_in_annotation(area is not None)
    if "BodyPartExamined" not in image:
        image.Laterality = ""  # Type 2C: the body part is unknown, so it may be a paired one
    image.DerivationDescription = (f"frame {frame} of the recording" + (f", zero {area.blanked}" if area else "")
                                   + ", as 8-bit grey")[:1024]
    return image


def _ultrasound_image(pixels, header, frame: int):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian
    image = Dataset()
    image.file_meta = FileMetaDataset()
    image.file_meta.MediaStorageSOPClassUID = UID(ULTRASOUND_IMAGE)
    image.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    image.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: whatever the input's names are written in
    image.SOPClassUID = ULTRASOUND_IMAGE
    image.Modality = "US"
    for keyword in _CARRIED:
        if keyword in header:
            check_carried(keyword, header[keyword].value)
            setattr(image, keyword, header[keyword].value)
    source_type = list(header.get("ImageType") or [])
    image.ImageType = ["DERIVED", "PRIMARY", *source_type[2:4]]  # a frame of the cine: the US kind and mode kept
    now = datetime.now()
    if not image.get("ContentDate"):
        image.ContentDate, image.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    if "PatientOrientation" not in image:
        image.PatientOrientation = ""
    if "Manufacturer" not in image:
        image.Manufacturer = ""
    if header.get("SOPInstanceUID"):  # Type 3 here: an input without its own UID is referenced by none
        source = Dataset()
        source.ReferencedSOPClassUID, source.ReferencedSOPInstanceUID = header.SOPClassUID, header.SOPInstanceUID
        if int(header.get("NumberOfFrames") or 1) > 1:
            source.ReferencedFrameNumber = frame + 1
        image.SourceImageSequence = [source]
    _pixel_module(image, pixels)
    return image


def _secondary_capture(pixels, spacing_mm: tuple[float, float] | None, study_uid: str):
    from highdicom.sc import SCImage
    from pydicom.uid import generate_uid
    image = SCImage(
        pixel_array=pixels, photometric_interpretation="MONOCHROME2", bits_allocated=8,
        # highdicom asks an orientation of a PATIENT image; nobody knows the probe's, so it is emptied below
        coordinate_system="PATIENT", patient_orientation=("A", "F"),
        study_instance_uid=study_uid, series_instance_uid=generate_uid(), series_number=1,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER, software_versions=__version__,
        pixel_spacing=None if spacing_mm is None else (spacing_mm[1], spacing_mm[0]))  # DICOM: row, then column
    image.PatientOrientation = ""  # type: ignore[assignment]  # empty, as DICOM allows; highdicom types a list
    image.ConversionType = "WSD"  # made on a workstation, from the recording
    image.Modality = "US"  # what the pixels are: viewers and archives file it with the sweep's
    return image


def _pixel_module(image, pixels) -> None:
    image.SamplesPerPixel, image.PhotometricInterpretation = 1, "MONOCHROME2"
    image.Rows, image.Columns = pixels.shape[:2]
    image.BitsAllocated, image.BitsStored, image.HighBit, image.PixelRepresentation = 8, 8, 7, 0
    image.PixelData = pixels.astype("uint8").tobytes()
