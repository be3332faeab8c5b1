"""`python -m fetal_iqa_gui.cli`: the command line, as `fetal-iqa`."""

import sys

from . import main

sys.exit(main())
