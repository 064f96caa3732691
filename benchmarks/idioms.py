"""The idiom audit: every adapter's model against the idioms an expert would try instead.

For each framework x model kind (attention also at each --seq-lens), one worker process
(bench.workers, task bench.speed.idioms:audit_task, pinned to --threads CPUs with the
cells' thread settings) builds each variant of impls/<framework>/idioms.py from the same
canonical weights, checks its trajectory against the adapter's idiom in float64 and
float32 (5 Adam steps, losses and parameters, the parity tolerance of trajectories), and
times all of them in float32, compiled, taking turns (bench/speed/idioms.py has the
rules). It prints a Markdown table (the README's idiom table) and writes the JSON.

    python benchmarks/idioms.py [--frameworks tf,torch,jax] [--models mlp,attention,lstm,rnn]
        [--preset small] [--seq-lens 64,256] [--rounds 7] [--threads N]
        [--output results/idioms.json]

`fwbench report` shows the newest results/idioms*.json (or --idioms FILE): the table and
where a framework's fastest idiom that passes parity would change the frameworks' ranking.

Exit status 0 when every audit ran, 1 when one failed, 2 for bad arguments. A variant
that is faster than the adapter's idiom is reported, not an error: the README says why
each one was or was not taken.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import adapters, environment, results, workers  # noqa: E402
from bench.spec import MODELS  # noqa: E402
from bench.speed.cells import MatrixError, parse_list  # noqa: E402

TIMEOUT_S = 1800.0  # one framework x kind: a few compilations per variant and dtype


def _ratio_text(row: dict[str, Any]) -> str:
    return "1 (chosen)" if row["chosen"] else f"{row['ratio_to_chosen']:.2f}"


def _parity_text(row: dict[str, Any]) -> str:
    parts = []
    for dtype in ("float64", "float32"):
        p = row["parity"].get(dtype)
        if p is not None:
            parts.append(f"{'ok' if p['passed'] else 'FAIL'} {p['error']:.0e}")
    return " / ".join(parts)


def table(doc: dict[str, Any]) -> str:
    """The audit as a Markdown table: one row per variant, the adapter's idiom first."""
    lines = ["| framework | model | T | idiom | ms/step | vs chosen | parity f64 / f32 |",
             "|---|---|---|---|---|---|---|"]
    for run in doc["runs"]:
        for audit in run["audits"]:
            variants = sorted(audit["variants"].items(), key=lambda kv: not kv[1]["chosen"])
            for name, row in variants:
                marker = " **(fastest passing)**" if name == audit["fastest_passing"] else ""
                lines.append(f"| {run['framework']} | {audit['kind']} | {audit['seq_len'] or ''} | "
                             f"{name}: {row['idiom']}{marker} | {row['median_ms']:.3g} | "
                             f"{_ratio_text(row)} | {_parity_text(row)} |")
    return "\n".join(lines)


def audit(framework: str, kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    job = workers.Job(
        "bench.speed.idioms:audit_task",
        {"framework": framework, "kinds": [kind], "preset": args.preset, "threads": args.threads,
         "rounds": args.rounds, "seq_lens": args.seq_lens},
        threads=args.threads, cores=tuple(workers.affinity(args.threads)), timeout_s=TIMEOUT_S)
    outcome = workers.run(job, tmp / f"{framework}-{kind}.log")
    if not outcome.ok:
        raise RuntimeError(outcome.describe())
    return outcome.value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frameworks", default=",".join(adapters.FRAMEWORKS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seq-lens", default="64,256", help="attention's sequence lengths")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    # under the results folder (FWBENCH_RESULTS), where `fwbench report` looks for it
    parser.add_argument("--output", type=Path, default=results.RESULTS_DIR / "idioms.json")
    args = parser.parse_args(argv)
    try:
        frameworks = parse_list(args.frameworks, adapters.FRAMEWORKS, "--frameworks")
        kinds = parse_list(args.models, MODELS, "--models")
        args.seq_lens = [int(n) for n in args.seq_lens.split(",") if n.strip()]
        if any(n < 1 for n in args.seq_lens):
            raise MatrixError(f"--seq-lens {args.seq_lens}: lengths must be positive")
        if args.rounds < 2:
            raise MatrixError(f"--rounds {args.rounds}: a ratio per round needs at least 2")
        workers.affinity(args.threads)
    except (MatrixError, workers.WorkerError) as exc:
        print(f"idioms: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # int() of a --seq-lens item
        print(f"idioms: --seq-lens {args.seq_lens!r}: {exc}", file=sys.stderr)
        return 2
    doc: dict[str, Any] = {"schema": "fwbench.idioms/1", "preset": args.preset,
                           "threads": args.threads, "rounds": args.rounds,
                           "environment": environment.describe(), "runs": [], "failed": []}
    with tempfile.TemporaryDirectory() as tmp, workers.stop_on_signals():
        for framework in frameworks:
            if not adapters.installed(framework):
                print(f"{framework}: not installed, skipped", file=sys.stderr)
                continue
            run: dict[str, Any] = {"framework": framework, "audits": []}
            doc["runs"].append(run)
            for kind in kinds:
                try:
                    value = audit(framework, kind, args, Path(tmp))
                except RuntimeError as exc:
                    doc["failed"].append({"framework": framework, "kind": kind, "error": str(exc)})
                    print(f"{framework} {kind}: FAILED: {str(exc).splitlines()[0]}", flush=True)
                    continue
                run.update(versions=value["versions"], settings=value["settings"])
                run["audits"] += value["audits"]
                for each in value["audits"]:
                    print(f"{framework} {kind} T={each['seq_len']}: fastest passing "
                          f"{each['fastest_passing']}", flush=True)
                results.write_json(args.output, doc)  # a long run keeps what it measured
    results.write_json(args.output, doc)
    print(table(doc))
    print(f"written to {args.output}")
    return 1 if doc["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
