"""Notebook parameters (issue 9): relative paths start at the repository root wherever papermill
runs, a misspelt name or an invalid value stops a notebook in its first cells under the plain
papermill CLI, and ``make lab`` serves the whole repository."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from decaylib.workflow import params as P
from decaylib.workflow.params import (
    ParameterError,
    UnknownParameterError,
    check_parameters,
    project_path,
    validate,
)
from decaylib.workflow.runner import list_notebooks, notebook_parameters
from tests.conftest import NOTEBOOKS, ROOT

PAPERMILL = Path(sys.executable).parent / "papermill"


# ---- where relative paths start ------------------------------------------------------------------
def test_relative_paths_start_at_the_repository_root_from_any_working_directory(tmp_path, monkeypatch):
    for cwd in (ROOT, NOTEBOOKS, tmp_path):
        monkeypatch.chdir(cwd)
        assert project_path("data/generated") == ROOT / "data" / "generated"
        assert project_path(tmp_path / "x") == tmp_path / "x"  # absolute: as given
    assert project_path("~/x") == Path.home() / "x"


def test_root_is_found_from_the_working_directory_when_the_library_is_installed_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "REPO_ROOT", tmp_path / "site-packages")  # not a checkout
    monkeypatch.chdir(NOTEBOOKS)
    assert P.repo_root() == ROOT and project_path("data/x") == ROOT / "data" / "x"
    monkeypatch.chdir(tmp_path)  # outside any checkout: the working directory
    assert P.repo_root() is None and project_path("data/x") == tmp_path / "data" / "x"


def test_open_source_and_the_report_default_use_the_repository_root(tmp_path, monkeypatch):
    from decaylib.workflow.pipeline import open_source
    from decaylib.workflow.runner import _report_data_dir

    monkeypatch.chdir(tmp_path)
    src = open_source("data/generated", verbose=False)
    assert src.data_dir == ROOT / "data" / "generated"
    with pytest.raises(FileNotFoundError, match="relative paths start at the repository root"):
        open_source("data/generated", "no_such_shop.csv", verbose=False)

    class Args:
        report_data_dir = None

    assert _report_data_dir(Args, NOTEBOOKS / "07_user_report.ipynb") == (ROOT / "data" / "generated").resolve()


# ---- rules ---------------------------------------------------------------------------------------
def test_every_notebook_has_rules_and_a_check_cell_after_its_parameters():
    import nbformat

    nbs = list_notebooks(NOTEBOOKS)
    assert sorted(P.RULES) == [nb.stem for nb in nbs]
    for nb in nbs:
        defaults = {k: ast.literal_eval(v) for k, v in notebook_parameters(nb).items()}
        assert set(P.RULES[nb.stem]) == set(defaults), nb.name
        resolved = validate(nb.stem, defaults)  # the defaults pass, and their input files exist
        assert resolved["data_dir"] == str(ROOT / "data" / "generated"), nb.name
        cells = nbformat.read(nb, as_version=4).cells
        i = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
        assert f'check_parameters(globals(), "{nb.stem}")' in cells[i + 1].source, nb.name
        assert "../" not in cells[i].source, nb.name  # defaults are relative to the repository root


@pytest.mark.parametrize("notebook, values, message", [
    ("01_synthetic_events", {"seed": -1}, "seed must be a non-negative integer, got -1"),
    ("01_synthetic_events", {"n_users": 1}, "n_users must be at least 10 (fewer users"),
    ("01_synthetic_events", {"n_days": 10.5}, "n_days must be an integer, got 10.5"),
    ("03_forecasting", {"epochs": 0}, "epochs must be a positive integer, got 0"),
    ("03_forecasting", {"horizon": True}, "horizon must be a positive integer, got True"),
    ("03_forecasting", {"seq_length": 1}, "seq_length must be at least 2"),
    ("03_forecasting", {"cell": "transformer"}, "cell must be one of ['lstm', 'gru', 'rnn'], got 'transformer'"),
    ("03_forecasting", {"device": "tpu"}, "device must be 'auto', 'cpu', 'cuda'"),
    ("03_forecasting", {"dropout": 1.0}, "dropout must be a number in [0, 1), got 1.0"),
    ("03b_forecasting_advanced", {"sweep_hidden": [16, 0]}, "sweep_hidden[1] must be a positive integer, got 0"),
    ("05_decay_points", {"prominence": 1.5}, "prominence must be a number in (0, 1), got 1.5"),
    ("06_recommendations", {"cutoff_day": -3}, "cutoff_day must be a non-negative integer, got -3"),
    ("06_recommendations", {"sar_tune_days": 0}, "sar_tune_days must be a positive integer, got 0"),
    ("06_recommendations", {"sar_tune_days": 7.5}, "sar_tune_days must be a positive integer, got 7.5"),
    ("06_recommendations", {"sar_half_lives": [1.0, 0]}, "sar_half_lives[1] must be a number > 0, got 0"),
    ("06_recommendations", {"sar_half_lives": []}, "sar_half_lives must be a non-empty list, got []"),
    ("06_recommendations", {"sar_half_lives": 30}, "sar_half_lives must be a non-empty list, got 30"),
    ("07_user_report", {"user_id": " "}, "user_id must be an integer or a non-empty string id"),
    ("04_decay_rate", {"ebbinghaus_csv": "data/nope.csv"},
     f"ebbinghaus_csv 'data/nope.csv' does not exist: {ROOT / 'data' / 'nope.csv'} (relative paths start at the repository root"),
    ("02_preprocessing", {"events_path": "data"}, "events_path 'data' is a folder, not a file"),
    ("08_real_data", {"data_dir": "README.md"}, "data_dir 'README.md' is a file, not a folder"),
])
def test_every_parameter_is_validated_with_a_message_naming_it(notebook, values, message):
    with pytest.raises(ParameterError) as err:
        validate(notebook, values)
    assert message in str(err.value)


def test_cross_check_and_accepted_values():
    with pytest.raises(ParameterError, match="n_fresh must be at most k = 3"):
        validate("06_recommendations", {**{k: ast.literal_eval(v) for k, v in
                                           notebook_parameters(NOTEBOOKS / "06_recommendations.ipynb").items()},
                                        "k": 3, "n_fresh": 4})
    with pytest.raises(ParameterError, match="ar_lags must be at most seq_length = 14"):
        validate("03b_forecasting_advanced", {**{k: ast.literal_eval(v) for k, v in
                                                 notebook_parameters(NOTEBOOKS / "03b_forecasting_advanced.ipynb").items()},
                                              "ar_lags": 30})
    ok = validate("03_forecasting", {"device": "cuda:1", "max_train_windows": None, "learning_rate": 1})
    assert ok["device"] == "cuda:1"
    assert validate("07_user_report", {"user_id": "C12347"})["user_id"] == "C12347"
    assert validate("06_recommendations", {"sar_tune_days": 28, "sar_half_lives": [7, 30.0, 730]}) == {
        "sar_tune_days": 28, "sar_half_lives": [7, 30.0, 730]}
    assert validate("06_recommendations", {"sar_tune_days": None, "sar_half_lives": None}) == {
        "sar_tune_days": None, "sar_half_lives": None}
    assert validate("02_preprocessing", {"events_mapping": {"event_map": "purchase"}})["events_mapping"] == {"event_map": "purchase"}


def test_simulator_names_the_parameter():
    from decaylib.data.synth import SimConfig, simulate

    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        simulate(seed=-1)
    with pytest.raises(ValueError, match="n_users must be at least 10 .*got 1"):
        SimConfig(n_users=1)


def test_runner_validates_values_before_a_kernel_starts():
    from decaylib.workflow.runner import check_parameters as runner_check

    with pytest.raises(ParameterError, match="seed must be a non-negative integer, got -1"):
        runner_check(NOTEBOOKS / "01_synthetic_events.ipynb", {"seed": -1})


# ---- the check cell ------------------------------------------------------------------------------
def _defaults(stem):
    return {k: ast.literal_eval(v) for k, v in notebook_parameters(NOTEBOOKS / f"{stem}.ipynb").items()}


def test_check_cell_in_a_plain_namespace():
    ns = {**_defaults("04_decay_rate"), "check_parameters": check_parameters}
    check_parameters(ns, "04_decay_rate")
    assert ns["data_dir"] == str(ROOT / "data" / "generated")
    assert ns["ebbinghaus_csv"] == str(ROOT / "data" / "ebbinghaus" / "ebbinghaus_1885.csv")
    with pytest.raises(UnknownParameterError,
                       match=r"^04_decay_rate.ipynb has no parameter\(s\) \['mc_replicate'\]; its parameters are \['data_dir'"):
        check_parameters({**_defaults("04_decay_rate"), "mc_replicate": 5}, "04_decay_rate")
    with pytest.raises(NameError, match="run the parameters cell"):
        check_parameters({"seed": 1}, "04_decay_rate")


def test_check_cell_in_a_kernel_looks_only_at_papermills_injected_cell():
    base = {**_defaults("01_synthetic_events"), "np": 1.0, "panel": [1]}  # an interactive kernel's leftovers
    history = ["", "data_dir = ...", "# Parameters\nn_user = 50\nseed = 3\n", "check_parameters(...)"]
    with pytest.raises(UnknownParameterError, match=r"has no parameter\(s\) \['n_user'\]"):
        check_parameters({**base, "n_user": 50, "In": history}, "01_synthetic_events")
    # re-running the notebook in a used kernel: no injected cell, the leftovers are not parameters
    check_parameters({**base, "In": ["", "data_dir = ...", "check_parameters(...)"]}, "01_synthetic_events")
    ok = {**base, "In": ["", "x", "# Parameters\nPAPERMILL_INPUT_PATH = 'a'\nseed = 3\n", "check"]}
    check_parameters(ok, "01_synthetic_events")


# ---- the plain papermill CLI ---------------------------------------------------------------------
def _papermill(args, cwd, timeout=240):
    if not PAPERMILL.exists():
        pytest.skip(f"no papermill next to {sys.executable}")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([str(PAPERMILL), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
@pytest.mark.notebook
def test_papermill_cli_with_a_misspelt_name_fails_with_the_runners_message(tmp_path):
    out = _papermill(["notebooks/03_forecasting.ipynb", str(tmp_path / "o.ipynb"), "-p", "n_user", "50"], cwd=ROOT)
    assert out.returncode != 0
    assert "03_forecasting.ipynb has no parameter(s) ['n_user']; its parameters are ['batch_size'," in out.stdout + out.stderr
    cells = [c for c in json.loads((tmp_path / "o.ipynb").read_text())["cells"] if c["cell_type"] == "code"]
    check = 1 + next(i for i, c in enumerate(cells) if "injected-parameters" in c["metadata"].get("tags", []))
    assert "check_parameters(globals()" in "".join(cells[check]["source"])  # the check follows papermill's cell
    assert all(c.get("execution_count") is None for c in cells[check + 1:])  # and nothing after it ran


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("name, value, message", [
    ("seed", "-1", "ParameterError: seed must be a non-negative integer, got -1"),
    ("n_users", "1", "ParameterError: n_users must be at least 10"),
])
def test_papermill_cli_with_an_invalid_value_names_the_parameter(name, value, message, tmp_path):
    out = _papermill(["notebooks/01_synthetic_events.ipynb", str(tmp_path / "o.ipynb"), "-p", name, value,
                      "-p", "data_dir", str(tmp_path / "data")], cwd=ROOT)
    assert out.returncode != 0 and message in out.stdout + out.stderr
    assert not (tmp_path / "data").exists()  # stopped before anything was written


@pytest.mark.slow
@pytest.mark.notebook
def test_papermill_cli_relative_data_dir_lands_in_the_repository_from_root_and_from_notebooks(tmp_path):
    rel = f"build/.test-params-{uuid.uuid4().hex[:8]}"  # git-ignored, removed below
    small = ["-p", "n_users", "20", "-p", "n_categories", "4", "-p", "n_days", "40", "-p", "seed", "3"]
    try:
        for cwd, nb in ((ROOT, "notebooks/01_synthetic_events.ipynb"), (NOTEBOOKS, "01_synthetic_events.ipynb")):
            data = f"{rel}/{cwd.name}"
            out = _papermill([nb, str(tmp_path / f"{cwd.name}.ipynb"), "-p", "data_dir", data, *small], cwd=cwd)
            assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
            metrics = ROOT / data / "metrics" / "01_synthetic_events.json"
            assert json.loads(metrics.read_text())["summary"]["n_users"] == 20
            assert not (cwd / data).exists() or cwd == ROOT  # never beside the caller (notebooks/...)
            assert not (ROOT.parent / data).exists()  # never in the repository's parent
    finally:
        shutil.rmtree(ROOT / rel, ignore_errors=True)


# ---- make lab ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.notebook
def test_make_lab_serves_the_repository_and_opens_on_notebooks(tmp_path):
    """The real `make lab` (venv already set up), as root or not, with extra options via LAB_ARGS."""
    jupyter = Path(sys.executable).parent / "jupyter"
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    if not jupyter.exists() or subprocess.run([str(jupyter), "lab", "--version"], capture_output=True).returncode:
        pytest.skip(f"jupyter lab is not installed next to {sys.executable}")
    port, token = _free_port(), uuid.uuid4().hex
    stamp = tmp_path / "stamp"  # stands in for the set-up virtual environment: make must not reinstall
    stamp.touch()
    env = {**os.environ, "MAKEFLAGS": "", "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"BIN={Path(sys.executable).parent}", f"STAMP={stamp}",
         f"LAB_ARGS=--no-browser --ip=127.0.0.1 --port={port} --port-retries=0 --ServerApp.token={token}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def get(path, follow=True):
        req = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
        opener = urllib.request.build_opener(*([] if follow else [_NoRedirect()]))
        with opener.open(req, timeout=10) as r:
            return r.status, r.headers, r.read()

    try:
        deadline = time.time() + 90
        while True:
            try:
                get("/api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if proc.poll() is not None or time.time() > deadline:
                    log.flush()
                    pytest.fail(f"jupyter lab did not answer (exit {proc.poll()}):\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        for folder, expected in (("decaylib", "schema.py"), ("notebooks", "01_synthetic_events.ipynb")):
            status, _, body = get(f"/api/contents/{folder}")
            assert status == 200 and expected in {c["name"] for c in json.loads(body)["content"]}, folder
        with pytest.raises(urllib.error.HTTPError) as redirect:
            get("/", follow=False)
        assert redirect.value.headers["Location"].split("?")[0].endswith("/lab/tree/notebooks")
    finally:
        # jupyter first (make then exits and reaps it, so no orphan is left), then anything left
        for pid in _group_members(proc.pid):
            os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _group_members(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` other than its leader (Linux /proc; else the leader)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if int(fields[2]) == pgid and pid != pgid:
            members.append(pid)
    return members or [pgid]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
