"""Errors the user can act on: which file, what is wrong with it, what to do.

The GUI shows them in an alert and the CLI prints them as one `error:` line, each in one place
(`FetalIqaError` is what both catch); anything else reaching those places is a bug and is logged
in full. Subclasses say what was being done with the file: opened, loaded or written.
"""

from __future__ import annotations

import os
from pathlib import Path


class FetalIqaError(Exception):
    """A problem with a file or a choice of the user's; the message is written for the user."""

    doing = "Cannot use"
    exit_code = 1  # the CLI's exit status when this stops a command

    def __init__(self, path: str | os.PathLike | None, problem: str, advice: str = ""):
        self.path = Path(path) if path else None
        self.problem = problem
        self.advice = advice
        super().__init__(self.compose())

    def compose(self) -> str:
        text = f"{self.doing} {self._where()}: {self.problem}."
        return f"{text} {self.advice}" if self.advice else text

    def _where(self) -> str:
        return f"'{self.path.name}'" if self.path else "it"


class SweepLoadError(FetalIqaError):
    """A file that cannot be opened as a sweep."""

    doing = "Cannot open"
    exit_code = 2  # bad input


class ModelLoadError(FetalIqaError):
    """A model, config or weights file that cannot be used."""

    doing = "Cannot load"

    def _where(self) -> str:
        return f"'{self.path.name}'" if self.path else "the model"


class ScoringError(FetalIqaError):
    """The model cannot run as asked (no such device here) or gives no usable output (NaN)."""

    doing = "Cannot score"

    def _where(self) -> str:
        return f"with '{self.path.name}'" if self.path else "with this model"


class EngineChoiceError(ScoringError):
    """A device or precision this computer cannot run (no CUDA, no bf16 on this GPU): a usage error."""

    exit_code = 2  # as argparse's for a choice it refuses


class WriteError(FetalIqaError):
    """A file that could not be written (full disk, read-only folder, a name already taken)."""

    doing = "Could not write"

    def _where(self) -> str:  # the whole path: the user has to find the folder
        return f"'{self.path}'" if self.path else "the file"


class NotEnoughSpace(WriteError):
    """Checked before a long write (the demo sweep, training data), not discovered half way."""


class ExportRefused(FetalIqaError):
    """An export that makes no sense (a padding frame, nothing scored); nothing was written."""

    def __init__(self, problem: str, advice: str = ""):
        super().__init__(None, problem, advice)

    def compose(self) -> str:
        text = f"{self.problem[0].upper()}{self.problem[1:]}; nothing was exported."
        return f"{text} {self.advice}" if self.advice else text
