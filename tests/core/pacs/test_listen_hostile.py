"""The receiver against a hostile scanner and a tampered worklist folder (#29): what it writes and
moves stays inside --into, whatever the headers say, and what was received always shows as a case."""

import queue
import threading

import numpy as np
import pydicom
import pytest

from fetal_iqa_gui.base.errors import WriteError
from fetal_iqa_gui.pacs.listen import FAILED, INCOMING, LISTENING, RECEIVED, Receiver, listen
from fetal_iqa_gui.runs.worklist import Worklist
from tests.support import write_us_dicom


def received(into, key="0123456789abcdef", series="fedcba9876543210", **attributes):
    """A study as the receiver leaves it in .incoming, its one series' instance with `attributes`."""
    folder = into / INCOMING / key / series
    folder.mkdir(parents=True)
    frames = np.random.default_rng(0).integers(1, 255, (2, 16, 16), dtype=np.uint8)
    write_us_dicom(folder / "0000000000000000.dcm", frames, **attributes)
    return folder


def completed(into):
    events = queue.Queue()
    Receiver(into, 0, events).complete_quiet()
    return [events.get_nowait() for _ in range(events.qsize())]


@pytest.mark.parametrize("attributes", [
    {"StudyDate": "9" * 300, "StudyTime": "1" * 300, "Modality": "U" * 200, "SeriesNumber": "7" * 250},
    {"Modality": "../../etc", "StudyDate": "/", "StudyTime": "a\0b", "SeriesNumber": "-1"},
    {"Modality": "CON", "StudyDate": "", "StudyTime": "", "SeriesNumber": ""},
])
def test_a_study_with_hostile_header_values_still_shows_as_a_case_inside_the_folder(tmp_path, attributes):
    into = tmp_path / "worklist"
    received(into, **attributes)
    events = completed(into)
    assert [event.kind for event in events] == [RECEIVED], events
    [case] = Worklist(into).cases
    assert case.path.parent == into and len(case.path.name) <= 100
    assert not (into / INCOMING / "0123456789abcdef").exists()


def test_a_linked_incoming_folder_is_refused_and_nothing_outside_is_moved(tmp_path):
    """Someone who may write into a shared worklist folder links .incoming to another folder: the
    receiver would take that folder's subfolders for studies and move them into the worklist."""
    elsewhere = tmp_path / "home"
    (elsewhere / "photos" / "2024").mkdir(parents=True)
    into = tmp_path / "worklist"
    into.mkdir()
    (into / INCOMING).symlink_to(elsewhere)
    with pytest.raises(WriteError, match="link"):
        next(listen(into, 0, ("SCANNER",), host="127.0.0.1"))
    assert (elsewhere / "photos" / "2024").is_dir()


def test_links_inside_incoming_are_never_taken_for_studies_or_series(tmp_path):
    elsewhere = tmp_path / "home"
    (elsewhere / "photos" / "2024").mkdir(parents=True)
    into = tmp_path / "worklist"
    study = received(into).parent
    (into / INCOMING / "aaaaaaaaaaaaaaaa").symlink_to(elsewhere)  # a "study"
    (study / "bbbbbbbbbbbbbbbb").symlink_to(elsewhere / "photos")  # a "series"
    completed(into)
    assert (elsewhere / "photos" / "2024").is_dir()
    assert all(not path.is_symlink() for path in into.iterdir())
    assert len(Worklist(into).cases) == 1


def test_a_sender_that_sends_more_than_memory_holds_is_aborted_and_the_receiver_goes_on(tmp_path):
    """pynetdicom keeps an instance in memory until its last byte: a huge one (or many at once)
    would take all of it. Past the bound the association is aborted, said, and nothing half kept."""
    from pynetdicom import AE

    from .servers import free_port
    into, port, stop = tmp_path / "worklist", free_port(), threading.Event()
    events = listen(into, port, ("SCANNER",), host="127.0.0.1", quiet_s=0.2, stop=stop, memory_bytes=400_000)
    assert next(events).kind == LISTENING
    rng = np.random.default_rng(1)
    huge = write_us_dicom(tmp_path / "huge.dcm", rng.integers(1, 255, (40, 128, 128), dtype=np.uint8))  # 655 kB
    small = write_us_dicom(tmp_path / "small.dcm", rng.integers(1, 255, (2, 16, 16), dtype=np.uint8))
    scanner = AE(ae_title="SCANNER")
    scanner.add_requested_context(pydicom.dcmread(huge).SOPClassUID)
    association = scanner.associate("127.0.0.1", port, ae_title="FETALIQA")
    status = association.send_c_store(huge)
    assert not status or "Status" not in status  # no success: the scanner keeps it
    association.release()
    said = next(events)
    assert said.kind == FAILED and "more at once than the receiver holds in memory" in said.message
    association = scanner.associate("127.0.0.1", port, ae_title="FETALIQA")
    assert association.send_c_store(small).Status == 0
    association.release()
    try:
        while next(events).kind != RECEIVED:
            pass
    finally:
        stop.set()
        list(events)
    [case] = Worklist(into).cases
    assert [path.name for path in case.path.iterdir()] and len(list(case.path.iterdir())) == 1


def test_series_number_zero_is_named(tmp_path):
    into = tmp_path / "worklist"
    received(into, SeriesNumber=0)
    completed(into)
    [case] = Worklist(into).cases
    assert case.path.name.startswith("20261203_101500_US_S0_")


def test_a_series_whose_instances_could_not_be_written_does_not_show_as_a_case(tmp_path):
    """The disk filled up while a series arrived: its instances were refused to the scanner (which keeps them to
    send again), and the empty folder left of it is no case (it showed as an empty one, said as received)."""
    into = tmp_path / "worklist"
    study = received(into).parent
    (study / "aaaaaaaaaaaaaaaa").mkdir()  # the series the full disk refused
    (study / "dddddddddddddddd").mkdir()  # one whose write was killed with the receiver
    (study / "dddddddddddddddd" / ".0000000000000000.dcm.0123abcd.part").write_bytes(b"\0" * 100)
    (into / INCOMING / "bbbbbbbbbbbbbbbb" / "cccccccccccccccc").mkdir(parents=True)  # a study refused whole
    events = completed(into)
    assert [event.kind for event in events] == [RECEIVED] and "1 series" in events[0].message, events
    assert [path.name for path in into.iterdir() if path.name != INCOMING] == [events[0].folders[0].name]
    assert len(Worklist(into).cases) == 1
    assert list((into / INCOMING).iterdir()) == []


def test_a_pipe_among_a_received_series_files_does_not_block_the_receiver(tmp_path):
    import os
    into = tmp_path / "worklist"
    series = received(into)
    os.mkfifo(series / "000000000000000.dcm")  # sorted first: the one the series is named by
    result = []
    thread = threading.Thread(target=lambda: result.append(completed(into)), daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # free the blocked read before failing
        os.close(os.open(series / "000000000000000.dcm", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the receiver blocked on the pipe")
    [[event]] = result
    assert event.kind == RECEIVED and event.folders[0].name.startswith("20261203_101500_US_S1_")
