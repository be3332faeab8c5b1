"""The patient and exam a case carries: read from a DICOM, typed by the user (dates checked), or a
pseudonym made from the frames; what a de-identified view hides and what outputs must carry."""

import numpy as np
import pytest
import SimpleITK as sitk

from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.case.study import (FROM_DICOM, PSEUDONYMOUS, TYPED, Study, pseudonym, pseudonymous,
                                      typed_study)
from tests.support import burned_in_frames, write_us_dicom


def test_the_pseudonym_is_made_from_the_frames_and_the_same_in_every_format(tmp_path):
    frames = burned_in_frames(4)
    dicom = load_case(write_us_dicom(tmp_path / "a.dcm", frames))
    sitk.WriteImage(sitk.GetImageFromArray(frames), str(tmp_path / "b.mha"))
    mha = load_case(tmp_path / "b.mha")
    assert pseudonym(dicom.content_hash) == pseudonym(mha.content_hash) == f"ANON-{mha.content_hash[:8].upper()}"
    other = load_case(write_us_dicom(tmp_path / "c.dcm", np.flip(frames, 2)))
    assert pseudonym(other.content_hash) != pseudonym(mha.content_hash)
    study = pseudonymous(mha.content_hash)
    assert study.patient_name == study.patient_id == pseudonym(mha.content_hash) and study.origin == PSEUDONYMOUS


def test_a_dicom_study_says_where_it_came_from_and_other_files_carry_none(tmp_path):
    case = load_case(write_us_dicom(tmp_path / "a.dcm", burned_in_frames(2), PatientName="Doe^Jane"))
    assert case.study.patient_name == "Doe, Jane" and case.study.from_dicom and case.study.origin == FROM_DICOM
    sitk.WriteImage(sitk.GetImageFromArray(burned_in_frames(2)), str(tmp_path / "b.mha"))
    assert load_case(tmp_path / "b.mha").study == Study()


def test_typed_details_are_kept_as_typed_and_empty_ones_stay_empty():
    study = typed_study(" Roe, Mary ", "H-77", "1990-05-01", "2026-11-29")
    assert (study.patient_name, study.patient_id, study.birth_date, study.study_date) == (
        "Roe, Mary", "H-77", "1990-05-01", "2026-11-29")
    assert study.origin == TYPED and study.machine == "" and study.accession_number == ""
    assert typed_study("", " ", "", "") == Study()  # nothing typed: nothing known


@pytest.mark.parametrize("birth, exam, says", [
    ("01/05/1990", "", "'01/05/1990' is not a date: type it as YYYY-MM-DD"),
    ("1990-5-1", "", "is not a date"),
    ("1990-02-30", "", "is not a date"),
    ("", "2026-13-01", "The exam date '2026-13-01' is not a date"),
    ("2026-11-30", "2026-11-29", "The birth date 2026-11-30 is after the exam date 2026-11-29"),
    ("2999-01-01", "", "in the future"),
])
def test_bad_dates_are_refused_with_the_reason(birth, exam, says):
    with pytest.raises(ValueError, match=says):
        typed_study("Roe, Mary", "", birth, exam)


def test_the_deidentified_view_hides_who_it_is_and_outputs_never_go_unnamed():
    study = Study(patient_name="Doe, Jane", patient_id="MRN-1", birth_date="1995-02-14", study_date="2026-11-30",
                  accession_number="ACC-9", machine="Acme Sono 5", origin=FROM_DICOM)
    hidden = study.hidden()
    assert (hidden.patient_name, hidden.patient_id, hidden.birth_date, hidden.accession_number) == ("",) * 4
    assert hidden.study_date == "2026-11-30" and hidden.machine == "Acme Sono 5"
    assert study.for_outputs("ab" * 32) == study  # named: as named
    unnamed = Study(study_date="2026-11-30").for_outputs("ab" * 32)
    assert unnamed.patient_name == unnamed.patient_id == "ANON-ABABABAB" and unnamed.study_date == "2026-11-30"
    alias = pseudonymous("cd" * 32)
    assert alias.hidden() == alias  # a pseudonym names nobody: the view shows it


def test_what_a_review_keeps_of_entered_details_comes_back_as_entered_and_nothing_else_does():
    from fetal_iqa_gui.case.study import entered_record, entered_study
    typed = typed_study("Roe, Mary", "H-77", "", "2026-11-29")
    assert entered_study(entered_record(typed), "ab" * 32) == typed
    assert entered_study(entered_record(pseudonymous("ab" * 32)), "ab" * 32) == pseudonymous("ab" * 32)
    assert entered_record(Study(patient_name="Doe, Jane", origin=FROM_DICOM)) is None  # the file gives it again
    for damaged in ({"origin": TYPED, "study_date": "30/11/2026"}, {"origin": TYPED, "patient_name": 7},
                    {"origin": FROM_DICOM}, {"origin": TYPED, "machine": "Acme"}, "Roe, Mary"):
        assert entered_study(damaged, "ab" * 32) is None
