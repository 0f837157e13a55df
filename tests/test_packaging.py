"""The conda and pip dependency lists name the same packages; the build files hang together."""

import re

import tomllib

from tests.conftest import ROOT

# conda-forge spells a few packages differently from PyPI.
CONDA_TO_PIP = {"pytorch": "torch", "python-duckdb": "duckdb"}


def _norm(name: str) -> str:
    return re.split(r"[<>=!~ \[]", name.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pip_packages():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = [d for deps in data["project"].get("optional-dependencies", {}).values() for d in deps]
    return {_norm(d) for d in [*data["project"]["dependencies"], *extras]}


def conda_packages():
    names = set()
    in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)
        if not m:  # the pip: sub-list (packages conda-forge does not have), not "-e ."
            m = re.match(r"^      - ([A-Za-z0-9][A-Za-z0-9_.\-]*)", line)
        if in_deps and m:
            names.add(CONDA_TO_PIP.get(_norm(m.group(1)), _norm(m.group(1))))
    return names - {"python", "pip"}


def test_environment_yml_matches_pyproject():
    pip, conda = pip_packages(), conda_packages()
    assert pip == conda, f"only in pyproject: {sorted(pip - conda)}; only in environment.yml: {sorted(conda - pip)}"


def test_core_packages_are_declared():
    assert {"jupyterlab", "torch", "pandas", "matplotlib", "papermill", "nbval", "pyarrow"} <= pip_packages()


def test_makefile_pins_cpu_torch_and_ci_calls_make_test():
    mk = (ROOT / "Makefile").read_text()
    assert re.search(r"^TORCH \?= torch==", mk, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make run" in readme
