"""The graph study's old module name, kept because the README documented
`bench.graphstudy.load(path)` before the study moved to bench/graphs/study.py; new code
uses bench.graphs.study."""

from bench.graphs.study import load  # noqa: F401
