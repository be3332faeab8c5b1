"""Settings, persisted with QSettings: plain values under versioned keys.

The engine's settings are not listed here: `AppSettings` takes one field per engine setting that
the window offers, made from their declaration (`engine/choice.py`), stored as a plain value
("" or 0 for "automatic")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QByteArray, QSettings

from ..engine.choice import EngineSettings, declared_settings
from ..model.task import TASKS

VERSION = "v1"
MAX_RECENT = 8
MODEL_FIELDS = ("weights", "config", "adapter", "demo_task")  # which model scores: a change rescores


@dataclass
class _WindowSettings:
    weights: str = ""
    config: str = ""
    adapter: str = ""  # "": the first adapter in the user model folder, else the demo model
    demo_task: str = "classification"  # the demo model used when there is no adapter
    # the default threshold of each kind of model (0: the model's own): a CLS model's probability
    # and a SEG model's share of the frame are different quantities
    threshold_classification: float = 0.0
    threshold_segmentation: float = 0.0
    export_dir: str = ""
    export_overlay: bool = False
    export_heat_maps: bool = False  # exports and reports add each frame's heat map (a CLS model's)
    sidecar_name_only: bool = False  # sidecars name the sweep file without its folders
    blank_outside_image: bool = False  # exported frames and reports are 0 outside the image (burned-in text)
    deidentified_view: bool = False  # the window shows no patient name, ID or birth date (a display setting)
    # the archive (PACS) that File > Send to PACS stores in; no host or called AE title: none set
    pacs_host: str = ""
    pacs_port: int = 104
    pacs_called_ae: str = ""
    pacs_calling_ae: str = "FETALIQA"
    pacs_tls: bool = False
    pacs_tls_ca: str = ""  # the CA certificate (PEM) that signed the archive's; "": the system's
    # receiving from the scanner while the window is open (`fetal-iqa listen` in the window): off unless set
    receive_on: bool = False
    receive_folder: str = ""  # where received series become cases (the worklist opens it)
    receive_port: int = 11112
    receive_ae_title: str = "FETALIQA"
    receive_allowed: str = ""  # the scanners' calling AE titles, separated by commas or spaces

    def engine(self, threads: int | None = None) -> EngineSettings:
        """The engine settings these choose (`threads`: the window's own default)."""
        values: dict[str, Any] = {name: getattr(self, name) or None for name, setting in WINDOW_ENGINE_SETTINGS}
        return EngineSettings(threads=threads, **values)

    def default_threshold(self, task: str) -> float | None:
        """The user's default threshold for this kind of model; None: the model's own."""
        return getattr(self, f"threshold_{task}", 0.0) or None

    def archive(self):
        """The archive these settings name (a `pacs.archive.Archive`), or None when they name none or
        a bad one (an AE title DICOM does not allow)."""
        from ..pacs.archive import Archive
        if not (self.pacs_host.strip() and self.pacs_called_ae.strip()):
            return None
        try:
            return Archive(self.pacs_host.strip(), self.pacs_port, self.pacs_called_ae.strip(),
                           self.pacs_calling_ae.strip() or "FETALIQA", self.pacs_tls, self.pacs_tls_ca.strip())
        except ValueError:
            return None

    def receiving(self) -> tuple | None:
        """(folder, port, allowed AE titles, our AE title) when receiving is on and set up, else None."""
        allowed = ae_titles(self.receive_allowed)
        if not (self.receive_on and self.receive_folder.strip() and allowed):
            return None
        return Path(self.receive_folder.strip()), self.receive_port, allowed, self.receive_ae_title.strip() or "FETALIQA"

    def model_choice(self) -> tuple:
        return tuple(getattr(self, name) for name in MODEL_FIELDS)


WINDOW_ENGINE_SETTINGS = [(name, setting) for name, setting in declared_settings() if setting.in_window]


def _stored_field(name: str, setting) -> tuple:
    default = getattr(EngineSettings(), name)
    if setting.bounds:
        return name, int, field(default=default or 0)
    return name, str, field(default=default or "")


if TYPE_CHECKING:
    class AppSettings(_WindowSettings):
        # what mypy sees of the class made below: its engine fields are read by name (getattr)
        def __init__(self, **values: Any) -> None: ...
else:
    AppSettings = make_dataclass("AppSettings", [_stored_field(name, s) for name, s in WINDOW_ENGINE_SETTINGS],
                                 bases=(_WindowSettings,))
AppSettings.__doc__ = "What the user chose in the window, as plain values."
CHOICES = {name: setting.choices for name, setting in WINDOW_ENGINE_SETTINGS if setting.choices}
assert {f"threshold_{task}" for task in TASKS} <= {f.name for f in fields(AppSettings)}


def ae_titles(text: str) -> tuple[str, ...]:
    """The AE titles of a list typed with commas or spaces between them."""
    return tuple(text.replace(",", " ").split())


def settings_store() -> QSettings:
    """The window's settings file (its keys under VERSION)."""
    return QSettings("fetal-iqa", "fetal-iqa")


def settings_file() -> str:
    """Where the settings are kept (a file; on Windows, a registry key)."""
    return settings_store().fileName()


def load_settings() -> AppSettings:
    store = settings_store()
    if store.value(f"{VERSION}/threshold_classification") is None and store.value(f"{VERSION}/threshold") is not None:
        store.setValue(f"{VERSION}/threshold_classification", store.value(f"{VERSION}/threshold"))  # one threshold once
    values: dict[str, Any] = {}
    for field_ in fields(AppSettings):
        raw = store.value(f"{VERSION}/{field_.name}")
        if raw is None:
            continue
        kind: type = type(field_.default)
        try:
            values[field_.name] = (raw in (True, "true", "1")) if kind is bool else kind(raw)
        except (TypeError, ValueError):
            continue  # a damaged value falls back to the default
        if values[field_.name] not in CHOICES.get(field_.name, (values[field_.name],)):
            del values[field_.name]  # a choice this version does not have: the default
    return AppSettings(**values)


def save_settings(settings: AppSettings) -> None:
    store = settings_store()
    for field_ in fields(AppSettings):
        store.setValue(f"{VERSION}/{field_.name}", getattr(settings, field_.name))


def recent_files() -> list[str]:
    value = settings_store().value(f"{VERSION}/recent", [])
    return [value] if isinstance(value, str) else list(cast(Iterable[str], value or []))


def add_recent_file(path: str) -> list[str]:
    files = [path] + [p for p in recent_files() if p != path]
    settings_store().setValue(f"{VERSION}/recent", files[:MAX_RECENT])
    return files[:MAX_RECENT]


def window_geometry() -> QByteArray | None:
    value = settings_store().value(f"{VERSION}/geometry")
    return value if isinstance(value, QByteArray) else None


def save_window_geometry(geometry: QByteArray) -> None:
    settings_store().setValue(f"{VERSION}/geometry", geometry)
