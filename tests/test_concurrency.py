"""Concurrent runs and lineage (issue 21): one writer per artifact folder, metrics that carry their
lineage, parameters used only from a manifest that verifies, and notebook 02's simulation
parameters used only when the simulation is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from decaylib import artifacts
from decaylib.data.synth import simulate
from decaylib.workflow.pipeline import ensure_simulation, load_simulation, open_source, save_simulation
from decaylib.workflow.runner import metrics_summary

ROOT = Path(__file__).resolve().parents[1]
SIM = {"n_users": 24, "n_days": 40, "n_categories": 5}
posix_only = pytest.mark.skipif(os.name != "posix", reason="fcntl.flock and SIGKILL are POSIX")


def _start(code: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(p: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


# ------------------------------------------------------------------ one writer per folder
WRITER = """
    import json, os, sys, time
    from decaylib import artifacts
    d, tag, go, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.01)
    time.sleep(delay)
    def slow(p):  # a long write in the middle of the set: the other writer starts meanwhile
        time.sleep(1.2)
        p.write_bytes(tag.encode() * 1000)
    st = artifacts.save_stage(d, "demo", {"a.json": {"tag": tag}, "slow.bin": slow, "b.json": {"tag": tag}})
    got = artifacts.load_stage(d, "demo")
    print(json.dumps({"fp": st.fingerprint, "loaded": got.json("a.json")["tag"]}))
"""


@posix_only
def test_two_writers_of_one_set_never_mix(tmp_path):
    d, go = tmp_path / "data", tmp_path / "go"
    procs = [_start(WRITER, d, tag, go, delay) for tag, delay in (("first", 0.0), ("second", 0.3))]
    assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]  # both imported
    go.touch()
    results = [_finish(p) for p in procs]
    for rc, out, err in results:
        assert rc == 0, err
        assert "terminate called" not in err
    outs = [json.loads(out) for _, out, _ in results]
    st = artifacts.load_stage(d, "demo")  # the set on disk verifies and is one writer's, whole
    assert st.fingerprint in {o["fp"] for o in outs}
    tag = st.json("a.json")["tag"]
    assert st.json("b.json")["tag"] == tag and (d / "slow.bin").read_bytes() == tag.encode() * 1000
    assert "waiting up to" in results[1][2]  # the second writer said that it waited for the first
    assert outs[1]["loaded"] == "second" and st.fingerprint == outs[1]["fp"]


HOLDER = """
    import sys, time
    from decaylib import artifacts
    with artifacts.directory_lock(sys.argv[1], "notebook 02 (test)"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
"""


@posix_only
def test_a_busy_folder_is_waited_for_then_refused_naming_the_pid(tmp_path, capsys):
    p = _start(HOLDER, tmp_path, 30)
    assert p.stdout.readline().strip() == "locked"
    try:
        with pytest.raises(artifacts.DirectoryBusyError,
                           match=rf"^another run is writing {tmp_path} \(pid {p.pid}, notebook 02 \(test\)\): it did not "
                                 r"finish within 1 s; wait for it to end .* DECAYLIB_LOCK_TIMEOUT=<seconds> waits longer$"):
            with artifacts.directory_lock(tmp_path, "a test", timeout=1):
                pass
        assert f"another run (pid {p.pid}, notebook 02 (test)) is writing {tmp_path}: waiting up to 1 s" in capsys.readouterr().err
        # readers wait too: a set is never read while another run writes the folder
        with pytest.raises(artifacts.DirectoryBusyError):
            with artifacts.directory_lock(tmp_path, shared=True, timeout=0.2):
                pass
    finally:
        p.kill()
        p.communicate()


@posix_only
def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    p = _start(HOLDER, tmp_path, 30)
    assert p.stdout.readline().strip() == "locked"
    os.kill(p.pid, signal.SIGKILL)
    p.communicate()
    assert (tmp_path / artifacts.LOCK_NAME).read_text().startswith(f"{p.pid} ")  # its pid stays in the file ...
    t0 = time.monotonic()
    with artifacts.directory_lock(tmp_path, "the next run", timeout=5):  # ... but the system released its lock
        assert (tmp_path / artifacts.LOCK_NAME).read_text() == f"{os.getpid()} the next run\n"
    assert time.monotonic() - t0 < 1


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with artifacts.directory_lock(tmp_path, "outer"):
        st = artifacts.save_stage(tmp_path, "demo", {"a.json": {"x": 1}})  # takes it again: no deadlock
        assert artifacts.load_stage(tmp_path, "demo").fingerprint == st.fingerprint
    with artifacts.directory_lock(tmp_path, shared=True):
        with artifacts.directory_lock(tmp_path, "a write inside a read"):
            artifacts.save_stage(tmp_path, "demo", {"a.json": {"x": 2}})
    assert artifacts.load_stage(tmp_path, "demo").json("a.json") == {"x": 2}


SIM_WRITER = """
    import os, sys, time
    from decaylib.workflow.pipeline import ensure_simulation
    d, go, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    sim = ensure_simulation(d, force=True, verbose=False, n_users=150, n_days=60, n_categories=8, seed=seed)
    print(sim["manifest"].fingerprint)
"""


@posix_only
@pytest.mark.slow
def test_two_simulation_stages_at_once_both_finish(tmp_path):
    """The issue's probe: the simulation stage twice at once into one folder, a few rounds."""
    for r in range(3):
        d, go = tmp_path / f"d{r}", tmp_path / f"go{r}"
        procs = [_start(SIM_WRITER, d, go, seed) for seed in (1, 2)]
        assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
        go.touch()
        results = [_finish(p, timeout=120) for p in procs]
        for rc, _, err in results:
            assert rc == 0 and "terminate called" not in err, err
        st = load_simulation(d)["manifest"]  # verifies: one run's set, whole
        assert st.fingerprint in {out.strip() for _, out, _ in results}


# ------------------------------------------------------------------ notebook 02 twice at once
def test_a_panel_rewritten_by_another_run_keeps_this_runs_metrics_out(tmp_path):
    save_simulation(simulate(seed=3, **SIM), tmp_path)
    a = open_source(tmp_path, verbose=False, seed=3, **SIM)  # notebook 02 with bot_z=4 ...
    a.preprocess(bot_z=4.0)
    b = open_source(tmp_path, verbose=False, seed=3, **SIM)  # ... and a second run with bot_z=2, at the same time
    b.preprocess(bot_z=2.0)
    with pytest.raises(artifacts.StaleArtifactError, match=r"^metrics/02_preprocessing\.json was not written: this run used the "
                       rf"panel \w{{8}} of {tmp_path} but another run rewrote it meanwhile \(it now holds panel \w{{8}}\); "
                       r"rebuild: run this notebook again, one run at a time per data_dir$"):
        a.write_metrics("02_preprocessing", {"headline": {"bot_z": 4.0}})
    assert not (tmp_path / "metrics" / "02_preprocessing.json").exists()
    b.write_metrics("02_preprocessing", {"headline": {"bot_z": 2.0}})
    m = artifacts.read_metrics(tmp_path, "02_preprocessing")
    st = artifacts.load_stage(tmp_path, "panel")
    assert m["headline"]["bot_z"] == st.params["bot_z"] == 2.0
    assert m["data"]["lineage"]["panel"] == st.fingerprint
    # a later stage built from the panel the other run replaced is refused as well, nothing written
    with pytest.raises(artifacts.StaleArtifactError, match="the forecasts set was not written"):
        a.save_stage("forecasts", {"forecasts.parquet": pd.DataFrame({"x": [1]})})
    assert not (tmp_path / "forecasts.parquet").exists()


# ------------------------------------------------------------------ metrics carry their lineage
def test_runner_metrics_marks_numbers_of_another_lineage(tmp_path):
    src = open_source(tmp_path, verbose=False, seed=3, **SIM)
    src.panel()
    src.write_metrics("02_preprocessing", {"headline": {"panel_rows": 10}})
    assert "OTHER LINEAGE" not in metrics_summary(tmp_path)
    # notebook 01 again with n_users 100 (here 30) into the same folder
    st = save_simulation(simulate(seed=3, **{**SIM, "n_users": 30}), tmp_path)
    artifacts.write_metrics(tmp_path, "01_synthetic_events", {"headline": {"n_users": 30}}, lineage={"simulation": st})
    assert artifacts.read_metrics(tmp_path, "01_synthetic_events")["data"] == {"lineage": {"simulation": st.fingerprint}}
    text = metrics_summary(tmp_path)
    lines = text.splitlines()
    assert "01_synthetic_events:" in lines  # of the sets there now: not marked
    old = src.stage("simulation").fingerprint
    assert (f"02_preprocessing:  [OTHER LINEAGE: computed from simulation {old[:8]}, the folder now holds "
            f"{st.fingerprint[:8]}]") in lines
    assert lines[-1] == (f"1 notebook(s) marked OTHER LINEAGE report numbers of other data than the sets in {tmp_path} "
                         "now: run 02_preprocessing again to compare like with like")


def test_notebook_01_records_the_lineage_of_its_metrics():
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / "01_synthetic_events.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert 'write_metrics(data_dir, "01_synthetic_events", metrics, lineage={"simulation": stage})' in code


# ------------------------------------------------------------------ parameters from verified manifests only
def test_parameters_of_an_edited_manifest_are_not_used(tmp_path, capsys):
    save_simulation(simulate(seed=3, **SIM), tmp_path)
    mpath = artifacts.manifest_path(tmp_path, "simulation")
    m = json.loads(mpath.read_text())
    m["params"]["seed"] = 9  # edited by hand
    mpath.write_text(json.dumps(m))
    sim = ensure_simulation(tmp_path, verbose=False, **SIM)  # the set no longer verifies: simulated again ...
    assert sim["meta"]["config"]["seed"] != 9  # ... but not with the edited seed
    assert "simulation.manifest.json in" in capsys.readouterr().out
    # the panel's recorded settings (notebook 02's bot_z) likewise
    src = open_source(tmp_path, verbose=False, **SIM)
    src.preprocess(bot_z=3.5)
    mpath = artifacts.manifest_path(tmp_path, "panel")
    m = json.loads(mpath.read_text())
    m["params"]["bot_z"] = 50.0
    mpath.write_text(json.dumps(m))
    assert artifacts.read_manifest(tmp_path, "panel") is None  # not trusted for its parameters
    capsys.readouterr()
    open_source(tmp_path, verbose=False).panel()
    assert "rebuilt the panel" in capsys.readouterr().out
    assert artifacts.load_stage(tmp_path, "panel").params.get("bot_z") != 50.0


# ------------------------------------------------------------------ notebook 02's "only if missing"
def test_notebook_02_defaults_use_notebook_01s_simulation(tmp_path, capsys):
    save_simulation(simulate(seed=42, **{**SIM, "n_users": 16}), tmp_path)  # notebook 01 with n_users 16
    capsys.readouterr()
    src = open_source(tmp_path, seed=42, **SIM)  # notebook 02 with its defaults (here n_users=24)
    sim = src.simulation()
    assert sim["meta"]["config"]["n_users"] == 16
    assert capsys.readouterr().out == (f"Using the simulation in {tmp_path} made with n_users=16 (notebook 01); "
                                       "n_users=24 given here would only be used if it were missing (run notebook 01 "
                                       "with them to simulate again)\n")
    # missing: simulated with the parameters given
    fresh = tmp_path / "fresh"
    assert ensure_simulation(fresh, verbose=False, seed=1, **SIM)["meta"]["config"]["n_users"] == 24


# ------------------------------------------------------------------ no SIGABRT at interpreter exit
def test_verified_bytes_are_read_from_arrow_memory_not_a_python_file(tmp_path, monkeypatch):
    """The SIGABRT of issue 21 ("terminate called without an active exception" at exit, about 1 run in
    7 when two simulation stages ran at once): a core dump showed an Arrow scanner thread dropping the
    last Python buffer of a ``BytesIO`` during interpreter finalization; taking the GIL there ends the
    thread inside a C++ destructor.  ``StageSet.frame`` now hands Arrow a copy in Arrow's memory."""
    import pyarrow as pa

    st = artifacts.save_stage(tmp_path, "demo", {"a.parquet": pd.DataFrame({"x": [1, 2, 3]})})
    seen = []
    real = artifacts._read_parquet
    monkeypatch.setattr(artifacts, "_read_parquet", lambda src: seen.append(src) or real(src))
    got = artifacts.load_stage(tmp_path, "demo").frame("a.parquet")
    assert isinstance(seen[0], pa.NativeFile) and got["x"].tolist() == [1, 2, 3]
    assert st.fingerprint == artifacts.load_stage(tmp_path, "demo").fingerprint
