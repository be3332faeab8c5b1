"""`fetal-iqa send` and `fetal-iqa listen`: DICOM files to a clinic's archive, sweeps from the scanner."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..base.text import counted, shown
from .helptext import add_command
from .options import bounded_int, positive_float
from .progress import ProgressBar
from .score import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK, say, say_error

DEFAULT_PORT = 11112  # as pacs.listen's (not imported here: the core loads when a command runs)
DEFAULT_AE = "FETALIQA"


def ae_title(text: str) -> str:
    from ..pacs.archive import check_ae_title
    try:
        return check_ae_title(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_pacs_commands(commands) -> None:
    send = add_command(
        commands, "send", "send DICOM files to an archive (PACS) by C-STORE; what fails stays queued",
        "Send DICOM files to an archive (a PACS) over DICOM networking (C-STORE). Every file goes through an "
        "outbox on disk, and leaves it only once the archive answers that it stored it: what could not be sent "
        "(the archive down, a refusal) stays queued, and the next `send` to that archive or `send --flush` sends "
        "it. The exit status is 1 while anything stays queued; `--list` shows the queue, and `--drop` takes out "
        "what the archive refuses for good.",
        (("the DICOM files of a folder (searched below) to an Orthanc on this computer",
          "send results/dicom --host 127.0.0.1 --port 4242 --called-ae ORTHANC"),
         ("send what is still queued, each file to the archive it was queued for", "send --flush"),
         ("what is queued and why it was not sent yet; then `send --drop ID` takes out what the archive refuses "
          "for good", "send --list")))
    send.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                      help="a DICOM file, or a folder searched (below too) for DICOM files")
    where = send.add_argument_group("archive")
    where.add_argument("--host", help="the archive's host name or address")
    where.add_argument("--port", type=bounded_int(1, 65535), help="the archive's DICOM port (often 104 or 4242)")
    where.add_argument("--called-ae", type=ae_title, help="the archive's own AE title")
    where.add_argument("--calling-ae", type=ae_title, default=DEFAULT_AE,
                       help="our AE title, as the archive knows it")
    where.add_argument("--tls", action="store_true", help="DICOM over TLS (the archive's TLS port)")
    where.add_argument("--tls-ca", type=Path, metavar="PEM",
                       help="the CA certificate that signed the archive's (implies --tls; default: the system's)")
    where.add_argument("--timeout", type=positive_float, default=15.0,
                       help="seconds to wait for the archive to connect and answer")
    send.add_argument("--echo", action="store_true",
                      help="C-ECHO the archive first (alone: only check that it answers)")
    send.add_argument("--flush", action="store_true",
                      help="send what the outbox holds, each file to the archive it was queued for")
    queue = send.add_argument_group("the queue")
    queue.add_argument("--list", action="store_true",
                       help="list what the outbox holds (ID, file, archive, since when, last error) and send nothing")
    queue.add_argument("--drop", nargs="+", metavar="ID",
                       help="take these entries out of the outbox without sending them (IDs from --list)")
    queue.add_argument("--drop-all", action="store_true",
                       help="empty the outbox (only what is queued for the archive named, if one is)")
    send.add_argument("--retries", type=bounded_int(0, 10), default=3,
                      help="times to try an archive again that cannot be reached (after 2, 5, 15... s)")
    send.add_argument("--outbox", type=Path, metavar="DIR",
                      help="the outbox folder (default: FETAL_IQA_OUTBOX, else 'outbox' in the user data folder)")
    send.set_defaults(handler=cmd_send)

    listen = add_command(
        commands, "listen", "receive sweeps from the ultrasound machine (a C-STORE receiver) into a worklist folder",
        "Receive DICOM sweeps that the ultrasound machine sends (it is a storage SCP: C-STORE and C-ECHO) and put "
        "each series into a worklist folder, as a folder of its own, once its study has arrived whole: a case "
        "never shows half received. Only the calling AE titles allowed are accepted. Runs until Ctrl+C or SIGTERM.",
        (("receive from the scanner whose AE title is US1 into the folder worklist",
          "listen --port 11112 --into worklist --allow-ae US1"),
         ("two scanners, called by another AE title, on this computer only",
          "listen --into worklist --allow-ae US1 US2 --ae-title IQA --bind 127.0.0.1")))
    listen.add_argument("--into", type=Path, required=True, metavar="FOLDER",
                        help="the worklist folder (made if needed; what is still arriving waits in its hidden "
                        ".incoming/)")
    listen.add_argument("--allow-ae", type=ae_title, nargs="+", required=True, metavar="AE",
                        help="the calling AE titles accepted (the scanners'); others are refused")
    listen.add_argument("--port", type=bounded_int(1, 65535), default=DEFAULT_PORT,
                        help="the port to listen on (104 needs administrator rights)")
    listen.add_argument("--ae-title", type=ae_title, default=DEFAULT_AE, help="our AE title, which the scanner calls")
    listen.add_argument("--bind", default="", metavar="HOST",
                        help="the address to listen on (default: every network interface)")
    listen.add_argument("--quiet-seconds", type=positive_float, default=120.0,
                        help="a study whose sending was broken off (no release) is put into the folder after this "
                        "long without more of it")
    listen.set_defaults(handler=cmd_listen)


def _quiet_pynetdicom(args) -> None:
    """pynetdicom logs each failure as an error of its own words; ours say it once, clearly (-v shows both)."""
    if not args.verbose:
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


def cmd_send(args) -> int:
    from ..pacs.archive import Archive, ArchiveError, echo
    from ..pacs.outbox import Outbox
    from ..pacs.send import RETRY_DELAYS_S, queue_files
    _quiet_pynetdicom(args)
    named = (args.host, args.port, args.called_ae)
    args.tls = args.tls or args.tls_ca is not None  # a CA given asks for TLS: never sent in the clear instead
    if args.list or args.drop or args.drop_all:
        return manage_queue(args, Outbox(args.outbox), named)
    if (args.paths or args.echo) and None in named:
        say("error: name the archive: --host, --port and --called-ae")
        return EXIT_BAD_INPUT
    if not (args.paths or args.echo or args.flush):
        say("error: give DICOM files or folders to send, --flush (the queue) or --echo")
        return EXIT_BAD_INPUT
    archive = None
    if None not in named:
        archive = Archive(args.host, args.port, args.called_ae, args.calling_ae, args.tls,
                          str(args.tls_ca or ""), args.timeout)
    outbox = Outbox(args.outbox)
    status = EXIT_OK
    if args.echo:
        assert archive is not None  # named: checked above
        try:
            print(f"{archive.describe()} answered the C-ECHO in {echo(archive) * 1000:.0f} ms.")
        except ArchiveError as error:
            say_error(error)
            return EXIT_ERROR
        if not (args.paths or args.flush):
            return EXIT_OK
    if args.paths:
        assert archive is not None
        queued = queue_files(args.paths, archive, outbox)
        for refused in queued.refused:
            say_error(refused)
            status = EXIT_BAD_INPUT
        if queued.skipped:
            say(f"note: {counted(queued.skipped, 'file')} in the folders given are not DICOM; not sent.")
        if not queued.entries and not args.flush:
            say("error: no DICOM file to send")
            return EXIT_BAD_INPUT
    delays = (RETRY_DELAYS_S + (30.0,) * 10)[:args.retries]
    left = send_outbox(outbox, None if args.flush else archive, delays)
    return max(status, EXIT_ERROR if left else EXIT_OK)


def manage_queue(args, outbox, named) -> int:
    """--list, --drop, --drop-all: the outbox looked at or emptied by hand; nothing is sent."""
    if args.paths or args.flush or args.echo:
        say("error: --list, --drop and --drop-all send nothing: give them without files, --flush or --echo")
        return EXIT_BAD_INPUT
    from ..pacs.archive import Archive
    entries = outbox.entries()
    if args.drop_all:
        if None not in named:
            host, port, called_ae = named
            key = Archive(host, port, called_ae, args.calling_ae, args.tls).key
            entries = [entry for entry in entries if entry.archive.key == key]
        for entry in entries:
            outbox.drop(entry)
        print(f"Dropped {counted(len(entries), 'file')} from the outbox; they will not be sent.")
        return EXIT_OK
    if args.drop:
        status = EXIT_OK
        for wanted in args.drop:
            try:
                entry = outbox.find(wanted)
            except KeyError as error:
                say(f"error: {shown(error.args[0])}; `fetal-iqa send --list` shows the IDs")
                status = EXIT_BAD_INPUT
                continue
            outbox.drop(entry)
            print(f"Dropped {entry.id} ('{shown(entry.name)}' for {entry.archive.describe()}); it will not be sent.")
        return status
    if not entries:
        print(f"The outbox is empty ({outbox.folder}).")
        return EXIT_OK
    print(f"{counted(len(entries), 'file')} queued in {outbox.folder}:")
    for entry in entries:
        record = entry.record
        tries = record.get("attempts", 0)
        print(f"{entry.id}  {shown(entry.name)}  to {entry.archive.describe()}  since {_local(record.get('queued_at'))}"
              f"  {counted(tries, 'attempt')}" + (f": {shown(record['last_error'])}" if record.get("last_error") else ""))
    return EXIT_OK


def _local(stamp: str | None) -> str:
    """A record's UTC time as the user's clock says it, to the minute."""
    from datetime import datetime
    if stamp is None:
        return "an unknown time"
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return "an unknown time"


def send_outbox(outbox, archive, delays) -> int:
    """Send the outbox (to `archive` only, if given) with a progress bar; how many stay queued."""
    from ..pacs.send import FAILED, GAVE_UP, SENT, WAITING, send_queued
    progress = None
    sent = left = 0
    for step in send_queued(outbox, archive, delays):
        if step.outcome == WAITING and progress is None:  # for another send of the outbox
            say(f"note: {shown(step.message)}")
            continue
        if progress is None:
            progress = ProgressBar(f"sending {counted(step.total, 'file')}", step.total)
        newline = "\n" if progress.tty else ""
        if step.outcome == SENT:
            assert step.entry is not None  # SENT and FAILED name their entry
            sent += 1
            if step.message:
                say(f"{newline}note: '{shown(step.entry.name)}' {shown(step.message)}")
        elif step.outcome == FAILED:
            assert step.entry is not None
            left += 1
            say(f"{newline}error: '{shown(step.entry.name)}' was not stored: {shown(step.message)}; it stays queued")
        elif step.outcome == WAITING:
            say(f"{newline}note: {shown(step.message)}")
        elif step.outcome == GAVE_UP:
            left += step.left
            say(f"{newline}error: {shown(step.message)}")
        progress.update(step.done, extra=f"{sent} sent" + (f", {left} kept queued" if left else ""))
    if progress is None:
        say("Nothing to send: the outbox is empty.")
        return 0
    progress.close()
    if left:
        say(f"{counted(left, 'file')} stay{'s' * (left == 1)} queued in {outbox.folder}; "
            f"`fetal-iqa send --flush` sends {'it' if left == 1 else 'them'} later; `--list` shows why, and "
            "`--drop ID` takes out one the archive refuses for good.")
    print(f"Sent {sent} of {counted(sent + left, 'file')}.")
    return left


def cmd_listen(args) -> int:
    from ..pacs.listen import FAILED, RECEIVED, REFUSED, listen
    _quiet_pynetdicom(args)
    try:
        for event in listen(args.into, args.port, tuple(args.allow_ae), args.ae_title, args.bind,
                            args.quiet_seconds):
            if event.kind == RECEIVED:
                print(event.message, flush=True)
            else:
                say(f"{'error: ' if event.kind in (FAILED, REFUSED) else ''}{shown(event.message)}")
    except PermissionError:
        say(f"error: cannot listen on port {args.port}: ports below 1024 need administrator rights; "
            f"use {DEFAULT_PORT} and tell the scanner")
        return EXIT_BAD_INPUT
    except OSError as error:
        say(f"error: cannot listen on port {args.port} ({error.strerror or error}); "
            "another receiver may have it: choose another with --port, or check --into")
        return EXIT_BAD_INPUT
    return EXIT_OK
