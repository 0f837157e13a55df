"""Lineage and atomic sets (issue 9): every stage's files are written as one set with a manifest,
and loading verifies the set and the inputs it was built from; a missing, incomplete, corrupt or
stale set is rebuilt with one line saying why, or refused with one line naming it. Never a mix."""

from __future__ import annotations

import json
import os
import random
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
from decaylib.workflow.pipeline import (
    ensure_simulation,
    load_simulation,
    open_source,
    save_simulation,
)

ROOT = Path(__file__).resolve().parents[1]
SIM = {"n_users": 24, "n_days": 40, "n_categories": 5}
TINY = {"n_users": 12, "n_days": 30, "n_categories": 4}  # the fault-injection runs
posix_only = pytest.mark.skipif(os.name != "posix" or not Path("/proc/self/fd").exists(),
                                reason="umask, SIGKILL and /proc/self/fd are POSIX/Linux")


def assert_consistent(sim: dict) -> None:
    """One simulation's events, truth and metadata belong together."""
    meta, st = sim["meta"], sim["manifest"]
    assert meta["config"] == st.params
    assert len(sim["events"]) == meta["summary"]["n_events"]
    real = sim["truth"][~sim["truth"]["is_bot"]]
    assert len(real) == meta["summary"]["n_pairs"]
    assert set(sim["events"]["user_id"]) <= set(range(meta["config"]["n_users"]))
    assert set(sim["truth"]["user_id"]) <= set(range(meta["config"]["n_users"]))


# ---------------------------------------------------------------------------------- the mechanism
def test_save_and_load_a_set_with_its_manifest(tmp_path):
    df = pd.DataFrame({"a": [1, 2, 3]})
    st = artifacts.save_stage(tmp_path, "thing", {"thing.parquet": df, "thing_meta.json": {"n": 3}}, params={"k": 2})
    m = json.loads((tmp_path / "thing.manifest.json").read_text())
    assert m["stage"] == "thing" and m["params"] == {"k": 2} and m["inputs"] == {}
    assert m["decaylib_version"] and m["fingerprint"] == st.fingerprint
    assert set(m["files"]) == {"thing.parquet", "thing_meta.json"}
    assert m["files"]["thing.parquet"]["size"] == (tmp_path / "thing.parquet").stat().st_size
    back = artifacts.load_stage(tmp_path, "thing", expect_files=("thing.parquet",))
    pd.testing.assert_frame_equal(back.frame("thing.parquet"), df)
    assert back.json("thing_meta.json") == {"n": 3}
    # a downstream set records its input; the same content gives the same fingerprint
    down = artifacts.save_stage(tmp_path, "down", {"down.json": {"x": 1}}, inputs={"thing": back})
    assert down.inputs == {"thing": st.fingerprint}
    again = artifacts.save_stage(tmp_path, "thing", {"thing.parquet": df, "thing_meta.json": {"n": 3}}, params={"k": 2})
    assert again.fingerprint == st.fingerprint
    artifacts.load_stage(tmp_path, "down", expect_inputs={"thing": again})
    # a file the new set does not have is removed with the old set
    artifacts.save_stage(tmp_path, "thing", {"thing.parquet": df}, params={"k": 3})
    assert not (tmp_path / "thing_meta.json").exists()
    with pytest.raises(artifacts.StaleArtifactError, match=r"^down\.json in .* was built from thing \w{8} \(k=2\) but the thing is now \w{8} \(k=3\); rebuild: "):
        artifacts.load_stage(tmp_path, "down", expect_inputs={"thing": artifacts.load_stage(tmp_path, "thing")})
    with pytest.raises(artifacts.StageMissingError, match="nothing.parquet does not exist"):
        artifacts.load_stage(tmp_path, "nothing", expect_files=("nothing.parquet",))
    with pytest.raises(ValueError, match="plain file name"):
        artifacts.save_stage(tmp_path, "thing", {"../x.parquet": df})


@posix_only
def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        artifacts.save_stage(tmp_path, "s", {"s.parquet": pd.DataFrame({"a": [1]}), "s.json": {"a": 1}})
        artifacts.write_json({"x": 1}, tmp_path / "plain.json")
        for name in ("s.parquet", "s.json", "s.manifest.json", "plain.json"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
        os.umask(0o027)
        artifacts.write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "group.parquet")
        assert (tmp_path / "group.parquet").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


@posix_only
def test_files_are_fsynced_before_the_rename_and_the_manifest_comes_last(tmp_path, monkeypatch):
    log = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (log.append(("replace", str(b))), real_replace(a, b))[1])
    artifacts.save_stage(tmp_path, "s", {"a.parquet": pd.DataFrame({"a": [1]}), "b.json": {"b": 2}})
    replaced = [Path(p).name for op, p in log if op == "replace"]
    assert replaced == ["a.parquet", "b.json", "s.manifest.json"]
    for i, (op, target) in enumerate(log):
        if op == "replace":  # the temporary file was fsynced just before, the folder just after
            assert log[i - 1][0] == "fsync" and Path(log[i - 1][1]).name.startswith(f".{Path(target).name}.")
            assert log[i + 1] == ("fsync", os.path.realpath(tmp_path))
    assert sum(op == "fsync" for op, _ in log) == 6  # 3 files and the folder after each rename


@posix_only
def test_leftover_temp_files_are_removed_by_the_next_save(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    leftovers = [tmp_path / f".events.parquet.{dead_pid}.ab12cd34.tmp", tmp_path / ".truth.parquet.x1y2z3w4.tmp"]
    alive = tmp_path / f".panel.parquet.{os.getppid()}.ab12cd34.tmp"  # another running process' write
    for p in [*leftovers, alive]:
        p.write_bytes(b"PAR1 half")
    artifacts.write_json({"x": 1}, tmp_path / "other.json")
    assert not any(p.exists() for p in leftovers) and alive.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "other.json"]


# --------------------------------------------------------------- the README's small-run example
@pytest.mark.parametrize("change", [{"n_users": 16}, {"seed": 7}], ids=["n_users", "seed"])
def test_a_new_simulation_makes_later_stages_rebuilt_or_refused(tmp_path, capsys, change):
    d = tmp_path / "generated"
    first = open_source(d, verbose=False, seed=2, **SIM)  # notebooks 01-03 of a first run
    first.panel()
    first.forecasts(device="cpu", cv_epochs=1, n_folds=2, hidden_size=8)
    first.save_stage("lambda", {"lambda.parquet": pd.DataFrame({"user_id": [0], "lam": [0.1]})}, params={"notebook": "04"})
    # the README's example: notebook 01 again with other parameters, into the same data_dir
    save_simulation(simulate(**{**SIM, "seed": 2, **change}), d)
    capsys.readouterr()
    # then the report (open_source without simulation parameters): stale panel and forecasts are rebuilt
    src = open_source(d, verbose=False)
    panel, ff = src.panel(), src.forecasts(device="cpu")
    lines = capsys.readouterr().out.strip().splitlines()
    k, v = next(iter(change.items()))
    was = SIM.get(k, 2)
    assert lines[0].startswith(f"panel.parquet in {d} was built from simulation ")
    assert f"({k}={was})" in lines[0] and f"({k}={v}): rebuilt the panel" in lines[0]
    assert lines[1].startswith(f"forecasts.parquet in {d} was built from panel ")
    assert "cross-fitting the forecaster again with notebook 03's defaults (it was built with" in lines[1]
    assert "n_folds=2" in lines[1] and "run notebook 03_forecasting again" in lines[1]
    # what the report reads belongs together: panel from the new simulation, forecasts from that panel
    sim = src.simulation()
    assert_consistent(sim)
    assert sim["meta"]["config"][k] == v
    assert set(zip(panel.user_id, panel.category)) <= set(zip(sim["truth"].user_id, sim["truth"].category))
    assert set(ff["user_id"]) <= set(panel["user_id"])
    st_panel = artifacts.load_stage(d, "panel")
    assert st_panel.inputs == {"simulation": sim["manifest"].fingerprint}
    assert artifacts.load_stage(d, "forecasts").inputs == {"panel": st_panel.fingerprint}
    # another notebook's output (notebook 04's λ table) cannot be rebuilt by the library: refused
    with pytest.raises(artifacts.StaleArtifactError, match=r"^lambda\.parquet in .* was built from panel \w{8} but the panel is now "
                       r"\w{8} \(built from simulation .*\); rebuild: run notebook 04_decay_rate$"):
        src.load_stage("lambda")
    # notebook 02 with its defaults afterwards ("used only if notebook 01's artifacts are missing", issue 21):
    # it keeps notebook 01's new simulation and the panel built from it, and says so
    again = open_source(d, verbose=False, seed=2, **SIM)
    again.panel()
    out = capsys.readouterr().out
    assert out == (f"Using the simulation in {d} made with {k}={v} (notebook 01); {k}={was} given here would only be "
                   "used if it were missing (run notebook 01 with them to simulate again)\n")
    assert again.simulation()["meta"]["config"][k] == v
    assert again.stage("panel").fingerprint == st_panel.fingerprint


def test_forecasts_built_from_the_current_panel_are_kept(tmp_path, capsys):
    src = open_source(tmp_path, verbose=False, seed=2, **SIM)
    a = src.forecasts(device="cpu", cv_epochs=1, n_folds=2, hidden_size=8)
    capsys.readouterr()
    b = open_source(tmp_path, verbose=False).forecasts(device="cpu")  # non-default, but built from this panel
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------- broken files are never read
def test_truncated_parquet_is_detected_and_rebuilt(tmp_path, capsys):
    src = open_source(tmp_path, verbose=False, seed=3, **SIM)
    src.panel()
    fp = artifacts.load_stage(tmp_path, "simulation").fingerprint
    with open(tmp_path / "truth.parquet", "r+b") as f:
        f.truncate(200)
    with pytest.raises(artifacts.CorruptArtifactError, match=r"^truth\.parquet in .* is 200 bytes but simulation\.manifest\.json "
                       r"recorded [\d,]+ \(truncated or changed since it was written\); rebuild: run notebook 01"):
        load_simulation(tmp_path)
    capsys.readouterr()
    sim = ensure_simulation(tmp_path, verbose=False)  # simulated again with the recorded parameters
    assert "truth.parquet" in capsys.readouterr().out
    assert_consistent(sim)
    assert sim["manifest"].fingerprint == fp  # the same data: the panel built from it is still valid
    assert open_source(tmp_path, verbose=False).panel() is not None and capsys.readouterr().out == ""
    # a truncated panel is rebuilt the same way
    (tmp_path / "panel.parquet").write_bytes((tmp_path / "panel.parquet").read_bytes()[:-100])
    open_source(tmp_path, verbose=False).panel()
    assert capsys.readouterr().out.startswith(f"panel.parquet in {tmp_path} is ")
    artifacts.load_stage(tmp_path, "panel")


def test_tampered_files_and_manifests_are_reported(tmp_path):
    save_simulation(simulate(**SIM, seed=4), tmp_path)
    data = bytearray((tmp_path / "events.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "events.parquet").write_bytes(bytes(data))
    with pytest.raises(artifacts.CorruptArtifactError, match=r"^events\.parquet in .* has changed since it was written \(sha256 \w{8}, "
                       r"simulation\.manifest\.json recorded \w{8}\)"):
        load_simulation(tmp_path)
    save_simulation(simulate(**SIM, seed=4), tmp_path)
    m = json.loads((tmp_path / "simulation.manifest.json").read_text())
    m["params"]["n_users"] = 999
    (tmp_path / "simulation.manifest.json").write_text(json.dumps(m))
    with pytest.raises(artifacts.CorruptArtifactError, match="simulation.manifest.json in .* was changed after it was written"):
        load_simulation(tmp_path)
    (tmp_path / "simulation.manifest.json").unlink()
    with pytest.raises(artifacts.IncompleteArtifactError, match="events.parquet, truth.parquet, truth_daily.parquet, sim_meta.json are there "
                       "but simulation.manifest.json is not"):
        load_simulation(tmp_path)
    (tmp_path / "decay_points.parquet").write_bytes(b"PAR1")
    with pytest.raises(artifacts.IncompleteArtifactError, match=r"decay_points.parquet is there but decay_points.manifest.json is not "
                       r"\(an interrupted write, or files of an older decaylib\); rebuild: run notebook 05_decay_points"):
        open_source(tmp_path, verbose=False).load_stage("decay_points")


# -------------------------------------------------------------------------------- killed writes
WRITER = textwrap.dedent("""
    import os, sys
    from decaylib.workflow.pipeline import save_simulation
    from decaylib.data.synth import simulate
    d, seed, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sim = simulate(n_users={n_users}, n_days={n_days}, n_categories={n_categories}, seed=seed)
    if mode == "die_after_events":  # killed right after the new events.parquet is renamed into place
        real = os.replace
        def replace(a, b):
            real(a, b)
            if os.path.basename(b) == "events.parquet":
                os._exit(9)
        os.replace = replace
    print("ready", flush=True)
    save_simulation(sim, d)
    print("done", flush=True)
""").format(**TINY)


def _writer(d, seed, mode="normal"):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(d), str(seed), mode], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


@posix_only
@pytest.mark.slow
def test_killed_right_after_the_events_rename_never_mixes(tmp_path, capsys):
    save_simulation(simulate(**TINY, seed=1), tmp_path)
    old_truth = (tmp_path / "truth.parquet").read_bytes()
    p = _writer(tmp_path, 2, "die_after_events")
    p.communicate(timeout=60)
    assert p.returncode == 9
    # the new events are in place beside the old truth and metadata, but the set has no manifest
    assert (tmp_path / "truth.parquet").read_bytes() == old_truth
    assert not (tmp_path / "simulation.manifest.json").exists()
    with pytest.raises(artifacts.IncompleteArtifactError, match="simulation.manifest.json is not"):
        load_simulation(tmp_path)
    capsys.readouterr()
    sim = ensure_simulation(tmp_path, verbose=False)
    assert "the simulation set in" in capsys.readouterr().out
    assert_consistent(sim)  # simulated again from the metadata left (the old run's): one whole simulation
    assert sim["meta"]["config"]["seed"] == 1


@posix_only
@pytest.mark.slow
def test_fault_injection_random_kills_leave_no_mixed_set(tmp_path):
    """20 writes of a simulation set, each SIGKILLed at a random moment of its writes: every
    following load returns one whole simulation (the old or the new) or rebuilds one."""
    expected = {}
    for seed in (1, 2):
        s = simulate(**TINY, seed=seed)
        expected[seed] = (len(s.events), len(s.truth), len(s.truth_daily))
    assert expected[1] != expected[2]
    save_simulation(simulate(**TINY, seed=1), tmp_path)
    # the write's duration, measured from "ready" (simulated, about to write) to "done"
    p = _writer(tmp_path / "probe", 2)
    assert p.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    assert p.stdout.readline().strip() == "done"
    duration = time.perf_counter() - t0
    p.wait(timeout=30)
    rng = random.Random(20240531)
    outcomes = {"old": 0, "new": 0, "rebuilt": 0}
    current = 1
    for trial in range(20):
        new_seed = 3 - current
        p = _writer(tmp_path, new_seed)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, 1.5 * duration))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        try:
            sim = load_simulation(tmp_path)
            outcome = "new" if sim["meta"]["config"]["seed"] == new_seed else "old"
        except artifacts.ArtifactMissingError:  # incomplete or corrupt: the next load rebuilds it
            sim = ensure_simulation(tmp_path, verbose=False)
            outcome = "rebuilt"
        assert_consistent(sim)
        seed = sim["meta"]["config"]["seed"]
        assert seed in expected and (len(sim["events"]), len(sim["truth"]), len(sim["truth_daily"])) == expected[seed], trial
        outcomes[outcome] += 1
        current = seed
    print(f"fault injection: {outcomes} (writes take {duration * 1000:.0f} ms)")  # shown with pytest -s
    assert sum(outcomes.values()) == 20
    assert outcomes["rebuilt"] > 0, outcomes  # some kills landed inside the writes
    save_simulation(simulate(**TINY, seed=1), tmp_path)  # the next save removes the killed writes' temp files
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
