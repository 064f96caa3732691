"""`import fwbench`: the notebook API (bench/api.py) under the distribution's name.

The code lives in bench/ (framework-free) and impls/ (one folder per framework); this
module only gives it the name users install it by.
"""

from bench import __version__  # noqa: F401
from bench.api import (  # noqa: F401
    Code,
    FwbenchError,
    Report,
    code,
    compare,
    graphs,
    installed,
    load,
    parity,
    report,
    run,
    study,
)

__all__ = ["Code", "FwbenchError", "Report", "__version__", "code", "compare", "graphs",
           "installed", "load", "parity", "report", "run", "study"]
