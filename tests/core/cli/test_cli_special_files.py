"""Special files and hostile text (issue 29): a pipe or a device where one of our files should be is
neither read nor replaced; text from file names reaches spreadsheets and terminals defused; a
closed pipe on standard output ends a command quietly."""

import csv
import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import fetal_iqa_gui
from fetal_iqa_gui.base.text import spreadsheet_cell
from fetal_iqa_gui.case import synthetic
from fetal_iqa_gui.cli import main
from fetal_iqa_gui.runs.batch import DONE_DIR, SUMMARY_CSV, read_marker

REPO = Path(fetal_iqa_gui.__file__).parents[1]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One small synthetic case (24 frames)."""
    folder = tmp_path_factory.mktemp("sweeps")
    synthetic.write_dataset(folder, cases=1, seed=5, frames_per_sweep=4)
    return next((folder / synthetic.IMAGES_DIR).glob("*.mha"))


def score(capsys, model, *args):
    code = main(["score", *map(str, args), "--adapter", str(model), "--device", "cpu", "--no-cache"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def finishes(call, seconds=20):
    """`call()`'s result, failing the test (instead of hanging it) when it blocks."""
    result = []
    worker = threading.Thread(target=lambda: result.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "blocked"
    return result[0]


# -- special files: never read, never replaced ---------------------------------------------

def test_force_does_not_replace_a_pipe_or_a_link_to_a_device(sweep, tiny_cls_path, tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "null.csv").symlink_to(os.devnull)
    for target, kind in (("pipe.csv", "a pipe (FIFO)"), ("null.csv", "a symbolic link")):
        code, out, err = score(capsys, tiny_cls_path, sweep, "--out", tmp_path / target, "--force")
        assert code == 2 and out == ""
        assert f"error: Will not write '{tmp_path / target}': it is not a regular file (it is {kind}" in err
    assert (tmp_path / "pipe.csv").is_fifo() and os.readlink(tmp_path / "null.csv") == os.devnull


def test_a_pipe_in_place_of_the_summary_or_a_marker_is_refused_before_scoring(sweep, tiny_cls_path, tmp_path, capsys):
    out_dir = tmp_path / "out"
    (out_dir / DONE_DIR).mkdir(parents=True)
    os.mkfifo(out_dir / SUMMARY_CSV)
    code, _, err = score(capsys, tiny_cls_path, sweep, "--out-dir", out_dir, "--force")
    assert code == 2 and "summary.csv': it is not a regular file (it is a pipe (FIFO)" in err
    (out_dir / SUMMARY_CSV).unlink()
    os.mkfifo(out_dir / DONE_DIR / f"{sweep.stem}.json")
    code, _, err = finishes(lambda: score(capsys, tiny_cls_path, sweep, "--out-dir", out_dir))
    assert code == 2 and f"{sweep.stem}.json': it is not a regular file (it is a pipe (FIFO)" in err
    assert sorted(os.listdir(out_dir)) == [DONE_DIR]  # nothing scored, nothing written


@pytest.mark.parametrize("kind", ["file", "pipe"])
def test_an_output_folder_that_is_a_file_or_a_pipe_is_said_before_scoring(sweep, tiny_cls_path, tmp_path, capsys,
                                                                           kind):
    taken = tmp_path / "taken"
    taken.write_text("mine") if kind == "file" else os.mkfifo(taken)
    for option in ("--out-dir", "--challenge-output"):
        extra = ["--out", tmp_path / "scores.csv"] if option == "--challenge-output" else []
        code, out, err = score(capsys, tiny_cls_path, sweep, option, taken, *extra)
        assert code == 1 and out == "" and err.startswith(f"error: Could not write '{taken}'"), err
    assert (taken.read_text() == "mine") if kind == "file" else taken.is_fifo()


def test_a_pipe_as_a_marker_reads_as_no_marker_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "case.json")
    assert finishes(lambda: read_marker(tmp_path / "case.json")) is None


def test_out_dash_writes_the_scores_csv_to_standard_output(sweep, tiny_cls_path, capsys):
    code, out, err = score(capsys, tiny_cls_path, sweep, "--out", "-")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["frame", "sweep", "padding", "score", "good"] and len(rows) == 25
    assert f"{sweep.name}: best sweep 1" in err and not Path("-").exists()


# -- text from files: defused for spreadsheets and terminals ---------------------------------

def test_a_sweep_named_as_a_formula_is_text_in_the_summary(sweep, tiny_cls_path, tmp_path, capsys):
    hostile = tmp_path / '=HYPERLINK("evil.example","click").mha'
    shutil.copy(sweep, hostile)
    code, _, _ = score(capsys, tiny_cls_path, hostile, "--out-dir", tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / SUMMARY_CSV).open()))
    assert code == 0 and rows[0]["file"] == "'" + hostile.name
    assert float(rows[0]["score"]) >= 0 and rows[0]["best_frame"].isdigit()  # numbers stay numbers


def test_control_characters_in_a_name_are_escaped_on_the_terminal(sweep, tmp_path, capsys):
    named = tmp_path / "\x1b[2J\x1b[31mred\rfake.mha"
    shutil.copy(sweep, named)
    missing = tmp_path / "gone\x1b]0;title\x07.mha"
    assert main(["info", str(named), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\r" not in out + err and "\x07" not in err
    assert "\\x1b[2J\\x1b[31mred\\rfake.mha" in out
    assert err.startswith("error: Cannot open 'gone\\x1b]0;title\\x07.mha'") and err.count("\n") == 1


def test_control_characters_in_a_name_are_escaped_in_warnings_too(tmp_path):
    """A warning names its file as an error does (here: a folder of two DICOM series, the first opened)."""
    import numpy as np
    import pydicom
    from tests.support import write_dicom_series
    folder = write_dicom_series(tmp_path / "two\x1b[2J\x1b]0;title\x07", np.full((3, 16, 16), 9, np.uint8))
    other = pydicom.dcmread(folder / "slice000.dcm")
    other.SeriesInstanceUID = pydicom.uid.generate_uid()
    other.save_as(folder / "other.dcm")
    result = subprocess.run([sys.executable, "-m", "fetal_iqa_gui.cli", "info", str(folder)], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0 and "\x1b" not in result.stdout + result.stderr
    assert "two\\x1b[2J\\x1b]0;title\\x07 holds 2 DICOM series; opening the first" in result.stderr


def test_an_undecodable_name_is_one_error_line_not_an_abort(sweep, tmp_path, capsys):
    named = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.mha"))  # ITK aborted the process on it
    shutil.copy(sweep, named)
    assert main(["info", str(named)]) == 2
    assert capsys.readouterr().err == ("error: Cannot open 'caf\\xe9.mha': its name is not valid text (UTF-8), which "
                                       "the image readers cannot open. Rename the file (or its folder) with plain letters.\n")


@pytest.mark.parametrize("cell,written", [("=1+2", "'=1+2"), ("@SUM(A1)", "'@SUM(A1)"), ("+cmd", "'+cmd"),
                                          ("-2+3", "'-2+3"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("-1", "-1"),
                                          ("-0.5", "-0.5"), ("1e-3", "1e-3"), ("plain", "plain"), (-1, -1)])
def test_spreadsheet_cells_that_would_be_formulas_are_text_and_numbers_stay_numbers(cell, written):
    assert spreadsheet_cell(cell) == written


# -- a closed pipe ends quietly ------------------------------------------------------------------

@pytest.mark.parametrize("command", [["info", "{sweep}", "{sweep}"], ["--help"], ["info", "--help"]])
def test_a_reader_that_stops_reading_ends_the_command_quietly(sweep, command):
    """`fetal-iqa info ... | head -1`: the reader here closes the pipe before anything is written."""
    args = [part.format(sweep=sweep) for part in command]
    process = subprocess.Popen([sys.executable, "-m", "fetal_iqa_gui.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode in (0, 141) and err == b""
