"""Each framework's model definition and training step, as the source text of the
impls/<framework>/ files that run (read and parsed, never imported, so no framework
loads), with its lines of code.

What is shown for a model kind: the class or function that impls/<framework>/models.py's
BUILDERS maps the kind to, and the public classes and functions of that file it uses
(a Flax Attention's Block, say), without the `bindings` methods, which only map
parameters to fwbench's canonical layout. For the training step: train.py's Trainer and
the public helpers of that file it uses. Lines of code count neither blank lines,
comments nor docstrings. `python -m inspect` would need the framework imported; the
standard library's ast gives the same text without it.
"""

from __future__ import annotations

import ast
import importlib.util
import textwrap
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Excerpt:
    framework: str
    what: str        # "model" or "training step"
    path: str        # relative to the repository: impls/<framework>/<file>
    names: tuple[str, ...]
    text: str

    @property
    def lines_of_code(self) -> int:
        return count_code_lines(self.text)


def impls_dir() -> Path:
    """Where the impls package's files are (found without importing any framework)."""
    spec = importlib.util.find_spec("impls")
    return Path(list(spec.submodule_search_locations)[0])


def _definitions(tree: ast.Module) -> dict[str, ast.AST]:
    return {node.name: node for node in tree.body
            if isinstance(node, (ast.ClassDef, ast.FunctionDef))}


def _used(node: ast.AST, defined: dict[str, ast.AST]) -> list[str]:
    """Public top-level definitions `node` uses, then theirs, in first-use order."""
    found: list[str] = []
    todo = [node]
    while todo:
        current = todo.pop(0)
        for sub in ast.walk(current):
            name = sub.id if isinstance(sub, ast.Name) else None
            if (name and name in defined and name not in found and defined[name] is not node
                    and not name.startswith(("_", "bind"))):
                found.append(name)
                todo.append(defined[name])
    return found


def _segment(lines: list[str], node: ast.AST) -> str:
    """The definition's lines (decorators included), less its `bindings` methods."""
    start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
    skip = set()
    for sub in getattr(node, "body", []):
        if isinstance(sub, ast.FunctionDef) and sub.name == "bindings":
            skip |= set(range(sub.lineno - 1, sub.end_lineno))
    kept = [line for i, line in enumerate(lines[start - 1:node.end_lineno], start - 1)
            if i not in skip]
    return "\n".join(kept).rstrip()


def _excerpt(framework: str, filename: str, root: str, what: str) -> Excerpt:
    path = impls_dir() / framework / filename
    source = path.read_text()
    tree = ast.parse(source)
    defined = _definitions(tree)
    if root not in defined:
        raise LookupError(f"{path}: no top-level definition {root!r}")
    # in the file's order: helpers come before what uses them
    names = sorted([*_used(defined[root], defined), root], key=lambda n: defined[n].lineno)
    lines = source.splitlines()
    text = "\n\n\n".join(_segment(lines, defined[name]) for name in names)
    return Excerpt(framework, what, f"impls/{framework}/{filename}", tuple(names), text)


def _builder_name(framework: str, kind: str) -> str:
    """The name models.py's BUILDERS gives for `kind` (a class, or Builder(build, bind)'s
    first argument)."""
    path = impls_dir() / framework / "models.py"
    for node in ast.parse(path.read_text()).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "BUILDERS":
            for key, value in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and key.value == kind:
                    if isinstance(value, ast.Call):
                        value = value.args[0]
                    return value.id
    raise LookupError(f"{path}: BUILDERS has no entry for model kind {kind!r}")


def model_excerpt(framework: str, kind: str) -> Excerpt:
    return _excerpt(framework, "models.py", _builder_name(framework, kind), "model")


def training_excerpt(framework: str) -> Excerpt:
    return _excerpt(framework, "train.py", "Trainer", "training step")


def count_code_lines(text: str) -> int:
    """Lines that are neither blank, comments nor part of a docstring."""
    docstring_lines: set[int] = set()
    try:
        tree = ast.parse(textwrap.dedent(text))
    except SyntaxError:
        tree = None
    for node in ast.walk(tree) if tree else []:
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            docstring_lines |= set(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for number, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#")
               and number not in docstring_lines)
