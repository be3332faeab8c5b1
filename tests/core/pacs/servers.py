"""Real DICOM components for the tests: an Orthanc archive started on loopback ports with its own
configuration and storage, read back through its REST API, and DCMTK's tools as a scanner."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ORTHANC = shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc",) if Path(p).exists()), None)
needs_orthanc = pytest.mark.skipif(ORTHANC is None, reason="Orthanc is not installed (Debian: apt-get install orthanc)")
needs_dcmtk = pytest.mark.skipif(shutil.which("storescu") is None,
                                 reason="DCMTK's storescu is not installed (Debian: apt-get install dcmtk)")
ORTHANC_AE = "ORTHANC"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Orthanc:
    """An Orthanc of its own: `start()` it (again after `kill()`, on the same storage), `rest(...)` to read it."""

    def __init__(self, folder: Path, modalities: dict[str, int] | None = None, tls: tuple[Path, Path] | None = None):
        """`tls`: (certificate, private key) PEM files: its DICOM port then takes TLS only."""
        self.folder, self.dicom_port, self.http_port = folder, free_port(), free_port()
        self.process: subprocess.Popen | None = None
        config = {"Name": "fetal-iqa tests", "StorageDirectory": str(folder / "storage"),
                  "IndexDirectory": str(folder / "index"), "HttpPort": self.http_port, "DicomPort": self.dicom_port,
                  "DicomAet": ORTHANC_AE, "DicomCheckCalledAet": True, "RemoteAccessAllowed": False,
                  "AuthenticationEnabled": False, "HttpServerEnabled": True, "Plugins": [],
                  "DicomModalities": {name.lower(): [name, "127.0.0.1", port]
                                      for name, port in (modalities or {}).items()}}
        if tls:  # Orthanc >= 1.9: TLS on the DICOM port; the client's own certificate is not asked for
            config.update({"DicomTlsEnabled": True, "DicomTlsCertificate": str(tls[0]),
                           "DicomTlsPrivateKey": str(tls[1]), "DicomTlsTrustedCertificates": str(tls[0]),
                           "DicomTlsRemoteCertificateRequired": False})
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps(config))

    def start(self) -> Orthanc:
        log = open(self.folder / "orthanc.log", "ab")
        self.process = subprocess.Popen([ORTHANC, str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.rest("/system")
                socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"Orthanc ended: {(self.folder / 'orthanc.log').read_text()[-2000:]}") from None
                time.sleep(0.1)
        raise RuntimeError("Orthanc did not answer within 30 s")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def rest(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as answer:
            return json.loads(answer.read())

    def instances(self) -> list[dict]:
        """Every instance stored, with its main DICOM tags (the patient's and study's merged in)."""
        found = []
        for uuid in self.rest("/instances"):
            tags = self.rest(f"/instances/{uuid}/simplified-tags")
            found.append(tags)
        return found
