"""`python -m bench.graphs FRAMEWORK TASK JOB OUT`: the graph study's worker, in the
framework's own process (bench.graphs._worker_main)."""

import sys

from bench.graphs import _worker_main

sys.exit(_worker_main(sys.argv[1:]))
