"""The strip above the image: whose recording it is (the patient, the exam, the operator, the
machine), as the file states it or the user entered it; it also gives the window its title.

A file that names no patient says so, with a button to enter the details; nothing is ever made
up. The de-identified view (a setting) shows nothing that names the patient, here or in the title.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from ..case.case import Case
from ..case.study import HIDDEN_TEXT, ORIGIN_WORDS, PSEUDONYMOUS, TYPED, Study
from .state import ViewerState

APP_NAME = "fetal-iqa"
NO_DETAILS = "No patient details in this file"
HIDDEN_SHORT = "Patient hidden"


def window_title(case: Case | None, hide: bool) -> str:
    """'Doe, Jane - 2026-11-30 - fetal-iqa' when the case names its patient; the file's name otherwise."""
    if case is None:
        return APP_NAME
    study = case.study
    shown = study.hidden() if hide else study
    if shown.patient_name:
        parts = [shown.patient_name, shown.study_date]
    elif shown != study:  # the de-identified view hides who it is
        parts = [HIDDEN_SHORT, shown.study_date]
    else:
        parts = [case.source.name]
    return " - ".join(part for part in parts + [APP_NAME] if part)


def headline(study: Study, hide: bool) -> str:
    """The strip's line, as rich text: each known detail once, empty ones left out."""
    shown = study.hidden() if hide else study
    words = []
    if shown.patient_name:
        words.append(f"<b>{html.escape(shown.patient_name)}</b>")
    elif shown != study:
        words.append(f"<b>{HIDDEN_TEXT}</b>")
    elif not study.known:
        return f"<b>{NO_DETAILS}</b>" if not study.from_dicom else "<b>This DICOM names no patient or exam</b>"
    else:
        words.append("<b>No patient name</b>")
    details = [("ID", shown.patient_id), ("born", shown.birth_date), ("exam", shown.study_date),
               ("", shown.study_description), ("accession", shown.accession_number),
               ("operator", shown.operator), ("", shown.machine)]
    words += [html.escape(f"{label} {value}".strip()) for label, value in details
              if value and not (study.origin == PSEUDONYMOUS and value == study.patient_name)]
    if study.origin == TYPED:
        words.append("<i>(entered by hand)</i>")
    elif study.origin == PSEUDONYMOUS:
        words.append("<i>(a pseudonym: no patient details entered)</i>")
    return " &nbsp;·&nbsp; ".join(words)


class PatientHeader(QFrame):
    title_changed = Signal(str)  # the window's title
    edit_requested = Signal()  # the user asks to enter or change the patient details

    def __init__(self, state: ViewerState, settings, parent=None):
        super().__init__(parent)
        self.state, self.settings = state, settings  # settings: a function, the window's may be replaced
        self.setAccessibleName("Patient and exam")
        self.setStyleSheet("PatientHeader { background: #1f3042; border-radius: 3px; }"
                           "QLabel { color: #e6e6e6; padding: 2px 4px; }")
        self.text = QLabel()
        self.text.setAccessibleName("Patient and exam details")
        self.edit = QPushButton("Enter patient details…")
        self.edit.setToolTip("Type the patient's name, ID, birth date and exam date for the report and the outputs "
                             "(the file is not changed), or leave them empty for a pseudonym")
        self.edit.clicked.connect(self.edit_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.edit)
        state.case_changed.connect(self.refresh)
        state.study_changed.connect(self.refresh)
        self.refresh()

    @property
    def hide_patient(self) -> bool:
        return self.settings().deidentified_view

    def refresh(self) -> None:
        case = self.state.case
        self.setVisible(case is not None)
        self.title_changed.emit(window_title(case, self.hide_patient))
        if case is None:
            return
        study = case.study
        self.text.setText(headline(study, self.hide_patient))
        shown = study.hidden() if self.hide_patient else study
        rows = [f"{label}: {value}" for label, value in shown.rows() if value]
        origin = ORIGIN_WORDS.get(study.origin, "") if study.known else "The file names no patient."
        self.text.setToolTip("\n".join(rows + [origin]))
        self.edit.setVisible(not study.from_dicom)  # a DICOM's patient is its header's, never retyped
        self.edit.setText("Patient details…" if study.known else "Enter patient details…")
