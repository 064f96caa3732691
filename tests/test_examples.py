"""The example notebook (issue 23) runs headless from top to bottom, so it never rots."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import adapters

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "exercise5.ipynb"


def test_the_notebook_is_valid_and_stored_without_outputs():
    nbformat = pytest.importorskip("nbformat", reason="nbformat not installed (pip install 'fwbench[test]')")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert "import fwbench" in code[0].source


@pytest.mark.slow
@pytest.mark.skipif(not any(adapters.installed(fw) for fw in adapters.FRAMEWORKS),
                    reason="no framework installed (pip install 'fwbench[all]')")
def test_the_example_notebook_runs_headless(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="nbformat not installed (pip install 'fwbench[test]')")
    nbclient = pytest.importorskip("nbclient", reason="nbclient not installed (pip install 'fwbench[test]')")
    pytest.importorskip("statsmodels", reason="its study needs statsmodels (pip install 'fwbench[studies]')")
    monkeypatch.setenv("FWBENCH_RESULTS", str(tmp_path / "results"))  # the kernel inherits it
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # raises CellExecutionError, with the cell and its traceback, if any cell fails
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) >= 2  # the report's figures, inline
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "checks pass" in printed and "- Parity: " in printed and "- Forecast, 1 month(s)" in printed
    code_view = nb.cells[-2].outputs[0].data["text/html"]  # fwbench.code("lstm")
    assert code_view.count("<pre><code>") == 2 * len([fw for fw in adapters.FRAMEWORKS])
    assert (tmp_path / "results" / "report" / "report.html").exists()
