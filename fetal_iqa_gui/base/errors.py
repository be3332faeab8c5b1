"""Errors the user can act on: which file, what is wrong with it, what to do.

The GUI shows them in an alert and the CLI prints them as one `error:` line, each in one place
(`FetalIqaError` is what both catch); anything else reaching those places is a bug and is logged
in full. Subclasses say what was being done with the file: opened, loaded or written.

Advice names the user's choice to change with `choice(name)` ("Give {config}..."), never a
front door's word for it: each front door says how it names its choices (`name_choices`), the
CLI as `--config`, the window as `Settings > Model config`.
"""

from __future__ import annotations

import os
from pathlib import Path

# how the running front door names the user's choices; without one, in plain words
_CHOICE_WORDS: dict[str, str] = {}
PLAIN_WORDS = {"weights": "the FetalCLIP weights", "config": "the model config", "adapter": "the adapter",
               "model": "the model", "threshold": "the threshold", "force": "replacing outputs",
               "blank_outside_image": "blanking outside the image"}


def choice(name: str) -> str:
    """A placeholder for the user's choice `name` in an error's advice."""
    return "{" + name + "}"


def name_choices(words: dict[str, str]) -> None:
    """The front door's words for the choices (`{"config": "--config", ...}`), used from now on."""
    _CHOICE_WORDS.clear()
    _CHOICE_WORDS.update(words)


class _Words(dict):
    def __missing__(self, name: str) -> str:
        return _CHOICE_WORDS.get(name) or PLAIN_WORDS.get(name) or f"the {name.replace('_', ' ')}"


class FetalIqaError(Exception):
    """A problem with a file or a choice of the user's; the message is written for the user."""

    doing = "Cannot use"
    exit_code = 1  # the CLI's exit status when this stops a command

    def __init__(self, path: str | os.PathLike | None, problem: str, advice: str = ""):
        self.path = Path(path) if path else None
        self.problem = problem
        self.advice = advice
        super().__init__(problem)

    def __str__(self) -> str:
        return self.compose()

    @property
    def advice_said(self) -> str:
        """The advice, each choice named as the front door names it."""
        try:
            return self.advice.format_map(_Words())
        except (ValueError, IndexError):  # braces of some other kind: said as written
            return self.advice

    def compose(self) -> str:
        text = f"{self.doing} {self._where()}: {self.problem}."
        return f"{text} {self.advice_said}" if self.advice else text

    def _where(self) -> str:
        return f"'{self.path.name}'" if self.path else "it"


class CaseLoadError(FetalIqaError):
    """A file that cannot be opened as a case."""

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


class NameTaken(WriteError):
    """The file exists and was not overwritten: the folder itself is fine."""


class NotEnoughSpace(WriteError):
    """Checked before a long write (the demo sweep, training data), not discovered half way."""


class ExportRefused(FetalIqaError):
    """An export that makes no sense (a padding frame, nothing scored); nothing was written."""

    def __init__(self, problem: str, advice: str = ""):
        super().__init__(None, problem, advice)

    def compose(self) -> str:
        text = f"{self.problem[0].upper()}{self.problem[1:]}; nothing was exported."
        return f"{text} {self.advice_said}" if self.advice else text
