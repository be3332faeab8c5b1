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


def test_a_port_that_takes_the_connection_and_never_answers_is_said_as_such(tmp_path):
    import socket
    from fetal_iqa_gui.pacs.archive import ArchiveError, echo
    with socket.socket() as silent:  # accepts (the kernel's backlog), never speaks DICOM
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        archive = Archive("127.0.0.1", silent.getsockname()[1], "PACS", timeout_s=1.5)
        with pytest.raises(ArchiveError) as failed:
            echo(archive)
    assert "it took the connection but gave no DICOM answer within 1.5 s" in str(failed.value)


def test_an_archive_that_never_answers_a_store_is_said_and_the_file_stays_queued(tmp_path, monkeypatch):
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from fetal_iqa_gui.pacs import archive as archives
    from fetal_iqa_gui.pacs.send import GAVE_UP
    monkeypatch.setattr(archives, "RESPONSE_TIMEOUT_S", 1.0)
    hung = threading.Event()
    server_ae = AE(ae_title="HUNG")
    for context in AllStoragePresentationContexts:
        server_ae.add_supported_context(context.abstract_syntax)

    def never_answer(event):
        hung.wait(10)  # the archive's disk hangs
        return 0xA700

    server = server_ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, never_answer)])
    try:
        outbox = Outbox(tmp_path / "outbox")
        archive = Archive("127.0.0.1", server.server_address[1], "HUNG", timeout_s=5)
        queue_files([write_us_dicom(tmp_path / "sweep.dcm", np.zeros((2, 16, 16), np.uint8))], archive, outbox)
        steps = list(send_queued(outbox, retry_delays=()))
    finally:
        hung.set()
        server.shutdown()
    assert steps[-1].outcome == GAVE_UP
    assert "the archive did not answer within 1 s; it may be overloaded or hung" in steps[-1].message
    assert len(outbox.entries()) == 1


@pytest.mark.parametrize("make", ["fifo", "folder"])
def test_a_ca_file_that_is_a_pipe_or_a_folder_is_said_without_blocking(tmp_path, make):
    """OpenSSL opens the CA file and reads it: a pipe there would block the send (the window's too) forever."""
    import os

    from fetal_iqa_gui.pacs.archive import ArchiveError
    ca = tmp_path / "ca.pem"
    os.mkfifo(ca) if make == "fifo" else ca.mkdir()
    archive = Archive("127.0.0.1", 4242, "PACS", tls=True, tls_ca=str(ca))
    said = []

    def tls_args():
        with pytest.raises(ArchiveError) as error:
            archive.tls_args()
        said.append(str(error.value))
    thread = threading.Thread(target=tls_args, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # what the fix prevents: free the blocked open before failing
        os.close(os.open(ca, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the CA file blocked the send")
    [message] = said
    kind = "a pipe (FIFO)" if make == "fifo" else "a folder"
    assert f"the CA file '{ca}' cannot be used (it is not a regular file (it is {kind}" in message, message


def test_an_outbox_on_a_full_disk_says_which_file_and_what_was_not_queued(tmp_path, monkeypatch):
    """The outbox on another disk (a copy, not a link) that fills up: the error named the outbox's own hashed
    file, not the sweep, nor that the files after it were not queued either."""
    import errno
    import os

    from fetal_iqa_gui.base.errors import WriteError
    sweeps = [write_us_dicom(tmp_path / f"sweep{n}.dcm", np.full((2, 16, 16), n, np.uint8)) for n in range(3)]
    outbox = Outbox(tmp_path / "outbox")
    queue_files(sweeps[:1], Archive("127.0.0.1", 4242, "PACS"), outbox)

    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "link", cross_device)
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(WriteError) as error:
        queue_files(sweeps[1:], Archive("127.0.0.1", 4242, "PACS"), outbox)
    message = str(error.value)
    assert "'sweep1.dcm' could not be queued (the disk is full); it and the 1 file after it are not sent" in message
    assert message.endswith("Free some space or choose another folder.") and len(outbox.entries()) == 1
