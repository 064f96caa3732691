"""Cells of the speed matrix: what one measurement is, and how flags expand to a matrix.

A cell is (framework, model, preset, mode, device, dtype, batch size, sequence length)
plus the thread count it runs with, and for a data-parallel cell its replica count.
Everything here is framework-free: the matrix is expanded, checked and written down
before any framework is imported.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import adapters
from bench import models as model_kinds
from bench.spec import DTYPES, MODELS, PRESETS, ModelSpec, TrainSpec, preset


class MatrixError(ValueError):
    """Flags that cannot make a matrix (an unknown value, an empty selection)."""


@dataclass(frozen=True)
class Cell:
    framework: str
    model: str
    preset: str
    mode: str
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int | None = None  # None: the preset's batch size
    seq_len: int | None = None     # None: the preset's sequence length (ignored by models without one)
    threads: int = 1               # compute threads (and CPU cores in the affinity mask)
    # None: the single-device path; N >= 1: the framework's data-parallel runtime with N
    # replicas (bench.distributed), the batch being the global one and `threads` the
    # cores of the whole group
    replicas: int | None = None

    def specs(self) -> tuple[ModelSpec, TrainSpec]:
        """The model and training specs this cell trains."""
        overrides: dict[str, Any] = {"dtype": self.dtype}
        if self.batch_size is not None:
            overrides["batch_size"] = self.batch_size
        model_spec, train_spec = preset(self.preset, self.model, **overrides)
        if self.seq_len is not None and hasattr(model_spec, "seq_len"):
            model_spec = dataclasses.replace(model_spec, seq_len=self.seq_len)
        return model_spec, train_spec

    @property
    def id(self) -> str:
        """A file-name-safe identifier, unique within a run."""
        model_spec, train_spec = self.specs()
        seq = getattr(model_spec, "seq_len", None)
        parts = [self.framework, self.model, self.preset, self.mode, self.device, self.dtype,
                 f"b{train_spec.batch_size}", *([f"t{seq}"] if seq is not None else []),
                 f"th{self.threads}", *([f"dp{self.replicas}"] if self.replicas else [])]
        return "-".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise MatrixError(f"a cell has no field(s) {unknown}: allowed {sorted(names)}")
        return cls(**data)


def parse_list(value: str, allowed: Sequence[str], flag: str) -> tuple[str, ...]:
    """Comma-separated choices; every unknown value is named in the error."""
    items = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise MatrixError(f"{flag}: {', '.join(map(repr, unknown)) or 'nothing given'} "
                          f"not known; allowed: {', '.join(allowed)}")
    return items


def parse_ints(value: str, flag: str, minimum: int = 1) -> tuple[int, ...]:
    """Comma-separated whole numbers >= `minimum`."""
    out = []
    for item in (v.strip() for v in value.split(",") if v.strip()):
        if not item.isdigit() or int(item) < minimum:
            raise MatrixError(f"{flag}: {item!r} is not a whole number >= {minimum}")
        out.append(int(item))
    if not out:
        raise MatrixError(f"{flag}: nothing given")
    return tuple(dict.fromkeys(out))


def all_modes(frameworks: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for fw in frameworks for m in adapters.MODES[fw]))


def expand(frameworks: Sequence[str], models: Sequence[str], modes: Sequence[str] | None,
           preset_name: str, device: str = "cpu", dtype: str = "float32", threads: int = 1,
           batch_sizes: Sequence[int] | None = None,
           seq_lens: Sequence[int] | None = None) -> list[Cell]:
    """Every cell of the matrix, in run order (framework, model, mode, batch, length).

    `modes` None means every mode of each framework; a named mode runs in the frameworks
    that offer it, and a mode that none of them offers is an error.
    """
    for name, values, allowed in (("framework", frameworks, adapters.FRAMEWORKS),
                                  ("model", models, MODELS)):
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise MatrixError(f"{name}s {bad or 'none given'} not known; allowed: "
                              f"{', '.join(allowed)}")
    if preset_name not in PRESETS:
        raise MatrixError(f"preset {preset_name!r} not known; allowed: {', '.join(PRESETS)}")
    if device not in adapters.DEVICES:
        raise MatrixError(f"device {device!r} not known; allowed: {', '.join(adapters.DEVICES)}")
    if dtype not in DTYPES:
        raise MatrixError(f"dtype {dtype!r} not known; allowed: {', '.join(DTYPES)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise MatrixError(f"threads={threads!r} must be a whole number >= 1")
    if modes is not None:
        offered = all_modes(frameworks)
        unknown = [m for m in modes if m not in offered]
        if unknown:
            raise MatrixError(f"modes {unknown} are offered by none of "
                              f"{', '.join(frameworks)}; they offer: {', '.join(offered)}")
    cells = []
    for fw, model in itertools.product(frameworks, models):
        fw_modes = [m for m in adapters.MODES[fw] if modes is None or m in modes]
        lengths = (seq_lens or [None]) if model_kinds.get(model).sequence else [None]
        for mode, batch, length in itertools.product(fw_modes, batch_sizes or [None], lengths):
            cells.append(Cell(fw, model, preset_name, mode, device, dtype, batch, length,
                              threads))
    return cells


# Scaling sweep of the main job: each curve multiplies one axis of the preset's default by
# these factors (the default itself, factor 1, is the main matrix's cell). 1/4 to 4x spans
# the launch-bound to the compute-bound end of the small preset on a CPU while keeping the
# sweep to one process per point (about 3 min for 27 points on 2 cores).
SCALING_FACTORS = (0.25, 2.0, 4.0)
# Which axis is swept for which model is the kind's (bench/models): the MLP has no
# sequence; the sequence models are swept in length, where their costs differ (recurrent
# ones linear, attention partly quadratic).
SCALING_AXES = {name: kind.scaling_axis for name, kind in model_kinds.KINDS.items()}
SCALING_MODE = "compiled"  # every framework has it: tf.function, torch.compile, jax.jit


def scaling_cells(frameworks: Sequence[str], models: Sequence[str], preset_name: str,
                  device: str = "cpu", dtype: str = "float32", threads: int = 1,
                  factors: Sequence[float] = SCALING_FACTORS) -> list[tuple[str, Cell]]:
    """(axis, cell) for every point of the scaling curves other than the preset's default:
    per framework and model, SCALING_AXES[model] times each factor, in SCALING_MODE."""
    out = []
    for fw, model in itertools.product(frameworks, models):
        axis = SCALING_AXES[model]
        model_spec, train_spec = preset(preset_name, model, dtype=dtype)
        default = train_spec.batch_size if axis == "batch_size" else model_spec.seq_len
        for factor in factors:
            value = max(1, round(default * factor))
            if value == default:
                continue
            overrides = {axis: value}
            out.append((axis, Cell(fw, model, preset_name, SCALING_MODE, device, dtype,
                                   threads=threads, **overrides)))
    return out
