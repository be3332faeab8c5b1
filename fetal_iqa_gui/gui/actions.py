"""Every command of the window, declared once: the menus, the keyboard shortcuts, the help dialog
and the tests are all built from this table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str  # the MainWindow method, or a dotted path from the window (`calipers.accept`)
    text: str
    menu: str | None  # None: keyboard only
    keys: tuple[str, ...] = ()
    needs_case: bool = False  # disabled while no sweep is open
    needs_scores: bool = False  # disabled until the model has scored something

    @property
    def description(self) -> str:
        return self.text.rstrip("…")


SEPARATOR = "-"
RECENT_MENU = "recent"  # where the File menu holds Open Recent
SPEED_MENU = "speed"  # where the View menu holds the cine speeds
CINE_SPEEDS = (5, 12, 25, 50)  # frames per second
DEFAULT_CINE_SPEED = 12

ACTIONS: tuple[Action | str, ...] = (
    Action("open_dialog", "Open…", "File", ("Ctrl+O",)),
    Action("open_folder_dialog", "Open DICOM folder…", "File", ("Ctrl+Shift+O",)),
    Action("worklist.open_folder", "Open folder of cases (worklist)…", "File", ("Ctrl+L",)),
    Action("open_live", "Live source…", "File"),
    RECENT_MENU,
    Action("open_demo", "Open the demo sweep", "File"),
    Action("open_demo_segmented", "Open the demo sweep with the demo segmentation model", "File"),
    SEPARATOR,
    Action("quick_export", "Export current frame to the export folder", "File", ("Ctrl+E",), needs_scores=True),
    Action("exporter.export_current", "Export current frame to…", "File", ("Ctrl+Shift+E",), needs_scores=True),
    Action("exporter.export_best", "Export best frame of each sweep…", "File", needs_scores=True),
    Action("exporter.export_good", "Export all good frames…", "File", needs_scores=True),
    Action("exporter.export_csv", "Export scores as CSV…", "File", needs_scores=True),
    SEPARATOR,
    Action("exporter.export_report", "Export case report…", "File", ("Ctrl+P",), needs_scores=True),
    Action("exporter.export_dicom", "Export to DICOM…", "File", needs_scores=True),
    Action("pacs.send_case", "Send to PACS…", "File", needs_scores=True),
    Action("pacs.send_queued", "Send queued files to PACS", "File"),
    SEPARATOR,
    Action("open_settings", "Settings…", "File", ("Ctrl+,",)),
    Action("close", "Quit", "File", ("Ctrl+Q",)),
    Action("calipers.undo", "Undo the last measurement change", "Edit", ("Ctrl+Z",), needs_case=True),
    Action("calipers.redo", "Redo the measurement change undone", "Edit", ("Ctrl+Shift+Z", "Ctrl+Y"), needs_case=True),
    Action("edit_patient", "Patient details…", "Edit", needs_case=True),
    Action("fit_view", "Fit to window", "View", ("F",), needs_case=True),
    Action("reset_levels", "Reset window/level", "View", ("R",), needs_case=True),
    Action("toggle_mask", "Show/hide mask outline", "View", ("M",), needs_case=True),
    Action("toggle_heat_map", "Show/hide heat map (what the model used for its score)", "View", ("H",),
           needs_case=True),
    SPEED_MENU,
    Action("step_forward", "Next frame", "Go", ("Right",), needs_case=True),
    Action("step_back", "Previous frame", "Go", ("Left",), needs_case=True),
    Action("jump_forward", "Ten frames forward", "Go", ("PgDown",), needs_case=True),
    Action("jump_back", "Ten frames back", "Go", ("PgUp",), needs_case=True),
    Action("first_frame", "First image frame", "Go", ("Home",), needs_case=True),
    Action("last_frame", "Last image frame", "Go", ("End",), needs_case=True),
    Action("next_sweep", "Next sweep", "Go", ("]",), needs_case=True),
    Action("previous_sweep", "Previous sweep", "Go", ("[",), needs_case=True),
    SEPARATOR,
    Action("next_good", "Next good frame", "Go", ("N",), needs_scores=True),
    Action("previous_good", "Previous good frame", "Go", ("P",), needs_scores=True),
    Action("best_frame", "Best frame", "Go", ("B",), needs_scores=True),
    SEPARATOR,
    Action("worklist.next_case", "Next case of the worklist", "Go", ("Ctrl+PgDown",)),
    Action("worklist.previous_case", "Previous case of the worklist", "Go", ("Ctrl+PgUp",)),
    Action("worklist.mark_reviewed", "Mark the case reviewed", "Go", ("Ctrl+M",), needs_scores=True),
    SEPARATOR,
    Action("toggle_play", "Play / pause cine (loops)", "Go", ("Space",), needs_case=True),
    Action("escape", "Cancel the caliper being placed or edited; else stop scoring (the scores so far stay)", "Go",
           ("Esc",)),
    Action("calipers.start_ellipse", "Ellipse caliper (AC): then drag across the abdomen", "Measure", ("C",),
           needs_case=True),
    Action("calipers.start_distance", "Distance caliper: then drag from point to point", "Measure", ("D",),
           needs_case=True),
    Action("calipers.accept", "Keep the caliper placed with the frame", "Measure", ("A",), needs_case=True),
    Action("calipers.edit_selected", "Edit the selected measurement", "Measure", ("E",), needs_case=True),
    Action("calipers.delete_selected", "Delete the selected measurement", "Measure", ("Delete", "Backspace"),
           needs_case=True),
    Action("calipers.delete_all", "Delete all the frame's measurements", "Measure", needs_case=True),
    Action("set_pixel_spacing", "Set pixel spacing…", "Measure", needs_case=True),
    Action("show_shortcuts", "Keyboard shortcuts", "Help", ("F1",)),
    Action("show_about", "About fetal-iqa", "Help"),
)

SHORTCUTS = tuple(a for a in ACTIONS if isinstance(a, Action) and a.keys)
MENUS = ("File", "Edit", "View", "Go", "Measure", "Help")
UNDO, REDO = "calipers.undo", "calipers.redo"  # enabled only when there is a change to undo or redo
