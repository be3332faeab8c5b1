"""Fuzzed headers (issue 29): MHA, NRRD, NIfTI and DICOM files whose sizes, frame counts, element
types, data offsets and transfer syntaxes are changed and whose bytes are cut or flipped, opened as
`fetal-iqa info` opens them. Each opens, or is refused with a reason; none raises anything else,
hangs, or takes memory beyond the reader's budget (tests/fuzz_files.py holds the strategies and
the property; scripts/fuzz_readers.py runs them for longer).

A fixed budget of examples, derandomized: the same files on every run and in CI.
"""

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests import fuzz_files  # noqa: E402
from tests.fuzz_files import FORMATS, FuzzedFile, check_reader  # noqa: E402

FUZZED = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzzed")


@pytest.mark.timeout(120)  # a hang fails here, not after the suite's 300 s
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_fuzzed_file_opens_or_is_refused_with_a_reason(folder, fmt):
    @FUZZED
    @given(FORMATS[fmt])
    def opens_or_is_refused(fuzzed):
        check_reader(folder, fuzzed)
    opens_or_is_refused()


# --- what the fuzzing found ------------------------------------------------------------------------

def _nifti_with_infinite_sform() -> FuzzedFile:
    """An sform with an infinity among large values: ITK's orientation never converged (a hang)."""
    import struct
    content = bytearray(fuzz_files._nifti_base())
    struct.pack_into("<12f", content, 280, -1.5, -5.1e16, -6.1e16, 0, 1.5e15, 1.6e25, -5.2e16, -3.6e15, 3.7e16, 0,
                     float("-inf"), 0)
    return FuzzedFile("case.nii", bytes(content))


@pytest.mark.parametrize("header_size", [348, -1])  # ITK knows NIfTI by its magic, whatever its size field says
def test_a_nifti_whose_orientation_is_infinite_is_refused_without_hanging(folder, header_size):
    import struct
    content = bytearray(_nifti_with_infinite_sform().content)
    struct.pack_into("<i", content, 0, header_size)
    assert check_reader(folder, FuzzedFile("case.nii", bytes(content))) == "refused"


@pytest.mark.parametrize("cut", [1, 16, 40, 200])
def test_a_compressed_dicom_cut_short_is_refused_within_the_memory_budget(folder, cut):
    """GDCM, probing an RLE file cut inside its fragments, took 4 GB and 6 s: refused before it looks."""
    content = fuzz_files._dicom_base("rle")
    assert check_reader(folder, FuzzedFile("case.dcm", content[:-cut])) == "refused"


def test_the_good_files_the_fuzzing_starts_from_open(folder):
    for name, content in [("case.nii", fuzz_files._nifti_base()), ("case.dcm", fuzz_files._dicom_base("grey")),
                          ("case.dcm", fuzz_files._dicom_base("rgb")), ("case.dcm", fuzz_files._dicom_base("rle"))]:
        assert check_reader(folder, FuzzedFile(name, content)) == "opened"


def test_a_dicom_with_bytes_after_its_pixel_data_is_refused_within_the_memory_budget(folder):
    """14 bytes inserted in the pixel data push its last bytes out, where GDCM read an element of 740 MB."""
    content = fuzz_files._dicom_base("grey")
    inside = len(content) - fuzz_files.FRAMES.nbytes + 24
    assert check_reader(folder, FuzzedFile("case.dcm", content[:inside] + bytes(14) + content[inside:])) == "refused"
