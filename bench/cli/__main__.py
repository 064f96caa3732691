"""`python -m bench.cli ...` is `fwbench ...`."""

import sys

from bench.cli import main

sys.exit(main())
