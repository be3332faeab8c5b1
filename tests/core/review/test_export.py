"""Exports: pixel-identical PNG with its sidecar, no silent overwrite, nothing half-written."""

import csv
import errno
import json

import cv2
import numpy as np
import pytest
import SimpleITK as sitk

from fetal_iqa_gui.review.export import (SIDECAR_FIELDS, ModelInfo, export_frame, write_challenge_output, write_scores_csv)
from fetal_iqa_gui.base.errors import ExportRefused, WriteError
from fetal_iqa_gui.base.fileio import atomic_write, write_image
from fetal_iqa_gui.case.case import Case

MODEL = ModelInfo("tiny", "classification:abc", 0.5, is_demo=True)


@pytest.fixture(scope="module")
def sweep(small_case):
    return Case.from_array(small_case.frames, "/data/case-7.mha", sweeps=6)


def test_png_is_the_original_frame_and_the_sidecar_says_where_it_came_from(sweep, tmp_path):
    frame = 35
    written = export_frame(sweep, frame, 0.8, MODEL, 0.5, tmp_path, ac_mm=201.234)
    png, sidecar = written
    assert np.array_equal(cv2.imread(str(png), cv2.IMREAD_UNCHANGED), sweep.frames[frame])
    document = json.loads(sidecar.read_text())
    assert list(document) == [name for name, _ in SIDECAR_FIELDS]
    assert document["frame"] == 35 and document["sweep"] == 2 and document["frame_in_sweep"] == 5
    assert document["good"] is True and document["demo_model"] is True and document["ac_mm"] == 201.23
    assert document["source_sha256"] == sweep.content_hash and document["pixel_spacing_mm"] == [0.28, 0.28]


def test_sidecar_source_is_the_absolute_path_or_by_choice_the_name_alone(small_case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Doe_Jane").mkdir()
    (tmp_path / "Doe_Jane" / "case-7.mha").touch()
    sweep = Case.from_array(small_case.frames, "Doe_Jane/case-7.mha", sweeps=6)  # opened by a relative path
    _, full = export_frame(sweep, 35, 0.8, MODEL, 0.5, tmp_path / "full")
    assert json.loads(full.read_text())["source"] == str(tmp_path.resolve() / "Doe_Jane" / "case-7.mha")
    _, private = export_frame(sweep, 35, 0.8, MODEL, 0.5, tmp_path / "private", source_name_only=True)
    assert json.loads(private.read_text())["source"] == "case-7.mha"
    assert "Doe_Jane" not in private.read_text()


def test_existing_files_are_never_silently_overwritten(sweep, tmp_path):
    export_frame(sweep, 3, 0.2, MODEL, 0.5, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(WriteError, match="already exists"):
        export_frame(sweep, 3, 0.2, MODEL, 0.5, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_png_never_lacks_its_sidecar_and_a_retry_succeeds(sweep, tmp_path, monkeypatch):
    import os
    real_fsync, flushed = os.fsync, []

    def disk_fills_at_the_sidecar(fd):
        flushed.append(fd)
        if len(flushed) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    overlay = np.zeros((8, 8, 3), np.uint8)
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_fills_at_the_sidecar)
        with pytest.raises(WriteError, match=r"\.json': the disk is full"):
            export_frame(sweep, 3, 0.2, MODEL, 0.5, tmp_path, overlay=overlay)
    assert not any(tmp_path.iterdir())
    written = export_frame(sweep, 3, 0.2, MODEL, 0.5, tmp_path, overlay=overlay)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written) and len(written) == 3


def test_exports_get_the_users_usual_permissions(sweep, tmp_path):
    import os
    umask = os.umask(0o022)
    try:
        written = export_frame(sweep, 3, 0.2, MODEL, 0.5, tmp_path)
    finally:
        os.umask(umask)
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o644)}  # readable by colleagues, as cp makes it


def test_padding_frames_are_not_exported(sweep, tmp_path):
    padding = int(np.flatnonzero(sweep.layout.padding)[0])
    with pytest.raises(ExportRefused, match="padding"):
        export_frame(sweep, padding, None, MODEL, 0.5, tmp_path)
    assert not any(tmp_path.iterdir())


def test_full_disk_leaves_no_partial_file(tmp_path):
    def failing(file):
        file.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(WriteError, match="disk is full"):
        atomic_write(tmp_path / "out.png", failing)
    assert list(tmp_path.iterdir()) == []


def test_an_image_the_disk_cannot_hold_leaves_nothing_behind(tmp_path, monkeypatch):
    def half_written(image, path, compress):  # as ITK fails on a full disk: a stub file, then its error
        open(path, "wb").write(b"ObjectType = Image")
        raise RuntimeError("Exception thrown in SimpleITK ImageFileWriter_Execute: itkMetaImageIO.cxx:1110:\n"
                           f"ITK ERROR: MetaImageIO(0x1): File cannot be written: {path}\n"
                           "Reason: No space left on device")
    monkeypatch.setattr(sitk, "WriteImage", half_written)
    with pytest.raises(WriteError, match="Could not write .*case.mha': the disk is full"):
        write_image(sitk.Image(4, 4, sitk.sitkUInt8), tmp_path / "case.mha")
    assert list(tmp_path.iterdir()) == []


def test_an_image_is_written_whole_and_not_over_another(tmp_path):
    image = sitk.GetImageFromArray(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    path = write_image(image, tmp_path / "sub" / "case.mha")
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), np.arange(24).reshape(2, 3, 4))
    with pytest.raises(WriteError, match="already exists"):
        write_image(sitk.Image(4, 4, sitk.sitkUInt8), path)
    assert [p.name for p in path.parent.iterdir()] == ["case.mha"]


def test_scores_csv_has_one_row_per_frame(sweep, tmp_path):
    scores = np.where(sweep.layout.padding, np.nan, 0.3).astype(np.float32)
    scores[10] = 0.9
    path = write_scores_csv(tmp_path / "scores.csv", sweep, scores, 0.5)
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0]) == ["frame", "sweep", "padding", "score", "good"]
    assert len(rows) == sweep.n_frames
    assert rows[10]["good"] == "1" and rows[11]["good"] == "0"
    padding = next(r for r in rows if r["padding"] == "1")
    assert padding["score"] == "" and padding["good"] == "0"


def test_challenge_output_is_the_case_shape_with_one_mask_frame(tmp_path):
    mask = np.zeros((562, 744), np.uint8)
    mask[100:200, 100:200] = 1
    folder = write_challenge_output(tmp_path, "uuid-1", 12, mask, (30, 562, 744), (0.28, 0.28))
    assert json.loads((folder / "fetal-abdomen-frame-number.json").read_text()) == 12
    volume = sitk.ReadImage(str(folder / "fetal-abdomen-segmentation.mha"))
    array = sitk.GetArrayFromImage(volume)
    assert array.shape == (30, 562, 744) and volume.GetSpacing()[0] == pytest.approx(0.28)
    assert array[12].sum() == mask.sum() and array.sum() == mask.sum()
