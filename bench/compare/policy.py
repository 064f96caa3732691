"""The comparison's policy: the threshold, significance level and steps compare() uses by
default, with what calibrated them."""

from __future__ import annotations

# Calibrated on the project's 2-core VM by benchmarks/calibrate_compare.py, as the perf
# session compares (1 thread, 3 s of samples per process, a stored baseline of 8
# processes per cell against 4, steps normalized by the matmul probe; README, "The
# threshold, calibrated on this VM"): from a pool of 20 + 10 runs measured with issue 8's
# fixed harness, 0 of 200 same-commit comparisons of 9 cells flagged and 100% of cells
# slowed by 25% caught. 0.17 also met both bars there (1 of 200 flagged); 0.20 keeps a
# margin on false alarms, which have grown several-fold in noisy hours before.
DEFAULT_THRESHOLD = 0.20
# ... for comparisons of this many processes per cell: (baseline, current). Fewer make
# more false alarms at the same threshold (6 vs 3: 1.25% of same-commit comparisons).
CALIBRATED_PROCESSES = (8, 4)
DEFAULT_ALPHA = 0.01
DEFAULT_STEPS = "normalized"  # which steps compare() compares: see cell_statistics
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
STEP_CHOICES = ("fast", "normalized", "all")  # see cell_statistics

# fwbench ab (bench/compare/ab.py): processes per cell and side, and the threshold, chosen
# by benchmarks/calibrate_ab.py on the project's 2-core VM (an AMD EPYC, 2026-12-02; README,
# "fwbench ab, calibrated on this VM"): from a pool of 12 A = B pairs and 10 pairs with B
# slowed by 25% per cell, 6 per side flagged 0 of 100 A = B comparisons drawn (2 of them
# disjoint) and caught 95.6% of slowed cells; 4 per side flagged 1 of 100 and caught 90.0%.
# 6 + 6 is the stored-baseline design's 8 + 4 processes per cell, no more.
AB_PROCESSES = 6
AB_THRESHOLD = DEFAULT_THRESHOLD
