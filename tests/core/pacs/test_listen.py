"""`fetal-iqa listen` as the scanner sees it (DCMTK's storescu sends): a study sent appears in the
worklist folder whole and opens as a case; half a study never shows; strangers are refused."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

import fetal_iqa_gui
from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.cli import EXIT_TERMINATED, main
from fetal_iqa_gui.pacs.listen import INCOMING, RECEIVED, REFUSED, listen
from fetal_iqa_gui.runs.worklist import Worklist
from tests.support import write_us_dicom

from .servers import free_port, needs_dcmtk

REPO = Path(fetal_iqa_gui.__file__).parents[1]
SCANNER = "SCANNER"


def study(folder, sweeps=2, frames=8, study_uid=None):
    """A scanner's study: `sweeps` multi-frame sweeps (a series each) of one patient and one study."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    return [write_us_dicom(folder / f"sweep{number}.dcm",
                           np.random.default_rng(number).integers(1, 255, (frames, 48, 64), dtype=np.uint8),
                           PatientID="PAT-7", StudyInstanceUID=study_uid, SeriesNumber=number)
            for number in range(1, sweeps + 1)]


def storescu(port, files, calling=SCANNER, called="FETALIQA"):
    return subprocess.run(["storescu", "-aet", calling, "-aec", called, "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=60)


class Running:
    def __init__(self, into, quiet_s):
        self.into, self.port, self.events, self.stop = into, free_port(), queue.Queue(), threading.Event()
        receiving = listen(into, self.port, (SCANNER,), host="127.0.0.1", quiet_s=quiet_s, stop=self.stop)
        self.thread = threading.Thread(target=lambda: [self.events.put(event) for event in receiving], daemon=True)
        self.thread.start()
        assert "listening as FETALIQA" in self.next().message

    def next(self, timeout=20):
        return self.events.get(timeout=timeout)


@pytest.fixture
def receiver(tmp_path):
    running = Running(tmp_path / "worklist", quiet_s=0.5)
    yield running
    running.stop.set()
    running.thread.join(10)


@needs_dcmtk
def test_a_study_sent_by_the_scanner_appears_whole_and_opens_as_cases(receiver, tmp_path):
    sent = study(tmp_path / "scanner")
    done = storescu(receiver.port, sent)
    assert done.returncode == 0, done.stderr
    event = receiver.next()
    assert event.kind == RECEIVED and "from SCANNER: 2 instances, 2 series" in event.message

    cases = Worklist(receiver.into).cases
    assert [case.path for case in cases] == sorted(event.folders)
    for case, original in zip(cases, sent):
        loaded = load_case(case.path)
        assert loaded.n_frames == 8 and loaded.study.patient_id == "PAT-7"
        assert np.array_equal(loaded.frames, pydicom.dcmread(original).pixel_array)
    assert "PAT-7" not in " ".join(case.path.name for case in cases)  # folder names name no patient
    assert not list((receiver.into / INCOMING).iterdir())


@needs_dcmtk
def test_a_caller_not_allowed_is_refused_at_association(receiver, tmp_path):
    sent = study(tmp_path / "scanner", sweeps=1)
    for calling, called in (("INTRUDER", "FETALIQA"), (SCANNER, "SOMEONEELSE")):
        done = storescu(receiver.port, sent, calling, called)
        assert done.returncode != 0 and "Association Rejected" in done.stderr
        event = receiver.next()
        assert event.kind == REFUSED and f"'{calling}'" in event.message
    assert Worklist(receiver.into).cases == [] and not any((receiver.into / INCOMING).iterdir())


def test_half_a_study_never_shows_as_a_case_until_its_sender_is_quiet(receiver, tmp_path):
    """An association broken off (the scanner unplugged) leaves what came in the hidden folder; it
    becomes a case only after the quiet period, not while more may follow."""
    from pynetdicom import AE
    first, _ = study(tmp_path / "scanner")
    scanner = AE(ae_title=SCANNER)
    scanner.add_requested_context(pydicom.dcmread(first).SOPClassUID)
    association = scanner.associate("127.0.0.1", receiver.port, ae_title="FETALIQA")
    assert association.is_established
    assert association.send_c_store(first).Status == 0
    assert Worklist(receiver.into).cases == []  # received, not complete: the association is still open
    association.abort()
    time.sleep(0.1)
    assert Worklist(receiver.into).cases == []  # broken off: more of the study may come
    event = receiver.next()
    assert event.kind == RECEIVED and len(Worklist(receiver.into).cases) == 1


@needs_dcmtk
@pytest.mark.timeout(120)
def test_the_command_receives_a_sweep_until_sigterm_and_it_is_scored(tmp_path, capsys):
    into, port = tmp_path / "worklist", free_port()
    process = subprocess.Popen([sys.executable, "-m", "fetal_iqa_gui.cli", "listen", "--port", str(port),
                                "--into", str(into), "--allow-ae", SCANNER, "--bind", "127.0.0.1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert "listening as FETALIQA" in process.stderr.readline()
        assert storescu(port, study(tmp_path / "scanner", sweeps=1, frames=12)).returncode == 0
        assert "received from SCANNER: 1 instance, 1 series" in process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == EXIT_TERMINATED and "Terminated." in err and "Traceback" not in err, err

    [case] = Worklist(into).cases
    scores = tmp_path / "scores.csv"
    assert main(["score", str(case.path), "--model", "demo", "--device", "cpu", "--no-cache", "--out", str(scores)]) == 0
    assert len(scores.read_text().splitlines()) == 1 + 12  # a header and a score per frame
