"""`fetal-iqa score --dicom-out`: a scanner's cine in, what a PACS accepts out, in the cine's study."""

import shutil
import subprocess

import pydicom
import pytest

from fetal_iqa_gui.cli import main
from tests.support import BURNED_IN_REGION, burned_in_frames, write_us_dicom


def test_score_writes_the_chosen_frames_and_a_report_as_dicom_and_resumes(tiny_cls_path, tmp_path, capsys):
    source = write_us_dicom(tmp_path / "ge.dcm", burned_in_frames(), regions=[BURNED_IN_REGION])
    args = ["score", str(source), "--adapter", str(tiny_cls_path), "--device", "cpu", "--no-cache",
            "--out-dir", str(tmp_path / "out"), "--dicom-out", str(tmp_path / "pacs"), "--blank-outside-image"]
    assert main(args) == 0
    written = sorted((tmp_path / "pacs").iterdir(), key=lambda path: path.name.endswith("_SR.dcm"))
    assert [path.name for path in written] == ["ge_frame000_sweep1.dcm", "ge_SR.dcm"]  # one sweep: its frame, the report
    image, sr = (pydicom.dcmread(path) for path in written)
    study = pydicom.dcmread(source).StudyInstanceUID
    assert image.StudyInstanceUID == sr.StudyInstanceUID == study and image.Modality == "US"
    assert image.BurnedInAnnotation == "NO"
    referenced = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    assert referenced[0].ReferencedSOPInstanceUID == image.SOPInstanceUID
    if shutil.which("dciodvfy"):
        for path in written:
            said = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
            assert "Error" not in said.stdout + said.stderr
    capsys.readouterr()
    assert main(args) == 0
    assert "skipping ge.dcm: finished earlier" in capsys.readouterr().err
    assert sorted((tmp_path / "pacs").iterdir()) == sorted(written)


def test_a_dicom_out_that_is_no_folder_is_said_before_scoring(tiny_cls_path, tmp_path, capsys):
    source = write_us_dicom(tmp_path / "ge.dcm", burned_in_frames())
    taken = tmp_path / "pacs"
    taken.write_text("a file, not a folder")
    assert main(["score", str(source), "--adapter", str(tiny_cls_path), "--device", "cpu",
                 "--dicom-out", str(taken)]) == 1
    printed, err = capsys.readouterr()
    assert "error: Could not write" in err and str(taken) in err and "Traceback" not in err
    assert "best" not in printed  # nothing was scored


def test_the_help_says_what_dicom_out_writes(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--dicom-out DIR" in text and "Structured Report" in text and "(default: none)" in text
