"""A real Spark standalone cluster on this machine (decaylib.data.spark_cluster): a master and two
workers as separate JVM processes on 127.0.0.1, ``preprocess(engine="spark")`` and the per-pair
sufficient statistics on it equal to DuckDB, and a worker killed with SIGKILL in the middle of a job.

The cluster is real (no mock): the daemons come from the installed pyspark's ``bin/spark-class``.
The module starts one cluster (about 20-30 s on a busy 2-core machine) and stops it, by process id,
whatever the tests do; skipped with the reason where pyspark or Java 17+ is missing.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import pandas as pd
import pytest

from decaylib import artifacts as AR
from decaylib.data import engine as EN
from decaylib.data import preprocess as PP
from decaylib.data import spark_cluster as SC
from decaylib.data.synth import simulate
from decaylib.decay import stream as ST
from tests.data.test_engine import _same_result

REASON = EN.spark_unavailable()
needs_spark = pytest.mark.skipif(REASON is not None, reason=f"no Spark cluster here: {REASON}")

#: Tasks of the job that worker 0's executor has run before it is killed (the job has ~100).
MIN_TASKS_BEFORE_KILL = 12

#: Seconds each phase took (printed at the end of the module: pytest -s shows them).
TIMINGS: dict[str, float] = {}


def _run(events, engine, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PP.preprocess(events, engine=engine, **kw)


def _stats(events, engine, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EN.preprocess_stats(events, engine=engine, **kw)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ----------------------------------------------------------------------------- no JVM needed
def test_clear_errors_before_anything_starts():
    with pytest.raises(ValueError, match="workers must be >= 1"):
        SC.SparkCluster(workers=0)
    with pytest.raises(TypeError, match="cores must be an int"):
        SC.SparkCluster(cores=1.5)
    with pytest.raises(ValueError, match="memory must be a JVM size"):
        SC.SparkCluster(memory="lots")
    c = SC.SparkCluster()
    for call in (c.state, c.session, lambda: c.kill_worker(0), lambda: c.master_pid):
        with pytest.raises(SC.SparkClusterError, match="not started|no (master|worker-0) is running"):
            call()
    assert c.stop() == {}  # stopping a cluster that never started is a no-op


# ----------------------------------------------------------------------------- a real cluster
def _processes_with_env(key: str, value: str) -> list[int]:
    """Live processes whose environment holds ``key=value`` (the daemons of one cluster: its log folder)."""
    needle = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                env = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if needle in env and SC._alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@needs_spark
@pytest.mark.slow
def test_a_failed_start_says_why_and_leaves_nothing_running(tmp_path):
    """Too little memory for the master's JVM: it exits at once; the error quotes its log."""
    c = SC.SparkCluster(workers=1, daemon_memory="1m", log_dir=tmp_path, start_timeout=60)
    with pytest.raises(SC.SparkClusterError, match=r"(?s)master \(pid \d+\) exited with code 1 .*Too small maximum heap"):
        c.start()
    assert c.master_url is None and c._procs == []
    assert _processes_with_env("SPARK_LOG_DIR", str(tmp_path)) == []
    assert (tmp_path / "master.log").is_file()  # the log stays, for reading


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if REASON is not None:
        pytest.skip(f"no Spark cluster here: {REASON}")
    t0 = time.monotonic()
    # the daemons' and the driver's logs (and the executors' stderr under worker-N/) stay there for reading
    c = SC.SparkCluster(workers=2, cores=1, memory="1g", log_dir=tmp_path_factory.mktemp("spark-cluster"))
    try:
        c.start()
        TIMINGS["cluster start (master + 2 workers registered)"] = time.monotonic() - t0
        yield c
    finally:
        c.stop()  # by pid, whatever happened (also when start() or a test failed)
        print("\nSpark cluster timings: " + ", ".join(f"{k}: {v:.1f} s" for k, v in TIMINGS.items()))


@pytest.fixture(scope="module")
def spark(cluster):
    t0 = time.monotonic()
    s = cluster.session()
    TIMINGS["session (executors on both workers)"] = time.monotonic() - t0
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.slow
def test_master_and_two_workers_are_separate_processes_on_loopback(cluster, spark):
    assert cluster.master_url.startswith("spark://127.0.0.1:") and spark.sparkContext.master == cluster.master_url
    state = cluster.state()
    assert state["status"] == "ALIVE" and cluster.alive_workers() == 2
    assert {w["host"] for w in state["workers"]} == {"127.0.0.1"}
    pids = [cluster.master_pid, *cluster.worker_pids]
    assert len(set(pids)) == 3 and os.getpid() not in pids
    assert "deploy.master.Master" in _cmdline(pids[0]) and all("deploy.worker.Worker" in _cmdline(p) for p in pids[1:])
    # the session's executors: one per worker, each its own JVM launched by that worker
    assert SC.SparkCluster.executors(spark) == 2
    for i in range(2):
        ex = cluster.executor_pids(i)
        assert len(ex) == 1 and "CoarseGrainedExecutorBackend" in _cmdline(ex[0])
    assert [w["coresused"] for w in cluster.state()["workers"]] == [1, 1]


@pytest.mark.slow
def test_preprocess_and_lambda_statistics_on_the_cluster_equal_duckdb(cluster, spark, tmp_path):
    """The same SQL as on local[2], now as tasks on the two workers' executors: the whole
    PreprocessResult and the per-pair sufficient statistics behind λ equal DuckDB's."""
    t0 = time.monotonic()
    sim = simulate(n_users=20, n_categories=4, n_days=30, seed=11)
    before = {k: v["tasks"] for k, v in SC.SparkCluster.tasks_per_executor(spark).items()}
    duck = _run(sim.events, "duckdb")
    got = _run(sim.events, "spark", con=spark)
    assert got.engine == "spark"
    _same_result(duck, got)
    # from files (two Parquet parts, read by the executors themselves)
    parts = tmp_path / "events"
    parts.mkdir()
    ev = sim.events
    for i, part in enumerate((ev.iloc[: len(ev) // 2], ev.iloc[len(ev) // 2:])):
        part.to_parquet(parts / f"p{i}.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    s_duck, s_spark = _stats(parts, "duckdb"), _stats(parts, "spark", con=spark)
    _same_result(s_duck, s_spark, events=False)
    pd.testing.assert_frame_equal(s_spark.stats, s_duck.stats)
    assert len(s_spark.stats) > 20
    pd.testing.assert_frame_equal(ST.lambda_from_stats(s_spark.stats, s_spark.outage_days),
                                  ST.lambda_from_stats(s_duck.stats, s_duck.outage_days))
    # both workers' executors ran tasks of these jobs (not the driver alone)
    after = SC.SparkCluster.tasks_per_executor(spark)
    ran = {k: v["tasks"] - before.get(k, 0) for k, v in after.items()}
    assert len(ran) == 2 and all(n > 0 for n in ran.values()), ran
    TIMINGS["equality test (preprocess + stats, Spark and DuckDB)"] = time.monotonic() - t0


@pytest.mark.slow
def test_a_worker_killed_mid_job_the_job_completes_and_the_stage_is_whole(cluster, spark, tmp_path):
    """SIGKILL to one worker while its executor runs a task of the job: the executor exits too (it
    watches its worker), the master drops the worker, the driver marks the executor lost and Spark runs its
    tasks again on the other worker (lost shuffle output included). The job completes with DuckDB's
    numbers; the result is written as a stage set (atomic writes, manifest last), so a failure
    would have left no file and no half-written set."""
    t0 = time.monotonic()
    sim = simulate(n_users=200, n_categories=6, n_days=60, seed=3)
    src = tmp_path / "events"
    src.mkdir()
    ev = sim.events
    for i in range(4):
        ev.iloc[i::4].to_parquet(src / f"p{i}.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    want = _run(src, "duckdb")
    out = tmp_path / "stage"
    res: dict = {}

    def job():
        try:
            r = _run(src, "spark", con=spark)
            res["result"] = r
            AR.save_stage(out, "panel", {"panel.parquet": r.panel, "outages.json": {"outage_days": r.outage_days}},
                          params={"engine": "spark", "master": cluster.master_url})
        except Exception as err:  # noqa: BLE001 - judged below
            res["error"] = err

    victim = cluster.worker_pids[0]
    victim_executors = cluster.executor_pids(0)
    assert len(victim_executors) == 1, "worker 0 has no executor of this session"
    victim_id = re.search(r"--executor-id (\S+)", _cmdline(victim_executors[0])).group(1)
    done_before = SC.SparkCluster.tasks_per_executor(spark)[victim_id]["tasks"]
    th = threading.Thread(target=job, daemon=True)
    th.start()
    busy = None
    while th.is_alive() and busy is None:
        # well into the job (worker 0 holds shuffle output and cached blocks of it) and running a task now
        mine = SC.SparkCluster.tasks_per_executor(spark)[victim_id]
        busy = mine if mine["running"] and mine["tasks"] - done_before >= MIN_TASKS_BEFORE_KILL else None
        time.sleep(0.01)
    assert busy, f"the job ended before worker 0 had run {MIN_TASKS_BEFORE_KILL} tasks and was running one: nothing to kill"
    t_kill = time.monotonic()
    assert cluster.kill_worker(0) == [victim]
    th.join(timeout=240)
    if th.is_alive():
        spark.sparkContext.cancelAllJobs()
        th.join(timeout=30)
        pytest.fail("the job neither completed nor failed within 240 s of the kill")
    TIMINGS["kill test (job killed mid-stage, rerun, checked)"] = time.monotonic() - t0
    TIMINGS["  of which from the kill to the end of the job"] = time.monotonic() - t_kill

    # what the kill did: the worker gone, its executor gone after it, the master and the driver know
    assert not SC._alive(victim)
    deadline = time.monotonic() + 30
    while any(SC._alive(p) for p in victim_executors) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(SC._alive(p) for p in victim_executors), "the killed worker's executor outlived it"
    assert cluster.alive_workers() == 1
    per_exec = SC.SparkCluster.tasks_per_executor(spark)
    lost = [k for k, v in per_exec.items() if not v["active"]]
    assert len(lost) == 1 and SC.SparkCluster.executors(spark) == 1, per_exec
    print(f"\nkilled worker pid {victim} after its executor {victim_id} had run {busy['tasks'] - done_before} task(s) of the "
          f"job, with {busy['running']} running; executors afterwards: {per_exec}")

    if "error" in res:  # a failure must be one clear error and leave nothing written
        assert not out.exists() or not [p.name for p in out.iterdir()], sorted(p.name for p in out.iterdir())
        pytest.fail(f"the job failed after the kill (nothing was written): {type(res['error']).__name__}: "
                    f"{str(res['error'])[:500]}")
    got = res["result"]
    _same_result(want, got, events=False)
    st = AR.load_stage(out, "panel", expect_files=("panel.parquet", "outages.json"))  # verifies every file's hash
    pd.testing.assert_frame_equal(st.frame("panel.parquet"), want.panel)
    assert st.json("outages.json") == {"outage_days": want.outage_days}
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_stop_ends_every_process_it_started(cluster):
    pids = [cluster.master_pid, *cluster.worker_pids]
    executors = [p for i in range(len(cluster.worker_pids)) for p in cluster.executor_pids(i)
                 if SC._alive(cluster.worker_pids[i])]
    t0 = time.monotonic()
    log_dir = cluster.log_dir
    outcome = cluster.stop()
    TIMINGS["stop"] = time.monotonic() - t0
    assert set(pids) <= set(outcome) and set(executors) <= set(outcome)
    assert not [p for p in pids + executors if SC._alive(p)]
    assert not SC._group_members(pids), "a process of the cluster's groups is still running"
    assert cluster.stop() == {}  # twice is fine
    with pytest.raises(SC.SparkClusterError, match="not started"):
        cluster.state()
    assert _processes_with_env("SPARK_LOG_DIR", str(log_dir)) == []


@needs_spark
@pytest.mark.slow
def test_the_command_line_keeps_a_cluster_up_until_sigterm(tmp_path):
    """``make spark-cluster`` (python -m decaylib.data.spark_cluster): prints the master URL, the
    cluster answers, SIGTERM (or Ctrl-C) stops every process it started."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "decaylib.data.spark_cluster", "--workers", "1", "--log-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).resolve().parents[2],
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    seen = []
    try:
        deadline = time.monotonic() + 120
        while not any("Ctrl-C stops it" in s for s in seen) and time.monotonic() < deadline and proc.poll() is None:
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        text = "".join(seen)
        m = re.search(r"master URL : (spark://127\.0\.0\.1:\d+)", text)
        assert m, text
        ui = re.search(r"web UI     : (http://127\.0\.0\.1:\d+)", text).group(1)
        with urllib.request.urlopen(ui + "/json/", timeout=5) as r:
            state = json.loads(r.read())
        assert state["url"] == m.group(1) and state["aliveworkers"] == 1
        running = _processes_with_env("SPARK_LOG_DIR", str(tmp_path))
        assert len(running) == 2  # the master and the worker
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        reader.join(timeout=10)  # its output ends with the process
        rest = ""
        while not lines.empty():
            rest += lines.get()
        assert "stopped: {" in text + rest, text + rest
        assert _processes_with_env("SPARK_LOG_DIR", str(tmp_path)) == []
        TIMINGS["command line: start, check, SIGTERM"] = time.monotonic() - t0
    finally:  # whatever failed above: nothing of ours stays up
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _processes_with_env("SPARK_LOG_DIR", str(tmp_path)):
            os.kill(pid, signal.SIGKILL)
