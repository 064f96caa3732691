"""Studies from the course material, run through the same specs and adapters in every
framework: accuracy as well as speed.

    genz      Genz (1987) function approximation with the MLP (bench.studies.genz)
    forecast  LSTM forecasting of the Mauna Loa CO2 series (bench.studies.forecast)
    sweep     MLP architecture and optimizer sweep on the digits data set (bench.studies.sweep)
    charlm    next-character prediction on Python's own help text, LSTM and RNN
              (bench.studies.charlm)
    seqclass  digits as sequences (rows, pixels) classified by the RNN and the LSTM
              (bench.studies.seqclass)
    gradients vanishing and exploding gradients through time, RNN and LSTM
              (bench.studies.gradients)

Each study module defines NAME, FULL and QUICK (configurations), items(config) (the units
of work), item_id(item) and run_item(adapter, item, config, mode, snapshots) -> {"metrics",
"curves", "outputs"} (snapshots: bench.studies.fit.Snapshots or None, for TensorBoard's
histograms).
bench.studies.runner runs them, one process per framework, into results/studies/.
Study modules are imported when a study runs: `import bench` stays light.
"""

from __future__ import annotations

import importlib
from types import ModuleType

STUDIES = {
    "genz": "bench.studies.genz",
    "forecast": "bench.studies.forecast",
    "sweep": "bench.studies.sweep",
    "charlm": "bench.studies.charlm",
    "seqclass": "bench.studies.seqclass",
    "gradients": "bench.studies.gradients",
}


class UnknownStudy(ValueError):
    """A study name that is not in STUDIES."""


def get(name: str) -> ModuleType:
    """The module of study `name`."""
    if name not in STUDIES:
        raise UnknownStudy(f"unknown study {name!r}: allowed one of {', '.join(STUDIES)}")
    return importlib.import_module(STUDIES[name])
