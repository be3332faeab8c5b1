"""Settings, persisted with QSettings: plain values under versioned keys."""

from __future__ import annotations

from dataclasses import dataclass, fields

from PySide6.QtCore import QByteArray, QSettings

from ..runtime import BACKENDS, DEVICES, PRECISIONS

VERSION = "v1"
MAX_RECENT = 8


@dataclass
class AppSettings:
    weights: str = ""
    config: str = ""
    adapter: str = ""
    demo_task: str = "classification"  # used when no adapter is set
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 0  # 0: the engine's default
    threshold: float = 0.0  # 0: the model's own threshold
    export_dir: str = ""
    export_overlay: bool = False
    sidecar_name_only: bool = False  # sidecars name the sweep file without its folders
    backend: str = "auto"  # torch, or a compiled CPU runtime (the [cpu] extra)
    calibration: str = ""  # a sweep file OpenVINO's int8 is calibrated on; "": the first sweep scored


CHOICES = {"device": DEVICES, "precision": PRECISIONS, "backend": BACKENDS}


def _store() -> QSettings:
    return QSettings("fetal-iqa", "fetal-iqa")


def settings_file() -> str:
    """Where the settings are kept (a file; on Windows, a registry key)."""
    return _store().fileName()


def load_settings() -> AppSettings:
    store = _store()
    values = {}
    for field in fields(AppSettings):
        raw = store.value(f"{VERSION}/{field.name}")
        if raw is None:
            continue
        try:
            values[field.name] = (raw in (True, "true", "1")) if field.type == "bool" else type(field.default)(raw)
        except (TypeError, ValueError):
            continue  # a damaged value falls back to the default
        if values[field.name] not in CHOICES.get(field.name, (values[field.name],)):
            del values[field.name]  # a choice this version does not have: the default
    return AppSettings(**values)


def save_settings(settings: AppSettings) -> None:
    store = _store()
    for field in fields(AppSettings):
        store.setValue(f"{VERSION}/{field.name}", getattr(settings, field.name))


def recent_files() -> list[str]:
    value = _store().value(f"{VERSION}/recent", [])
    return [value] if isinstance(value, str) else list(value or [])


def add_recent_file(path: str) -> list[str]:
    files = [path] + [p for p in recent_files() if p != path]
    _store().setValue(f"{VERSION}/recent", files[:MAX_RECENT])
    return files[:MAX_RECENT]


def window_geometry() -> QByteArray | None:
    value = _store().value(f"{VERSION}/geometry")
    return value if isinstance(value, QByteArray) else None


def save_window_geometry(geometry: QByteArray) -> None:
    _store().setValue(f"{VERSION}/geometry", geometry)
