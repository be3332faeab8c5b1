"""The outbox against damage and tampering (#29): a queued copy that went bad, or a link placed
where a copy was, is said and kept queued; it never stops the rest of the queue, never a traceback."""

import threading

import numpy as np
import pytest

from fetal_iqa_gui.pacs.archive import Archive
from fetal_iqa_gui.pacs.listen import LISTENING, listen
from fetal_iqa_gui.pacs.outbox import Outbox
from fetal_iqa_gui.pacs.send import FAILED, SENT, queue_files, send_queued
from tests.support import write_us_dicom

from .servers import free_port


@pytest.fixture
def archive(tmp_path):
    """Our own receiver, as the archive the outbox sends to."""
    port, stop = free_port(), threading.Event()
    events = listen(tmp_path / "archive", port, ("FETALIQA",), host="127.0.0.1", quiet_s=0.2, stop=stop)
    assert next(events).kind == LISTENING
    thread = threading.Thread(target=lambda: list(events), daemon=True)
    thread.start()
    yield Archive("127.0.0.1", port, "FETALIQA", timeout_s=5)
    stop.set()
    thread.join(10)


def test_a_damaged_or_linked_queued_copy_is_said_kept_and_the_rest_is_sent(tmp_path, archive):
    outbox = Outbox(tmp_path / "outbox")
    sweeps = [write_us_dicom(tmp_path / f"sweep{n}.dcm", np.full((2, 16, 16), n, np.uint8)) for n in range(3)]
    damaged, linked, whole = queue_files(sweeps, archive, outbox).entries
    damaged.file.unlink()
    damaged.file.write_bytes(b"not DICOM any more" * 10)  # a disk error, a hand edit
    linked.file.unlink()
    linked.file.symlink_to(write_us_dicom(tmp_path / "other.dcm", np.zeros((2, 16, 16), np.uint8)))  # not ours

    steps = list(send_queued(outbox, retry_delays=()))
    outcome = {step.entry.key: step for step in steps}
    assert outcome[whole.key].outcome == SENT
    assert outcome[damaged.key].outcome == FAILED and "not a DICOM file" in outcome[damaged.key].message
    assert outcome[linked.key].outcome == FAILED and "symbolic link" in outcome[linked.key].message
    assert sorted(entry.key for entry in outbox.entries()) == sorted([damaged.key, linked.key])  # kept, said
