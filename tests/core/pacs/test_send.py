"""`fetal-iqa send` against a real archive (Orthanc): what is sent arrives as it was, an archive that
is not there or refuses us is said clearly, and nothing leaves the outbox until the archive stored it."""

import os
import stat

import numpy as np
import pytest

from fetal_iqa_gui.cli import main
from fetal_iqa_gui.pacs.archive import Archive
from fetal_iqa_gui.pacs.outbox import Outbox
from fetal_iqa_gui.pacs.send import FAILED, GAVE_UP, SENT, WAITING, queue_files, send_queued
from tests.support import write_us_dicom

from .servers import ORTHANC_AE, Orthanc, free_port, needs_orthanc


def sweep(path, frames=6, seed=0, **attributes):
    """A scanner-like multi-frame ultrasound DICOM."""
    pixels = np.random.default_rng(seed).integers(1, 255, (frames, 48, 64), dtype=np.uint8)
    return write_us_dicom(path, pixels, **attributes)


def archive_options(port, called=ORTHANC_AE):
    return ["--host", "127.0.0.1", "--port", str(port), "--called-ae", called]


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    folder = tmp_path / "outbox"
    monkeypatch.setenv("FETAL_IQA_OUTBOX", str(folder))
    return Outbox(folder)


@needs_orthanc
def test_a_sweep_sent_arrives_in_the_archive_with_its_patient_study_and_frames(orthanc, outbox, tmp_path, capsys):
    folder = tmp_path / "export"
    folder.mkdir()
    sent = sweep(folder / "sweep.dcm", frames=7, PatientID="PAT-0042", StudyDescription="Blind sweep")
    (folder / "sweep.json").write_text("{}")  # a sidecar beside it: not DICOM, not sent

    assert main(["send", str(folder), "--echo", *archive_options(orthanc.dicom_port)]) == 0
    out, err = capsys.readouterr()
    assert "answered the C-ECHO" in out and "Sent 1 of 1 file." in out
    assert "1 file in the folders given are not DICOM" in err

    [stored] = orthanc.instances()
    import pydicom
    original = pydicom.dcmread(sent, stop_before_pixels=True)
    assert stored["PatientID"] == "PAT-0042" and stored["StudyInstanceUID"] == original.StudyInstanceUID
    assert stored["NumberOfFrames"] == "7" and stored["SOPInstanceUID"] == original.SOPInstanceUID
    assert outbox.entries() == []  # stored: out of the outbox


@needs_orthanc
def test_an_archive_that_is_not_there_keeps_the_files_queued_and_flush_delivers_them(tmp_path, outbox, capsys):
    server = Orthanc(tmp_path / "orthanc", {"FETALIQA": 1})  # configured, not started yet
    files = [sweep(tmp_path / f"sweep{i}.dcm", seed=i) for i in range(2)]

    status = main(["send", *map(str, files), "--retries", "0", *archive_options(server.dicom_port)])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert f"the connection was refused: nothing listens on port {server.dicom_port}" in err
    assert "2 files stay queued" in err and "fetal-iqa send --flush" in err
    assert len(outbox.entries()) == 2 and all(entry.record["attempts"] == 1 for entry in outbox.entries())

    server.start()
    try:
        assert main(["send", "--flush"]) == 0
        assert "Sent 2 of 2 files." in capsys.readouterr().out
        assert len(server.instances()) == 2 and outbox.entries() == []
    finally:
        server.kill()


@needs_orthanc
def test_an_archive_that_refuses_our_called_ae_title_is_said_and_not_retried(orthanc, outbox, tmp_path, capsys):
    file = sweep(tmp_path / "sweep.dcm")
    assert main(["send", str(file), *archive_options(orthanc.dicom_port, called="NOTORTHANC")]) == 1
    err = capsys.readouterr().err
    assert "it is not called 'NOTORTHANC'" in err and "Set the called AE title" in err
    assert "Trying again" not in err  # a refused title does not come right by waiting
    assert len(outbox.entries()) == 1 and orthanc.instances() == []


@needs_orthanc
def test_the_archive_killed_mid_send_keeps_the_rest_queued_and_a_later_send_finishes(tmp_path, outbox):
    server = Orthanc(tmp_path / "orthanc", {"FETALIQA": 1}).start()
    archive = Archive("127.0.0.1", server.dicom_port, ORTHANC_AE)
    files = [sweep(tmp_path / f"sweep{i}.dcm", frames=20, seed=i) for i in range(4)]
    assert len(queue_files(files, archive, outbox).entries) == 4
    try:
        steps = []
        for step in send_queued(outbox, retry_delays=(0.05, 0.05)):
            steps.append(step)
            if step.outcome == SENT and len(steps) == 1:
                server.kill()  # after the first file stored, before the second
        outcomes = [step.outcome for step in steps]
        assert outcomes == [SENT, WAITING, WAITING, GAVE_UP]
        assert "was lost while sending" in steps[1].message and "connection was refused" in steps[-1].message
        assert steps[-1].left == 3 and len(outbox.entries()) == 3 and steps[-1].done == steps[-1].total == 4

        server.start()  # the same storage: the first file is there already
        assert [step.outcome for step in send_queued(outbox, retry_delays=())] == [SENT] * 3
        stored = {tags["SOPInstanceUID"] for tags in server.instances()}
        import pydicom
        assert stored == {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
        assert outbox.entries() == []
    finally:
        server.kill()


def test_a_file_that_is_not_dicom_is_refused_and_nothing_is_queued(tmp_path, outbox, capsys):
    picture = tmp_path / "frame.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    assert main(["send", str(picture), *archive_options(free_port())]) == 2
    err = capsys.readouterr().err
    assert "Cannot send 'frame.png': it is not a DICOM file" in err and "Traceback" not in err
    assert outbox.entries() == []


def test_the_archive_must_be_named_to_send(tmp_path, outbox, capsys):
    assert main(["send", str(sweep(tmp_path / "a.dcm"))]) == 2
    assert "--host, --port and --called-ae" in capsys.readouterr().err
    assert main(["send", "--flush"]) == 0 and "the outbox is empty" in capsys.readouterr().err


def test_the_outbox_is_private_and_queues_an_instance_once(tmp_path, outbox):
    archive = Archive("127.0.0.1", free_port(), ORTHANC_AE)
    file = sweep(tmp_path / "sweep.dcm")
    queue_files([file], archive, outbox)
    queue_files([file], archive, outbox)  # sent again before the first went: one entry
    [entry] = outbox.entries()
    assert stat.S_IMODE(os.stat(outbox.folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(outbox.folder / f"{entry.key}.json").st_mode) == 0o600
    assert entry.file.read_bytes() == file.read_bytes()
    file.unlink()  # the original gone: the queued instance is still whole
    assert entry.file.read_bytes()[128:132] == b"DICM"


def test_an_archive_refusal_by_status_keeps_the_file_queued_with_the_reason(tmp_path, outbox, monkeypatch):
    """A failure status (here the archive's disk full) is said per file, and the file stays queued."""
    from pydicom.dataset import Dataset

    class Refusing:
        is_established = True

        def send_c_store(self, path):
            status = Dataset()
            status.Status, status.ErrorComment = 0xA700, "disk full"
            return status

        def release(self):
            self.is_established = False

    monkeypatch.setattr("fetal_iqa_gui.pacs.send.associate", lambda archive, contexts: Refusing())
    queue_files([sweep(tmp_path / "sweep.dcm")], Archive("127.0.0.1", 4242, ORTHANC_AE), outbox)
    [step] = list(send_queued(outbox))
    assert step.outcome == FAILED and "status 0xA700, out of resources" in step.message and "disk full" in step.message
    [entry] = outbox.entries()
    assert entry.record["last_error"] == step.message


def test_the_queue_is_listed_and_an_entry_refused_for_good_can_be_dropped(tmp_path, outbox, capsys):
    port = free_port()  # nothing listens there
    files = [sweep(tmp_path / f"sweep{i}.dcm", seed=i) for i in range(3)]
    assert main(["send", *map(str, files), "--retries", "0", *archive_options(port)]) == 1
    capsys.readouterr()

    assert main(["send", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == f"3 files queued in {outbox.folder}:"
    entries = outbox.entries()
    for line, entry in zip(listed[1:], entries):
        assert line.startswith(f"{entry.id}  {entry.name}  to {ORTHANC_AE} at 127.0.0.1:{port}  since 20")
        assert line.endswith(f"1 attempt: Cannot send to {ORTHANC_AE} at 127.0.0.1:{port}: the connection was "
                             f"refused: nothing listens on port {port}. Check the host and port, and that the "
                             "archive is running.")
    assert {entry.name for entry in entries} == {"sweep0.dcm", "sweep1.dcm", "sweep2.dcm"}

    assert main(["send", "--drop", entries[0].id]) == 0
    assert f"Dropped {entries[0].id} ('{entries[0].name}'" in capsys.readouterr().out
    assert [entry.key for entry in outbox.entries()] == [entry.key for entry in entries[1:]]
    assert not entries[0].file.exists()
    assert main(["send", "--drop", "ffffffffff"]) == 2
    assert "no entry of the outbox has the ID 'ffffffffff'" in capsys.readouterr().err
    assert main(["send", "--drop", "x", "--flush"]) == 2  # a drop sends nothing: not mixed with a send

    assert main(["send", "--drop-all", *archive_options(free_port())]) == 0  # another archive: none of these
    assert "Dropped 0 files" in capsys.readouterr().out and len(outbox.entries()) == 2
    assert main(["send", "--drop-all"]) == 0
    assert "Dropped 2 files from the outbox" in capsys.readouterr().out
    assert outbox.entries() == [] and main(["send", "--flush"]) == 0  # nothing left to keep --flush failing
    assert main(["send", "--list"]) == 0 and "The outbox is empty" in capsys.readouterr().out


def certificate(folder, name="localhost"):
    """A self-signed certificate for 127.0.0.1 and its key (PEM), as a hospital's own CA would sign one."""
    import shutil
    import subprocess
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@needs_orthanc
def test_an_archive_on_tls_stores_what_is_sent_over_tls_and_a_plain_send_or_an_untrusted_one_is_said(
        tmp_path, outbox, capsys):
    cert, key = certificate(tmp_path / "tls")
    server = Orthanc(tmp_path / "orthanc", {"FETALIQA": 1}, tls=(cert, key)).start()
    try:
        sent = sweep(tmp_path / "sweep.dcm", PatientID="PAT-TLS")
        assert main(["send", str(sent), *archive_options(server.dicom_port), "--retries", "0"]) == 1
        assert "Check that this is the archive's DICOM port (not its web port), and whether it expects TLS" in \
            capsys.readouterr().err
        assert main(["send", "--drop-all"]) == 0
        stranger, _ = certificate(tmp_path / "other", "someone-else")
        assert main(["send", str(sent), "--tls", "--tls-ca", str(stranger), *archive_options(server.dicom_port),
                     "--retries", "0"]) == 1
        said = capsys.readouterr().err
        assert "its TLS certificate is not trusted (self-signed certificate, checked with the CA file" in said
        assert "Give the CA certificate (PEM) that signed the archive's certificate." in said
        assert server.instances() == [] and len(outbox.entries()) == 1  # kept for a send that can
        assert main(["send", "--drop-all"]) == 0

        assert main(["send", str(sent), "--echo", "--tls", "--tls-ca", str(cert),
                     *archive_options(server.dicom_port)]) == 0
        out = capsys.readouterr().out
        assert "(TLS) answered the C-ECHO" in out and "Sent 1 of 1 file." in out
        [stored] = server.instances()
        assert stored["PatientID"] == "PAT-TLS" and outbox.entries() == []
    finally:
        server.kill()


def test_a_ca_certificate_given_without_tls_is_sent_over_tls_never_in_the_clear(tmp_path, outbox, capsys):
    """`--tls-ca` alone: the user asked for a trusted archive, and the sweep went in plain text."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    sent = sweep(tmp_path / "sweep.dcm")
    assert main(["send", str(sent), "--tls-ca", str(ca), *archive_options(free_port()), "--retries", "0"]) == 1
    said = capsys.readouterr().err
    assert "(TLS): the CA file" in said and "cannot be used" in said
    [entry] = outbox.entries()
    assert entry.archive.tls


@needs_orthanc
def test_two_sends_of_one_outbox_at_once_store_each_file_once(orthanc, tmp_path, outbox):
    archive = Archive("127.0.0.1", orthanc.dicom_port, ORTHANC_AE)
    queue_files([sweep(tmp_path / f"sweep{i}.dcm", seed=i) for i in range(3)], archive, outbox)
    first = send_queued(outbox, retry_delays=())
    assert next(first).outcome == SENT  # the first send is under way, holding the outbox
    second = send_queued(outbox, retry_delays=())
    waiting = next(second)
    assert waiting.outcome == WAITING and "Another send of this outbox is running" in waiting.message
    assert [step.outcome for step in first] == [SENT, SENT]
    assert list(second) == []  # it waited, then found nothing left to send
    assert outbox.entries() == [] and len(orthanc.instances()) == 3
