"""An exam as a clinic hands it over, on a USB stick or a CD: its DICOMDIR opens as a worklist of
its recordings, each named apart (the files are all IM000000 in their own folders), each review
kept for its own recording."""

import os

import numpy as np

from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.review.scored_case import ScoredCase
from fetal_iqa_gui.runs.worklist import REVIEWED, Worklist
from tests.core.review.test_dicom_out import DEMO
from tests.support import write_us_dicom


def usb_export(tmp_path, recordings):
    """A DICOMDIR file set as an ultrasound machine writes an exam (pydicom's FileSet: PT/ST/SE/IM)."""
    from pydicom import dcmread
    from pydicom.fileset import FileSet
    fileset = FileSet()
    study_uid = "1.2.826.0.1.3680043.8.498.1"
    for index, frames in enumerate(recordings):
        made = write_us_dicom(tmp_path / f"made{index}.dcm", frames, StudyInstanceUID=study_uid,
                              SeriesNumber=index + 1, PatientID="PAT-USB")
        fileset.add(dcmread(made))
    fileset.write(tmp_path / "usb")
    return tmp_path / "usb"


def sweeps(count, frames=6):
    return [np.random.default_rng(i).integers(1, 255, (frames, 40, 56), dtype=np.uint8) for i in range(count)]


def test_a_usb_export_is_a_worklist_of_its_recordings_each_named_apart(tmp_path):
    made = sweeps(3)
    worklist = Worklist(usb_export(tmp_path, made))
    assert len(worklist.cases) == 3
    names = [case.name for case in worklist.cases]
    assert len(set(names)) == 3 and all(name.endswith("IM000000") or "/" in name for name in names)
    assert not any(name.startswith("PT") for name in names)  # what they all share is left out
    for case, frames in zip(worklist.cases, made):
        loaded = load_case(case.path)
        assert loaded.study.patient_id == "PAT-USB" and np.array_equal(loaded.frames, frames)
    assert worklist.rescan() == []


def test_each_recordings_review_is_its_own_when_the_exam_is_opened_again(tmp_path):
    usb = usb_export(tmp_path, sweeps(2))
    worklist = Worklist(usb)
    first = worklist.cases[0]
    case = load_case(first.path)
    worklist.mark_reviewed(first.path, ScoredCase(case, DEMO, np.linspace(0.1, 0.9, case.n_frames, dtype=np.float32)))
    again = Worklist(usb)
    assert [entry.state for entry in again.cases] == [REVIEWED, "not scored"]


def test_a_damaged_dicomdir_is_said_and_lists_nothing(tmp_path):
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 20)
    worklist = Worklist(tmp_path)
    assert worklist.cases == []
    assert any("DICOMDIR index could not be read" in notice for notice in worklist.take_notices())


def test_two_series_an_export_put_in_one_folder_are_said(tmp_path):
    """Some exporters put every image of a study in one folder: two series of single frames there open as one
    case (the folder's first series), so the other recording would go unseen; the worklist says so."""
    import shutil

    from pydicom import dcmread
    from pydicom.fileset import FileSet
    from pydicom.uid import generate_uid
    fileset, study = FileSet(), generate_uid()
    for number in (1, 2):
        series = generate_uid()
        for instance in (1, 2):
            made = write_us_dicom(tmp_path / f"made{number}{instance}.dcm", np.full((1, 16, 16), number, np.uint8),
                                  StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=number,
                                  InstanceNumber=instance)
            fileset.add(dcmread(made))
    fileset.write(tmp_path / "usb")
    first, second = sorted(path for path in (tmp_path / "usb").rglob("SE*") if path.is_dir())
    index = (tmp_path / "usb" / "DICOMDIR").read_bytes()
    for number, image in enumerate(sorted(second.iterdir()), 2):  # the second series moved into the first's folder
        index = index.replace(f"{second.name}\\{image.name}".encode(), f"{first.name}\\IM00000{number}".encode())
        shutil.move(image, first / f"IM00000{number}")
    second.rmdir()
    (tmp_path / "usb" / "DICOMDIR").write_bytes(index)
    worklist = Worklist(tmp_path / "usb")
    assert len(worklist.cases) == 1
    [notice] = worklist.take_notices()
    assert notice.startswith("The DICOMDIR lists several recordings in PT000000/ST000000/SE000000, which open as one")


def test_a_review_stays_when_another_exam_is_written_to_the_stick_later(tmp_path):
    """Scanners add each exam to the stick's DICOMDIR: a second patient's folder changes what the recordings'
    names share, and the reviews kept under the short names no longer showed."""
    from pydicom import dcmread
    from pydicom.fileset import FileSet
    usb = usb_export(tmp_path, sweeps(2))
    worklist = Worklist(usb)
    first = worklist.cases[0]
    case = load_case(first.path)
    worklist.mark_reviewed(first.path, ScoredCase(case, DEMO, np.linspace(0.1, 0.9, case.n_frames, dtype=np.float32)))
    before = first.path.stat()
    fileset = FileSet(usb / "DICOMDIR")
    fileset.add(dcmread(write_us_dicom(tmp_path / "later.dcm", sweeps(3)[2], PatientID="PAT-NEXT")))
    fileset.write()
    os.utime(first.path, ns=(before.st_atime_ns, before.st_mtime_ns))  # pydicom rewrites it; a scanner does not
    again = Worklist(usb)
    assert len(again.cases) == 3 and again.cases[0].path == first.path
    assert [entry.state for entry in again.cases] == [REVIEWED, "not scored", "not scored"]


def test_a_series_received_into_an_exams_folder_shows_beside_its_recordings(tmp_path):
    """The receive folder holds a stick's exam copied in: what the scanner sends later went in as received
    (said so) and never showed, the worklist listing the DICOMDIR's recordings only."""
    from tests.core.pacs.test_listen_hostile import completed, received
    usb = usb_export(tmp_path, sweeps(2))
    worklist = Worklist(usb)
    received(usb)
    [event] = completed(usb)
    [added] = worklist.rescan()
    assert added.path == event.folders[0] and load_case(added.path).n_frames == 2
    assert [case.path for case in Worklist(usb).cases] == [case.path for case in worklist.cases]
    assert len(worklist.cases) == 3 and worklist.rescan() == []
