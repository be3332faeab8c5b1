"""Edit > Patient details: the patient and exam of a file that names none (MetaImage, NIfTI, a
PNG), typed by the user for the report and the outputs; the file itself is not changed.

Every field may stay empty: the case then goes out under its pseudonym (`study.pseudonym`),
said as such. A date must be YYYY-MM-DD and a real day; OK says what is wrong and waits."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLayout, QLineEdit, QWidget

from ..case.case import Case
from ..case.study import TYPED, Study, pseudonym, pseudonymous, typed_study

DIALOG_WIDTH = 480
HIDDEN_NOTE = ("De-identified view: the details entered before are not shown. What you type replaces them; "
               "Cancel keeps them.")
FIELDS = (("name", "Patient name", "Family, Given (for example Doe, Jane)"),
          ("patient_id", "Patient ID", "the hospital's ID (MRN)"),
          ("birth_date", "Birth date", "YYYY-MM-DD"),
          ("study_date", "Exam date", "YYYY-MM-DD"))


class PatientDialog(QDialog):
    problem: QLabel  # what is wrong with the fields; made below them, cleared as they change

    def __init__(self, parent: QWidget, case: Case, hide: bool = False):
        super().__init__(parent)
        self.setWindowTitle("Patient details")
        self.case = case
        self.alias = pseudonym(case.content_hash)
        form = QFormLayout(self)
        form.setSizeConstraint(QLayout.SizeConstraint.SetFixedSize)  # wrapped lines and the problem are never cut
        for text in ("This file names no patient. What you type here goes into the case report and the other "
                     "outputs made from the case; the file itself is not changed.",
                     f"Leave every field empty to use the pseudonym {self.alias}.",
                     *([HIDDEN_NOTE] if hide and case.study.origin == TYPED else [])):
            intro = QLabel(text, wordWrap=True)
            intro.setFixedWidth(DIALOG_WIDTH)
            form.addRow(intro)
        typed = case.study if case.study.origin == TYPED and not hide else Study()
        current = {"name": typed.patient_name, "patient_id": typed.patient_id, "birth_date": typed.birth_date,
                   "study_date": typed.study_date}
        self.fields: dict[str, QLineEdit] = {}
        for key, label, hint in FIELDS:
            edit = QLineEdit(current[key])
            edit.setPlaceholderText(hint)
            edit.setAccessibleName(label)
            edit.textChanged.connect(lambda _text: self.problem.clear())
            form.addRow(label, edit)
            self.fields[key] = edit
        self.problem = QLabel()
        self.problem.setAccessibleName("What is wrong")
        self.problem.setStyleSheet("QLabel { color: #ff6b6b; }")
        self.problem.setWordWrap(True)
        self.problem.setFixedWidth(DIALOG_WIDTH)
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.study: Study | None = None

    def accept(self) -> None:
        """OK: the details if they are valid (else the reason, and the dialog stays), the pseudonym if none."""
        try:
            study = typed_study(**{key: edit.text() for key, edit in self.fields.items()})
        except ValueError as error:
            self.problem.setText(str(error))
            return
        self.study = study if study.known else pseudonymous(self.case.content_hash)
        super().accept()


def ask_patient(parent: QWidget, case: Case, hide: bool = False) -> Study | None:
    """The study the user enters for `case` (the pseudonym's when left empty), or None if cancelled;
    `hide`: the de-identified view, which never shows the details entered before."""
    dialog = PatientDialog(parent, case, hide)
    accepted = dialog.exec() == QDialog.DialogCode.Accepted
    dialog.deleteLater()
    return dialog.study if accepted else None
