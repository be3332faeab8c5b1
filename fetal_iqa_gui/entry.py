"""The installed commands' entry points: `fetal-iqa` and `fetal-iqa-gui`.

They import their front door only once called, so that Ctrl+C while it loads (torch, Qt: a
fraction of a second to seconds) ends the command as Ctrl+C ends it later, quietly with exit
status 130, not in a KeyboardInterrupt traceback from inside an import.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # as cli.EXIT_INTERRUPTED, without importing the command line to say it


def command() -> int:
    """`fetal-iqa`."""
    try:
        from .cli import main
    except KeyboardInterrupt:
        return _interrupted()
    return main()


def window() -> int:
    """`fetal-iqa-gui`."""
    try:
        from .gui.app import main
    except KeyboardInterrupt:
        return _interrupted()
    return main()


def _interrupted() -> int:
    print("Interrupted.", file=sys.stderr)
    return EXIT_INTERRUPTED
