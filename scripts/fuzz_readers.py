"""Fuzz the file readers for longer than the test suite does (tests/core/case/test_fuzzed_readers.py).

    python scripts/fuzz_readers.py --minutes 10 [--format mha nrrd nifti dicom] [--seed 0]

Runs the suite's strategies (tests/fuzz_files.py) in rounds, each round with its own seed, until
the time is spent: every damaged file must open or be refused with a reason, quickly and within
the memory budget. A failure prints hypothesis's smallest falsifying example (a `FuzzedFile`, to
paste into the test as an @example) and exits 1; a file that hangs is reported with the stacks
of every thread and exits 1. Needs hypothesis (`pip install -e .[test]`).
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.fuzz_files

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from tests.fuzz_files import FORMATS, SLOW_SECONDS, check_reader  # noqa: E402

ROUND_EXAMPLES = 200
HANG_SECONDS = 6 * SLOW_SECONDS  # a file still open after this is stuck: stacks dumped, the process ended


def fuzz_round(fmt: str, round_seed: int, folder: Path, outcomes: collections.Counter) -> None:
    @settings(max_examples=ROUND_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @seed(round_seed)
    @given(FORMATS[fmt])
    def opens_or_is_refused(fuzzed):
        faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
        try:
            outcomes[fmt, check_reader(folder, fuzzed)] += 1
        finally:
            faulthandler.cancel_dump_traceback_later()
    opens_or_is_refused()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--format", nargs="+", choices=sorted(FORMATS), default=sorted(FORMATS))
    parser.add_argument("--seed", type=int, default=int(time.time()), help="the first round's seed")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the readers' warnings about damaged files, thousands of them
    outcomes: collections.Counter = collections.Counter()
    started = time.monotonic()
    deadline = started + args.minutes * 60
    round_seed = args.seed
    print(f"fuzzing {', '.join(args.format)} for {args.minutes:g} min from seed {args.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fuzz-readers-") as folder:
        print(f"files are written under {folder} (a file that hangs is left there)", flush=True)
        while time.monotonic() < deadline:
            for fmt in args.format:
                try:
                    fuzz_round(fmt, round_seed, Path(folder), outcomes)
                except Exception:  # noqa: BLE001 - hypothesis has printed the falsifying example
                    print(f"FAILED: {fmt}, round seed {round_seed}", file=sys.stderr)
                    raise
            round_seed += 1
    seconds = time.monotonic() - started
    total = sum(outcomes.values())
    for fmt in args.format:
        print(f"  {fmt}: {outcomes[fmt, 'opened']} opened, {outcomes[fmt, 'refused']} refused")
    print(f"{total} files in {seconds:.0f} s ({total / seconds:.1f} a second), no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
