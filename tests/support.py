"""Helpers the tests share (the conftest modules keep only fixtures): the tiny model configs and
checkpoints, and DICOM series written as a scanner would."""

import numpy as np

SMALL_CONFIG = {"embed_dim": 32, "vision_cfg": {"image_size": 224, "layers": 24, "width": 64, "patch_size": 14}}


TINY_CONFIG = {"embed_dim": 16, "vision_cfg": {"image_size": 224, "layers": 4, "width": 32, "head_width": 16,
                                              "patch_size": 28}}


def tiny_checkpoint(folder, task, seed, case):
    """A tiny random model whose head is set on the synthetic frames of `case`: CLS scores spread
    over (0, 1), SEG masks cover about 1 % of a frame (the threshold), so that orders, thresholds
    and largest areas matter (as drawn, its scores are all about 1e-7 and its masks empty)."""
    import torch

    from fetal_iqa_gui.model.checkpoint import build_model, save_checkpoint
    from fetal_iqa_gui.engine.preprocess import frames_to_tensor
    torch.manual_seed(seed)
    model = build_model(task, TINY_CONFIG).eval()
    frames = case.frames[np.flatnonzero(case.frames.reshape(len(case.frames), -1).any(1))]
    images = frames_to_tensor(frames[::10 if task == "classification" else 40])  # SEG is slow
    with torch.no_grad():
        logits = model(images).flatten()
        if task == "classification":  # logits of median 0 and standard deviation 2
            scale = 2 / logits.std()
            model.classifier.weight.mul_(scale)
            model.classifier.bias.sub_(logits.median()).mul_(scale)
        else:  # the last convolution's bias: 1 % of the pixels above 0
            head = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d)][-1]
            head.bias.sub_(torch.quantile(logits[::3], 0.99))
    path = folder / f"tiny_{task}.safetensors"
    save_checkpoint(model, path, {"config": TINY_CONFIG, "name": f"tiny {task} test model"}, full_model=True)
    return path


def write_dicom_series(folder, volume):
    """A DICOM series (one file a slice, in one series, with positions and instance numbers) of a
    (slices, rows, columns) uint8 volume."""
    import SimpleITK as sitk
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(volume)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for index in range(len(volume)):
        piece = image[:, :, index]
        piece.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1.12345")
        piece.SetMetaData("0020|0013", str(index + 1))
        piece.SetMetaData("0020|0032", f"0\\0\\{index}")
        piece.SetMetaData("0008|0060", "US")
        writer.SetFileName(str(folder / f"slice{index:03d}.dcm"))
        writer.Execute(piece)
    return folder


def write_us_dicom(path, frames, regions=(), **attributes):
    """A multi-frame Ultrasound DICOM of (frames, rows, columns) grey or (..., 3) RGB uint8, calibrated as a scanner
    calibrates it: `regions`, dicts of Sequence of Ultrasound Regions attributes (PhysicalDeltaX in
    cm ...), and any other attributes by keyword (PixelSpacing=[row, column], ImagerPixelSpacing)."""
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.tag import Tag
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid
    frames = np.asarray(frames, np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "US", "Test^Synthetic", "SYN-1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "20261203", "101500", "1", 1, 1
    # the rest of what the Ultrasound Multi-frame Image IOD asks (dciodvfy checks it in the tests)
    ds.PatientBirthDate, ds.PatientSex, ds.ReferringPhysicianName, ds.AccessionNumber = "", "", "", ""
    ds.Manufacturer, ds.PatientOrientation, ds.BodyPartExamined = "", "", "ABDOMEN"  # unpaired: no Laterality
    ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"]
    ds.FrameTime, ds.FrameIncrementPointer = 33.3, Tag(0x0018, 0x1063)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames.shape[:3]
    if frames.ndim == 4:  # colour: (frames, rows, columns, 3), interleaved
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    items = []
    for values in regions:
        item = Dataset()
        defaults = {"RegionSpatialFormat": 1, "RegionDataType": 1, "RegionFlags": 0,
                    "RegionLocationMinX0": 0, "RegionLocationMinY0": 0,
                    "RegionLocationMaxX1": frames.shape[2] - 1, "RegionLocationMaxY1": frames.shape[1] - 1,
                    "PhysicalUnitsXDirection": 3, "PhysicalUnitsYDirection": 3}
        for keyword, value in {**defaults, **values}.items():
            setattr(item, keyword, value)
        items.append(item)
    if items:
        ds.SequenceOfUltrasoundRegions = Sequence(items)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = frames.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


# A scanner's frame with text burned in around its image: the B-mode region (columns 40-199, rows
# 30-149 of 240 x 180), calibrated as write_us_dicom's `regions` take it, and bright "text" above and below it
BURNED_IN_REGION = dict(RegionLocationMinX0=40, RegionLocationMinY0=30, RegionLocationMaxX1=199,
                        RegionLocationMaxY1=149, PhysicalDeltaX=0.03, PhysicalDeltaY=0.03)
BURNED_IN_TEXT = 255


def burned_in_frames(count=3, rows=180, columns=240):
    """Speckle everywhere, and bright text above and below BURNED_IN_REGION (a name, a date)."""
    frames = np.random.default_rng(5).integers(20, 200, (count, rows, columns), dtype=np.uint8)
    frames[:, 5:20, 10:120] = BURNED_IN_TEXT
    frames[:, 160:175, 150:230] = BURNED_IN_TEXT
    return frames


def inside_burned_in_region(shape=(180, 240)):
    """True on the pixels of BURNED_IN_REGION."""
    keep = np.zeros(shape, bool)
    keep[30:150, 40:200] = True
    return keep


def linearly_scored(path, model):
    """The case at `path` in 6 equal sweeps, its image frames scored 0 to 1 in order (padding unscored)."""
    from fetal_iqa_gui.case.loading import load_case
    from fetal_iqa_gui.review.scored_case import ScoredCase
    case = load_case(path, sweeps=6)
    scores = np.where(case.layout.padding, np.nan, np.linspace(0, 1, case.n_frames)).astype(np.float32)
    return ScoredCase(case, model, scores)
