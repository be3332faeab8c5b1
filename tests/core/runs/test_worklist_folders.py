"""A worklist folder's DICOM series folders are cases (as `fetal-iqa listen` writes each series it
receives); a folder of other sweep files is not one case, nor is a hidden one (what is still arriving)."""

import numpy as np

from fetal_iqa_gui.runs.worklist import Worklist
from tests.support import write_us_dicom


def test_series_folders_are_cases_and_hidden_or_other_folders_are_not(tmp_path):
    frames = np.full((3, 20, 30), 90, np.uint8)
    for folder in ("20261203_US_S1_ab12cd34", "scanner-export", ".incoming/study", "volumes", "notes"):
        (tmp_path / folder).mkdir(parents=True)
    write_us_dicom(tmp_path / "20261203_US_S1_ab12cd34" / "instance.dcm", frames)
    write_us_dicom(tmp_path / "scanner-export" / "IM000001", frames)  # no suffix: known by its DICOM marker
    write_us_dicom(tmp_path / ".incoming" / "study" / "half.dcm", frames)
    (tmp_path / "volumes" / "a.mha").write_bytes(b"")
    (tmp_path / "notes" / "readme.txt").write_text("not a sweep")
    assert [case.path.name for case in Worklist(tmp_path).cases] == ["20261203_US_S1_ab12cd34", "scanner-export"]


def test_a_rescan_adds_what_arrived_after_the_others_and_nothing_twice(tmp_path):
    frames = np.full((3, 20, 30), 90, np.uint8)
    for folder in ("20261203_US_S1_aaaa", ".incoming/study/series"):
        (tmp_path / folder).mkdir(parents=True)
    write_us_dicom(tmp_path / "20261203_US_S1_aaaa" / "instance.dcm", frames)
    worklist = Worklist(tmp_path)
    assert worklist.rescan() == []
    write_us_dicom(tmp_path / ".incoming" / "study" / "series" / "instance.dcm", frames)
    assert worklist.rescan() == []  # still arriving: not a case
    (tmp_path / ".incoming" / "study" / "series").rename(tmp_path / "20261202_US_S2_bbbb")
    [added] = worklist.rescan()
    assert added.path.name == "20261202_US_S2_bbbb"
    assert [case.path.name for case in worklist.cases] == ["20261203_US_S1_aaaa", "20261202_US_S2_bbbb"]
    assert worklist.rescan() == [] and worklist.index_of(added.path) == 1
