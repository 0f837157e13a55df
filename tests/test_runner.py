import nbformat
import pytest

from decaylib.runner import UnknownParameterError, build_index, check_parameters, execute_notebook, list_notebooks, metrics_summary


def _nb(tmp_path, body="y = x * 2\nprint(y)"):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("x = 1  # a knob")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, path)
    return path


def test_unknown_parameter_is_rejected(tmp_path):
    path = _nb(tmp_path)
    check_parameters(path, {"x": 3})
    with pytest.raises(UnknownParameterError, match=r"no parameter\(s\) \['xx'\]; its parameters are \['x'\]"):
        check_parameters(path, {"xx": 3})


@pytest.mark.notebook
def test_execute_writes_output_atomically(tmp_path):
    path = _nb(tmp_path)
    out = tmp_path / "out" / "01_demo.ipynb"
    nb = execute_notebook(path, out, {"x": 21})
    assert out.exists()
    assert "42" in "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    bad = _nb(tmp_path, body="raise ValueError('clear message')")
    out2 = tmp_path / "out" / "bad.ipynb"
    with pytest.raises(Exception, match="clear message"):
        execute_notebook(bad, out2, {"x": 1})
    assert not out2.exists() and (tmp_path / "out" / "bad.failed.ipynb").exists()


def test_list_notebooks_and_index(tmp_path):
    _nb(tmp_path)
    assert [p.name for p in list_notebooks(tmp_path)] == ["01_demo.ipynb"]
    with pytest.raises(ValueError, match="no notebook matches"):
        list_notebooks(tmp_path, only=["09"])
    (tmp_path / "01_demo.html").write_text("<html></html>")
    index = build_index(tmp_path).read_text()
    assert 'href="01_demo.html"' in index
    assert "no metrics" in metrics_summary(tmp_path)
