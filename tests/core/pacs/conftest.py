import pytest

from .servers import ORTHANC, Orthanc


@pytest.fixture
def orthanc(tmp_path):
    """A running Orthanc, called ORTHANC, that knows FETALIQA; killed after the test."""
    if ORTHANC is None:
        pytest.skip("Orthanc is not installed (Debian: apt-get install orthanc)")
    server = Orthanc(tmp_path / "orthanc", {"FETALIQA": 1})
    yield server.start()
    server.kill()
