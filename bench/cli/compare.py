"""`fwbench compare` and `fwbench baseline`: per cell, slower, faster or no clear change
against a baseline, beyond the noise (bench/compare/)."""

from __future__ import annotations

import argparse
from typing import Any

from bench.cli.common import UsageError, resolve_run, run_dir, write_verdict

EXAMPLES = {"compare": """\
  fwbench compare stored latest       the latest run against this environment's baseline
  fwbench compare RUN_A RUN_B --threshold 0.1 --json verdict.json""",
            "baseline": """\
  fwbench baseline save latest        the latest run becomes this environment's baseline
  fwbench baseline history"""}


def add_parser(sub: Any) -> None:
    from bench.compare import DEFAULT_ALPHA, DEFAULT_STEPS, DEFAULT_THRESHOLD, STEP_CHOICES

    p = sub.add_parser("compare", help="per cell: slower, faster or no clear change, "
                       "beyond the noise, or failed / missing; exit status 1 on a "
                       "regression or a cell the current run lost")
    p.add_argument("baseline", help="run folder or id, baseline folder, pytest-benchmark "
                   "JSON, or 'stored' (the committed baseline for CURRENT's environment)")
    p.add_argument("current", help="run folder or id, 'latest', or pytest-benchmark JSON")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="minimum slowdown that counts, as a fraction (default %(default)s, "
                   "calibrated on a 2-core VM: see the README)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help="significance level of the Mann-Whitney test (default %(default)s)")
    p.add_argument("--allow-env-diff", action="store_true",
                   help="compare results from different environments anyway")
    p.add_argument("--steps", choices=STEP_CHOICES, default=DEFAULT_STEPS,
                   help="which steps to compare: fast, those taken while the machine ran in "
                   "its fast state; normalized, every step rescaled by the machine-speed "
                   "matmul probe; all, every step as measured (default %(default)s; "
                   "bench.speed.speedprobe)")
    p.add_argument("--markdown", default=None, metavar="FILE",
                   help="also append the Markdown to FILE (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the verdict as JSON to FILE: every cell's numbers, the "
                   "counts and the exit status (2 with the error when nothing was compared)")
    p.add_argument("--allow-missing", action="store_true",
                   help="exit 0 although cells the baseline measured failed or are missing "
                   "in the current run (they are still listed)")
    p.set_defaults(func=command)

    p = sub.add_parser("baseline", help="save a run as this environment's baseline (its "
                       "history keeps an entry per save), print where it lives, or print "
                       "its history")
    p.add_argument("action", choices=["save", "path", "history"])
    p.add_argument("run", nargs="?", default=None, help="run folder or id (default: latest)")
    p.add_argument("--force", action="store_true", help="replace an existing baseline")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="save a run with failed or missing cells anyway")
    p.set_defaults(func=baseline_command)


def command(args: argparse.Namespace) -> int:
    return verdict(args)[0]


def verdict(args: argparse.Namespace) -> tuple[int, Any, str]:
    """Compare as the flags say, print the Markdown and write what was asked for;
    (exit status, the per-cell table, the Markdown)."""
    from bench import compare

    try:
        current = compare.load(resolve_run(args.current))
        base_source = (compare.stored_baseline(current) if args.baseline == "stored"
                       else resolve_run(args.baseline))
        base = compare.load(base_source)
        table = compare.compare(base, current, args.threshold, args.alpha, args.allow_env_diff,
                                steps=args.steps)
    except compare.CompareError as exc:
        raise UsageError(str(exc)) from None
    differences = compare.environment_differences(base, current)
    text = compare.markdown(table, base, current, args.threshold, args.alpha, differences)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as f:  # append: $GITHUB_STEP_SUMMARY collects steps
            f.write(text + "\n")
    status = 1 if len(compare.failing(table, args.allow_missing)) else 0
    if args.json:
        write_verdict(args.json, compare.verdict_document(
            "compare", table, base, current, args.threshold, args.alpha, args.steps, status,
            differences, args.allow_missing))
    return status, table, text


def baseline_command(args: argparse.Namespace) -> int:
    from bench import compare

    if args.action == "save":
        try:
            folder = compare.save_baseline(run_dir(args.run or "latest"), args.force,
                                           args.allow_incomplete)
        except compare.CompareError as exc:
            raise UsageError(str(exc)) from None
        print(f"baseline saved: {folder} (commit it to keep it)")
        return 0
    side = compare.load(run_dir(args.run or "latest"))
    folder = compare.baselines_dir() / compare.environment_key(side.environment)
    if args.action == "path":
        print(folder)
        return 0
    from bench.compare import history

    table = history.frame(folder)
    if table.empty:
        raise UsageError(f"no baseline history in {folder}: save a baseline with "
                         f"`fwbench baseline save RUN`")
    table["cell"] = table["framework"] + "/" + table["model"] + "/" + table["mode"]
    table["entry"] = (table["entry"].astype(str) + ": " + table["saved"].str[:10] + " "
                      + table["git_commit"].fillna("?").str[:7])
    wide = table.pivot_table(index="cell", columns="entry", values="median_ms", sort=False)
    print(f"baseline history of {folder.name}: median ms per step, one column per save")
    print(wide.round(3).to_string())
    return 0
