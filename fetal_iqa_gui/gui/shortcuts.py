"""Keyboard shortcuts, declared once: the main window binds them, the help dialog lists them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    keys: tuple[str, ...]
    action: str  # the name of a MainWindow method
    description: str


SHORTCUTS = (
    Shortcut(("Right",), "step_forward", "Next frame"),
    Shortcut(("Left",), "step_back", "Previous frame"),
    Shortcut(("PgDown",), "jump_forward", "Ten frames forward"),
    Shortcut(("PgUp",), "jump_back", "Ten frames back"),
    Shortcut(("Home",), "first_frame", "First frame"),
    Shortcut(("End",), "last_frame", "Last frame"),
    Shortcut(("N",), "next_good", "Next good frame"),
    Shortcut(("P",), "previous_good", "Previous good frame"),
    Shortcut(("B",), "best_frame", "Best frame"),
    Shortcut(("Space",), "toggle_play", "Play / pause cine (loops)"),
    Shortcut(("Esc",), "cancel_scoring", "Stop scoring (the scores so far stay)"),
    Shortcut(("Ctrl+O",), "open_dialog", "Open a sweep"),
    Shortcut(("Ctrl+E",), "export_current", "Export the current frame"),
    Shortcut(("F",), "fit_view", "Fit the image to the window"),
    Shortcut(("M",), "toggle_mask", "Show / hide the mask outline (SEG models)"),
)
