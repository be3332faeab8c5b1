"""An archive (a PACS, or any DICOM storage SCP): where it is, and associations with it.

A failed association is said as what the user can act on: the archive refused our AE titles,
nothing listens on that port, no answer came in time, the host name is unknown. pynetdicom says
only "aborted", so a failure that was not a rejection is looked at again with a plain TCP
connection, which tells a refused port from a silent one.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import stat
import time
from dataclasses import asdict, dataclass
from typing import Sequence

from ..base.errors import FetalIqaError
from ..base.fileio import NotRegularFile

log = logging.getLogger(__name__)

DEFAULT_CALLING_AE = "FETALIQA"  # our own AE title, as the archive is told to know it
AE_TITLE_LENGTH = 16  # DICOM PS3.5: an AE value is at most 16 characters
CONNECT_TIMEOUT_S = 15.0
RESPONSE_TIMEOUT_S = 120.0  # the archive's answer to a C-STORE: a large sweep takes it a while to store

# A-ASSOCIATE-RJ (PS3.8 9.3.4): (source, diagnostic) -> (what happened, what to do)
_REJECTIONS: dict[tuple[int | None, int | None], tuple[str, str]] = {
    (1, 2): ("it does not support the DICOM application context", "Check that it is a DICOM archive."),
    (1, 3): ("it does not know the calling AE title '{calling}'",
             "Add '{calling}' to the archive's known modalities (Orthanc: DicomModalities), or set the calling AE "
             "title it knows."),
    (1, 7): ("it is not called '{called}'", "Set the called AE title to the archive's own AE title."),
    (2, 2): ("it does not support this DICOM protocol version", "Check that it is a DICOM archive."),
    (3, 1): ("it is busy (temporary congestion)", "Try again later."),
    (3, 2): ("it is busy (a local limit is reached)", "Try again later."),
}


class ArchiveError(FetalIqaError):
    """The archive cannot be reached, refused us, or answered a failure. `retry`: trying again
    later may succeed (a network or a busy archive), unlike a refused AE title."""

    doing = "Cannot send to"

    def __init__(self, archive: Archive, problem: str, advice: str = "", retry: bool = True):
        super().__init__(None, problem, advice)
        self.archive, self.retry = archive, retry

    def _where(self) -> str:
        return self.archive.describe()


def check_ae_title(text: str) -> str:
    """An AE title as DICOM allows it (1 to 16 characters, printable ASCII, no backslash), else ValueError."""
    title = text.strip()
    if not title:
        raise ValueError("an AE title cannot be empty")
    if len(title) > AE_TITLE_LENGTH:
        raise ValueError(f"'{title}' is longer than {AE_TITLE_LENGTH} characters, which DICOM allows for an AE title")
    if not all(" " <= character <= "~" and character != "\\" for character in title):
        raise ValueError(f"'{title}' holds characters an AE title cannot have (plain letters, digits, - and _ only)")
    return title


@dataclass(frozen=True)
class Archive:
    host: str
    port: int
    called_ae: str
    calling_ae: str = DEFAULT_CALLING_AE
    tls: bool = False
    tls_ca: str = ""  # a CA bundle that signed the archive's certificate; empty: the system's
    timeout_s: float = CONNECT_TIMEOUT_S

    def __post_init__(self):
        for title in (self.called_ae, self.calling_ae):
            check_ae_title(title)
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range: give 1 to 65535")

    def describe(self) -> str:
        return f"{self.called_ae} at {self.host}:{self.port}{' (TLS)' if self.tls else ''}"

    @property
    def key(self) -> str:
        """What tells one destination from another in the outbox."""
        return f"{self.calling_ae}>{self.called_ae}@{self.host}:{self.port}{'+tls' if self.tls else ''}"

    def record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> Archive:
        known = {name: record[name] for name in cls.__dataclass_fields__ if name in record}
        return cls(**known)

    def tls_args(self) -> tuple[ssl.SSLContext, str] | None:
        if not self.tls:
            return None
        try:
            if self.tls_ca:  # OpenSSL reads it: a pipe would block the send forever
                mode = os.stat(self.tls_ca).st_mode
                if not stat.S_ISREG(mode):
                    raise NotRegularFile(self.tls_ca, mode)
            context = ssl.create_default_context(cafile=self.tls_ca or None)
        except (OSError, ssl.SSLError) as error:
            raise ArchiveError(self, f"the CA file '{self.tls_ca}' cannot be used ({error})",
                               "Give the CA bundle (PEM) that signed the archive's certificate.", retry=False) from None
        return context, self.host


def associate(archive: Archive, contexts: Sequence[tuple[str, str | list[str]]]):
    """An established pynetdicom association with `archive`, proposing each (SOP class, transfer
    syntaxes) of `contexts`; `ArchiveError` saying why when there is none."""
    from pynetdicom import AE
    ae = AE(ae_title=archive.calling_ae)
    ae.connection_timeout = ae.acse_timeout = ae.network_timeout = archive.timeout_s
    ae.dimse_timeout = RESPONSE_TIMEOUT_S
    for sop_class, transfer_syntaxes in contexts:
        ae.add_requested_context(sop_class, transfer_syntaxes or None)  # None: the uncompressed ones
    started = time.monotonic()
    association = ae.associate(archive.host, archive.port, ae_title=archive.called_ae,
                               tls_args=archive.tls_args())
    if association.is_established:
        return association
    if association.is_rejected:
        raise _rejection(archive, association.acceptor.primitive)
    if time.monotonic() - started >= archive.timeout_s * 0.9:  # the connection came, the answer did not
        raise ArchiveError(archive, f"it took the connection but gave no DICOM answer within {archive.timeout_s:g} s",
                           "Check that this is the archive's DICOM port and that the archive is not hung.")
    raise _unreachable(archive)


def echo(archive: Archive) -> float:
    """C-ECHO the archive: the seconds it took to answer; `ArchiveError` when it does not."""
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # made at import from tables
    started = time.monotonic()
    association = associate(archive, [(Verification, [])])
    try:
        status = association.send_c_echo()
    finally:
        association.release()
    if not status or status.get("Status") != 0:
        code = status.get("Status") if status else None
        raise ArchiveError(archive, "it did not answer the C-ECHO" if code is None else
                           f"it answered the C-ECHO with the failure status 0x{code:04X}")
    return time.monotonic() - started


def _rejection(archive: Archive, primitive) -> ArchiveError:
    source, diagnostic = getattr(primitive, "result_source", None), getattr(primitive, "diagnostic", None)
    problem, advice = _REJECTIONS.get((source, diagnostic), (
        f"it refused the association (source {source}, reason {diagnostic})",
        "Check the AE titles against the archive's configuration."))
    words = {"calling": archive.calling_ae, "called": archive.called_ae}
    transient = getattr(primitive, "result", None) == 2  # rejected-transient: worth trying again later
    return ArchiveError(archive, problem.format(**words), advice.format(**words), retry=transient)


def _unreachable(archive: Archive) -> ArchiveError:
    """Why no association came, looked at again with a plain TCP connection."""
    try:
        socket.create_connection((archive.host, archive.port), timeout=archive.timeout_s).close()
    except socket.gaierror:
        return ArchiveError(archive, f"the host name '{archive.host}' is unknown", "Check the host name.")
    except ConnectionRefusedError:
        return ArchiveError(archive, f"the connection was refused: nothing listens on port {archive.port}",
                            "Check the host and port, and that the archive is running.")
    except TimeoutError:
        return ArchiveError(archive, f"no answer within {archive.timeout_s:g} s",
                            "Check the host and port, and that no firewall drops the connection.")
    except OSError as error:
        return ArchiveError(archive, f"it cannot be reached ({error.strerror or error})",
                            "Check the network and the host name.")
    if archive.tls:
        return _tls_failure(archive)
    return ArchiveError(archive, "it closed the connection without answering as a DICOM archive",
                        "Check that this is the archive's DICOM port (not its web port), and whether it expects TLS.")


def _tls_failure(archive: Archive) -> ArchiveError:
    """Why a TLS association failed, from a handshake of our own: an untrusted certificate is said as one."""
    context, host = archive.tls_args() or (ssl.create_default_context(), archive.host)  # called for TLS only
    try:
        with socket.create_connection((archive.host, archive.port), timeout=archive.timeout_s) as connection:
            context.wrap_socket(connection, server_hostname=host).close()
    except ssl.SSLCertVerificationError as error:
        ca = f"the CA file '{archive.tls_ca}'" if archive.tls_ca else "the system's certificate authorities"
        return ArchiveError(archive, f"its TLS certificate is not trusted ({error.verify_message}, checked with {ca})",
                            "Give the CA certificate (PEM) that signed the archive's certificate.", retry=False)
    except (ssl.SSLError, OSError) as error:
        return ArchiveError(archive, f"the TLS handshake failed ({getattr(error, 'reason', None) or error})",
                            "Check that the archive expects TLS on this port.")
    return ArchiveError(archive, "the TLS handshake succeeded but the association failed",
                        "Check the AE titles and the archive's log.")
