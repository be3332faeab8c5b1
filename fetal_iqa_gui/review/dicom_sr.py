"""The Structured Report of a scored case: DICOM's TID 1500 Measurement Report (highdicom), in a
Comprehensive 3D SR document, its evidence the chosen frames' images (dicom_image.py).

One measurement group per abdominal circumference on a sweep's chosen frame (TID 1410, planar
ROI): the ellipse as SCOORD ELLIPSE (its four axis end points, in the image's pixels), the AC in
mm when the spacing is known, the frame's quality score and the threshold, and who measured
(Observer Type: Device for the model's ellipse, Person for the sonographer's caliper; the model's
groups also name the algorithm). A frame without an AC gets a TID 1501 group of its score and
threshold, and the report says why there is no AC. The model's identity, whether it is a demo
model, the spacing's source and "not a medical device" are TEXT items of the report's
Qualitative Evaluations container (TID 1500 row 12).

Codes: the AC is (11979-2, LN, "Abdominal Circumference"), DICOM PS3.16 CID 12005 "Fetal
Biometry Measurements" (pydicom's `codes.cid12005.AbdominalCircumference`); the procedure
(268445003, SCT, "Ultrasound scan - obstetric"); the score and threshold, which no standard codes,
are in the private scheme 99FIQA, declared in the Coding Scheme Identification Sequence.
"""

from __future__ import annotations

import math

import numpy as np

from .. import __version__
from .calipers import EllipseCaliper
from .report import NOT_A_DEVICE
from .export import ModelInfo
from .scored_case import ScoredCase

PRIVATE_SCHEME = "99FIQA"
SR_SERIES_NUMBER = 9102
QUALITATIVE_EVALUATIONS = ("C0034375", "UMLS", "Qualitative Evaluations")  # TID 1500's container (PS3.16)
DEMO_WARNING = "DEMO MODEL: trained on synthetic sweeps, not on patients; its results mean nothing clinically."


def _codes():
    from pydicom.sr.codedict import codes
    from highdicom.sr import CodedConcept
    private = {name: CodedConcept(value, PRIVATE_SCHEME, meaning) for name, (value, meaning) in {
        "score": ("FIQA001", "Image quality score"), "threshold": ("FIQA002", "Image quality threshold"),
        "quality": ("FIQA003", "Image quality"), "good": ("FIQA004", "Good: at or above the threshold"),
        "below": ("FIQA005", "Below the threshold")}.items()}
    return codes, private


def measurement_report(scored: ScoredCase, images: dict, variant: str = "", blanked: bool = False):
    """`images`: sweep number -> (frame, its written image dataset). Returns the SR dataset."""
    import highdicom.sr as hsr
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid
    codes, _ = _codes()
    groups: list = []
    notes: list[str] = []
    for sweep, (frame, image) in images.items():
        groups += _sweep_groups(scored, sweep, frame, image, notes)
    model = _model_of(scored)
    device = hsr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=["fetal-iqa model", model.identity]), name=f"fetal-iqa {__version__}",
        manufacturer_name="fetal-iqa", model_name=model.name[:64])
    context = hsr.ObservationContext(observer_device_context=hsr.ObserverContext(
        observer_type=codes.cid270.Device, observer_identifying_attributes=device))
    report = hsr.MeasurementReport(context, codes.SCT.UltrasoundScanObstetric, groups,
                                   referenced_images=[image for _, image in images.values()])
    evaluations = hsr.ContainerContentItem(name=hsr.CodedConcept(*QUALITATIVE_EVALUATIONS),
                                           relationship_type=hsr.RelationshipTypeValues.CONTAINS)
    evaluations.ContentSequence = hsr.ContentSequence(
        [_text(codes.DCM.Comment, text) for text in _document_notes(scored, variant, blanked) + notes])
    report[0].ContentSequence.append(evaluations)
    sr = hsr.Comprehensive3DSR(
        evidence=[image for _, image in images.values()], content=report[0], series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer="fetal-iqa", is_complete=True)
    sr.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, as the images: highdicom < 0.24 leaves it out (ASCII)
    sr.SeriesDescription = ("fetal-iqa measurements" + (" (DEMO MODEL)" if model.is_demo else ""))[:64]
    scheme = Dataset()
    scheme.CodingSchemeDesignator, scheme.CodingSchemeName = PRIVATE_SCHEME, "fetal-iqa codes"
    scheme.CodingSchemeResponsibleOrganization = "fetal-iqa"
    sr.CodingSchemeIdentificationSequence = [scheme]
    sr.SoftwareVersions = __version__
    return sr


def _document_notes(scored: ScoredCase, variant: str, blanked: bool) -> list[str]:
    model = _model_of(scored)
    described = (f"Model: {model.name} ({model.task}); identity {model.identity}"
                 + (f"; ran as {variant}" if variant else "") + f". Threshold {scored.threshold:.3f}.")
    notes = [NOT_A_DEVICE, described]
    if model.is_demo:
        notes.append(DEMO_WARNING)
    notes.append(f"Pixel spacing: {scored.case.spacing.describe()}.")
    if blanked:
        notes.append("Every pixel outside the ultrasound image is blanked (burned-in text removed).")
    return notes


def _sweep_groups(scored: ScoredCase, sweep: int, frame: int, image, notes: list[str]) -> list:
    """The measurement groups of one sweep's chosen frame; why it has no AC goes into `notes`."""
    import highdicom.sr as hsr
    from pydicom.uid import generate_uid
    codes, private = _codes()
    score = float(scored.scores[frame])
    common = [_number(private["score"], round(score, 6), codes.UCUM.NoUnits),  # as the sidecar: float32's tail is noise
              _number(private["threshold"], scored.threshold, codes.UCUM.NoUnits)]
    verdict = hsr.QualitativeEvaluation(private["quality"],
                                        private["good"] if scored.is_good(frame) else private["below"])
    where = f"Sweep {sweep}, frame {frame}"
    ellipses, why_none = _ellipses(scored, frame)
    groups: list[hsr.PlanarROIMeasurementsAndQualitativeEvaluations | hsr.MeasurementsAndQualitativeEvaluations] = []
    for number, (ellipse, ac_mm, by) in enumerate(ellipses, 1):
        algorithm = _algorithm(scored) if by == "model" else None
        observer = hsr.QualitativeEvaluation(codes.DCM.ObserverType,
                                             codes.DCM.Device if by == "model" else codes.DCM.Person)
        measured = ([_number(codes.cid12005.AbdominalCircumference, round(ac_mm, 2), codes.UCUM.Millimeter, algorithm)]
                    if ac_mm is not None else [])
        if ac_mm is None:
            notes.append(f"{where}: the ellipse is given in pixels, without an abdominal circumference in mm: "
                         f"the pixel spacing is unknown ({scored.case.spacing.source}).")
        region = hsr.ImageRegion(graphic_type=hsr.GraphicTypeValues.ELLIPSE, graphic_data=ellipse_points(ellipse),
                                 source_image=hsr.SourceImageForRegion.from_source_image(image))
        groups.append(hsr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hsr.TrackingIdentifier(generate_uid(), f"sweep {sweep} frame {frame} AC {number}"),
            referenced_region=region, algorithm_id=algorithm, measurements=measured + common,
            qualitative_evaluations=[observer, verdict]))
    if not ellipses:
        notes.append(f"{where}: no abdominal circumference: {why_none}.")
        groups.append(hsr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hsr.TrackingIdentifier(generate_uid(), f"sweep {sweep} frame {frame}"),
            algorithm_id=_algorithm(scored), measurements=common, qualitative_evaluations=[verdict],
            source_images=[hsr.SourceImageForMeasurementGroup.from_source_image(image)]))
    return groups


def _ellipses(scored: ScoredCase, frame: int) -> tuple[list[tuple], str]:
    """(ellipse, AC in mm or None, "model" or "user") of each AC on the frame, as the report shows
    them: the calipers kept on it, else the model's own where it calls the frame good; and, for
    none, why."""
    kept = [c for c in scored.calipers.get(frame, []) if isinstance(c, EllipseCaliper)]
    if kept:
        return [(c.ellipse, c.ac_mm, c.by) for c in kept], ""
    if scored.masks is None:
        return [], "the model does not segment, and no ellipse caliper was kept on the frame"
    if not scored.is_good(frame):
        return [], "the frame is below the threshold, where the model's mask is no abdomen to measure"
    measurement = scored.measurement_of(frame)
    if measurement is None:
        return [], "the model found no abdomen to measure"
    return [(measurement.ellipse, measurement.ac_mm, "model")], ""


def ellipse_points(ellipse) -> np.ndarray:
    """SCOORD ELLIPSE's graphic data: the major axis' two end points, then the minor axis', as
    (column, row). The app's pixel coordinates count from a pixel's centre (numpy's, OpenCV's);
    DICOM's from the top left pixel's top left corner, hence the half pixel."""
    (cx, cy), (a, b) = ellipse.center, ellipse.axes
    theta = math.radians(ellipse.angle_deg)
    first, second = np.array([math.cos(theta), math.sin(theta)]), np.array([-math.sin(theta), math.cos(theta)])
    (major, major_dir), (minor, minor_dir) = sorted([(a, first), (b, second)], key=lambda axis: -axis[0])
    centre = np.array([cx, cy]) + 0.5
    points = [centre + major * major_dir, centre - major * major_dir, centre + minor * minor_dir,
              centre - minor * minor_dir]
    return np.array(points, dtype=np.float32)


def _model_of(scored: ScoredCase) -> ModelInfo:
    assert scored.model is not None  # what is exported to DICOM was scored by a model
    return scored.model


def _algorithm(scored: ScoredCase):
    from highdicom.sr import AlgorithmIdentification
    model = _model_of(scored)
    return AlgorithmIdentification(name=model.name + (" (demo model)" if model.is_demo and "demo" not in
                                                      model.name.lower() else ""),
                                   version=model.identity or "unknown")


def _number(name, value: float, unit, algorithm=None):
    from highdicom.sr import Measurement
    return Measurement(name=name, value=float(value), unit=unit, algorithm_id=algorithm)


def _text(name, value: str):
    from highdicom.sr import RelationshipTypeValues, TextContentItem
    return TextContentItem(name=name, value=value, relationship_type=RelationshipTypeValues.CONTAINS)
