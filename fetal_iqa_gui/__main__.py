"""`python -m fetal_iqa_gui`: the `fetal-iqa` command, where its script is not on the PATH."""

import sys

from .entry import command

sys.exit(command())
