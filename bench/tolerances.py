"""Every parity tolerance, in one table, each with the reason for its size.

Errors are relative, in the max norm, per tensor: max|a - b| / max|b| for each tensor
(its denominator floored at 1e-3 of the largest |b| of all tensors, so a tensor of
near-zero gradients is judged against the gradient's scale, not against zero), then the
largest over tensors. A tensor whose exact value is zero (the gradient of an inert
parameter, canonical.inert_params) is judged against that largest |b| itself: all it
holds is the rounding residue of sums of terms of the gradients' scale that cancel, and
how large that residue is depends on the CPU's kernels (float32: 7e-5 of the floor on
an AMD EPYC, so the floor would fail on one machine and pass on another).
Machine epsilon: 2.2e-16 (float64), 1.2e-7 (float32).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

EPS = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps)}


@dataclass(frozen=True)
class Tolerance:
    value: float  # largest relative error that passes
    why: str


TOLERANCES: dict[tuple[str, str], Tolerance] = {
    # --- float64: rounding alone is ~1e-15 on the tiny specs; anything above 1e-12
    # --- is a difference in math (a constant rounded to float32, a wrong layout).
    ("forward", "float64"): Tolerance(1e-12, "a few hundred ulps of accumulated rounding"),
    ("loss", "float64"): Tolerance(1e-12, "as forward"),
    ("grads", "float64"): Tolerance(1e-11, "backward adds one more pass of rounding"),
    ("optimizer", "float64"): Tolerance(1e-11, "20 updates, each exact to a few ulps"),
    ("trajectory", "float64"): Tolerance(1e-9, "20 steps amplify 1e-12 differences in "
                                         "gradients by at most ~1e3 on the tiny specs"),
    ("compiled", "float64"): Tolerance(1e-9, "as trajectory: compilers reorder sums"),
    ("data_parallel", "float64"): Tolerance(1e-12, "N replicas vs one device on the same "
                                            "batch differ only in the order of the batch's "
                                            "sums (per replica, then the all-reduce): a few "
                                            "ulps a step, 20 steps; largest seen 2.4e-15"),
    # --- float32: relative rounding 6e-8 per op, accumulated over reductions of
    # --- ~10-100 terms and, for the LSTM, over 6 time steps.
    ("forward", "float32"): Tolerance(1e-5, "the design's bar for float32 outputs"),
    ("loss", "float32"): Tolerance(1e-5, "as forward"),
    ("grads", "float32"): Tolerance(1e-4, "backward through softmax/LayerNorm loses about "
                                    "one more digit than forward"),
    ("optimizer", "float32"): Tolerance(1e-5, "20 float32 updates, rounding each to 6e-8"),
    ("trajectory", "float32"): Tolerance(1e-4, "grads tolerance, carried through 20 steps "
                                         "(steps are lr-scaled, so errors do not grow)"),
    ("compiled", "float32"): Tolerance(1e-4, "as trajectory"),
    ("data_parallel", "float32"): Tolerance(1e-5, "as float64: the order of the batch's "
                                            "sums, a few float32 ulps (6e-8) a step over 20 "
                                            "steps; largest seen 1.1e-6"),
}

# Finite differences (float64 only): the round-off in each loss value is taken as at
# most this many ulps of max(|loss|, 1); see finite_difference_bound.
FD_ROUNDOFF_ULPS = 64.0
FD_STEP = 1e-5  # central-difference step h (parameter units)

# The drift between two optimizer forms, simulated on the same gradients, is first
# order; feedback through the changed parameters adds a higher-order term. Over 20
# small steps that term stays well below the first-order one, so doubling covers it.
FORM_DRIFT_FACTOR = 2.0


def get(check: str, dtype: str) -> Tolerance:
    return TOLERANCES[(check, dtype)]


def relative_error(a: Mapping[str, np.ndarray] | np.ndarray,
                   b: Mapping[str, np.ndarray] | np.ndarray,
                   exactly_zero: Collection[str] = ()) -> float:
    """Max-norm relative error of `a` against `b`, per tensor (see module docstring);
    tensors named in `exactly_zero` are judged against the largest |b| of all tensors."""
    if not isinstance(b, Mapping):
        a, b = {"": a}, {"": b}
    if a.keys() != b.keys():
        raise ValueError(f"different names: {sorted(set(a) ^ set(b))}")
    a64 = {k: np.asarray(v, dtype=np.float64) for k, v in a.items()}
    b64 = {k: np.asarray(v, dtype=np.float64) for k, v in b.items()}
    scale = max(float(np.abs(v).max(initial=0.0)) for v in b64.values())
    worst = 0.0
    for k in b64:
        if a64[k].shape != b64[k].shape:
            raise ValueError(f"{k}: shape {a64[k].shape} vs {b64[k].shape}")
        diff = float(np.abs(a64[k] - b64[k]).max(initial=0.0))
        if not np.isfinite(diff):
            return float("inf")
        denom = scale if k in exactly_zero else max(float(np.abs(b64[k]).max(initial=0.0)),
                                                      1e-3 * scale)
        worst = max(worst, diff / denom if denom > 0 else (0.0 if diff == 0 else float("inf")))
    return worst


def finite_difference_bound(fd_h: Mapping[str, np.ndarray], fd_2h: Mapping[str, np.ndarray],
                            loss: float, step: float = FD_STEP) -> float:
    """Bound on |exact gradient - central difference with step h|, as a relative error.

    Truncation: D(h) = g + c h^2 + O(h^4), so D(2h) - D(h) = 3 c h^2 and the truncation
    error of D(h) is |D(2h) - D(h)| / 3 (taken as the max over elements). Round-off: each
    loss value is off by at most d = FD_ROUNDOFF_ULPS * eps * max(|loss|, 1), so D(h) by
    at most d / h. Both are divided by the gradient's scale, as relative_error does.
    """
    trunc = max(float(np.abs(np.asarray(fd_2h[k]) - np.asarray(fd_h[k])).max(initial=0.0))
                for k in fd_h) / 3.0
    roundoff = FD_ROUNDOFF_ULPS * EPS["float64"] * max(abs(loss), 1.0) / step
    scale = max(float(np.abs(np.asarray(v)).max(initial=0.0)) for v in fd_h.values())
    return (trunc + roundoff) / scale if scale > 0 else float("inf")
