"""DICOM outputs of inputs whose headers a clinic or a broken scanner got wrong (#29): the files
written validate, or none is written and the user is told which value and why; never a traceback."""

import numpy as np
import pydicom
import pytest

from fetal_iqa_gui.base.errors import ExportRefused
from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.review.dicom_out import write_dicom
from fetal_iqa_gui.review.scored_case import ScoredCase
from tests.support import BURNED_IN_REGION, burned_in_frames, write_us_dicom

from .test_dicom_out import DEMO, validated


def scored(tmp_path, **attributes):
    source = write_us_dicom(tmp_path / "in.dcm", burned_in_frames(3), regions=[BURNED_IN_REGION], **attributes)
    return source, ScoredCase(load_case(source), DEMO, np.array([0.2, 0.9, 0.3], np.float32))


@pytest.mark.parametrize("attributes, said", [
    ({"PatientName": ["Doe^Jane", "Roe^Ann"]}, "Patient's Name '[Doe^Jane, Roe^Ann]' is not valid DICOM (it holds 2"),
    ({"PatientBirthDate": "notadate"}, "Patient's Birth Date 'notadate' is not valid DICOM (it is not a date"),
    ({"StudyDate": "20241345"}, "Study Date '20241345' is not valid DICOM (it is not a date"),
    ({"PatientName": "Evil\x1b[2J^\x07Name"}, "'Evil\\x1b[2J^\\x07Name' is not valid DICOM (it holds control"),
    ({"PatientID": "B" * 100}, "Patient ID 'BBBB"),
    ({"InstitutionName": "Hôpital\x1b[31m"}, "Institution Name"),
])
def test_a_header_value_dicom_does_not_allow_refuses_the_dicom_output_saying_which(tmp_path, attributes, said):
    _, case = scored(tmp_path, **attributes)
    with pytest.raises(ExportRefused) as refused:
        write_dicom(case, tmp_path / "out")
    assert said in str(refused.value) and "nothing was exported" in str(refused.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("charset, name", [("GB18030", "王^小红"), ("ISO_IR 192", "Müller^Zoë=山田^太郎"),
                                           ("ISO_IR 100", "Øster^Åse")])
def test_names_in_another_character_set_reach_the_outputs_as_written(tmp_path, charset, name):
    _, case = scored(tmp_path, SpecificCharacterSet=charset, PatientName=name)
    export = write_dicom(case, tmp_path / "out")
    for path in export.written:
        assert pydicom.dcmread(path).PatientName == name
        validated(path)


def test_an_input_without_its_sop_instance_uid_still_gives_valid_outputs(tmp_path):
    source, _ = scored(tmp_path)
    header = pydicom.dcmread(source)
    del header.SOPInstanceUID
    header.save_as(source)
    case = ScoredCase(load_case(source), DEMO, np.array([0.2, 0.9, 0.3], np.float32))
    export = write_dicom(case, tmp_path / "out")
    for path in export.written:
        validated(path)
