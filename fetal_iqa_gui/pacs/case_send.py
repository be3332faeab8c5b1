"""A scored case to the archive: its DICOM outputs (review/dicom_out.py) written into the outbox's
staging folder and queued there, so that `send.send_queued` sends them with whatever an earlier send
left, and what the archive does not store stays queued for the next one.

Each output gets new UIDs: a case written twice is two series in the archive. So a case whose
outputs are still queued for the archive, made from the same review (frames, measurements,
threshold, model), is not written again: sending it again sends what is queued.
"""

from __future__ import annotations

import hashlib
import json
import shutil

from ..base.errors import WriteError
from ..case.study import entered_record
from ..review.dicom_out import DicomExport, write_dicom
from ..review.scored_case import ScoredCase
from ..review.report import chosen_frames
from .archive import Archive
from .outbox import OUTBOX_ENV, Outbox
from .send import Queued, queue_files


def outputs_key(scored: ScoredCase, blank: bool) -> str:
    """What the outputs are made from: the sweep, the frames chosen and their measurements, the
    threshold and the model, the patient details typed, the blanking."""
    chosen = chosen_frames(scored)
    measured = {str(frame): [caliper.record() for caliper in scored.calipers.get(frame, [])]
                for frame in chosen.values()}
    made_of = json.dumps([scored.case.content_hash, blank, scored.threshold, scored.model.identity if scored.model
                          else None, {str(sweep): frame for sweep, frame in chosen.items()}, measured,
                          entered_record(scored.case.study)], sort_keys=True, default=str)
    return hashlib.sha256(made_of.encode()).hexdigest()[:32]


def queue_case(scored: ScoredCase, archive: Archive, outbox: Outbox, variant: str = "",
               blank: bool = False) -> tuple[DicomExport | None, Queued | None]:
    """Write the case's DICOM image(s) and Structured Report and queue them for `archive`; (None,
    None) when the same outputs are queued for it already. Raises what `write_dicom` raises (nothing
    scored, blanking refused) before anything is queued, and `WriteError` when the outbox cannot
    hold a file (those queued before it stay whole entries)."""
    origin = outputs_key(scored, blank)
    if any(entry.record.get("origin") == origin and entry.archive.key == archive.key for entry in outbox.entries()):
        return None, None
    try:
        staging = outbox.staging()
    except OSError as error:
        raise WriteError(outbox.folder, f"the outbox cannot be written ({error.strerror or error})",
                         f"Check the folder, or set {OUTBOX_ENV} to another.") from None
    try:
        written = write_dicom(scored, staging, variant, blank=blank)
        queued = queue_files(written.written, archive, outbox, origin)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the outbox holds its own links to them
    return written, queued
