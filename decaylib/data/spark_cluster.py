"""A Spark standalone cluster on this machine: one master and N workers, each its own JVM process (notebook 09).

The contract: :class:`SparkCluster` starts the daemons of the installed pyspark (its ``bin/spark-class
org.apache.spark.deploy.master.Master`` and ``... worker.Worker spark://127.0.0.1:<port>``) on
127.0.0.1, each on free ports, with their logs in ``log_dir`` (a new temporary folder by default),
and returns once every worker has registered with the master (the master's web UI answers
``/json/`` with them ``ALIVE``). ``cluster.master_url`` (``spark://127.0.0.1:<port>``) is what
:func:`decaylib.data.engine.spark_session` takes; :meth:`SparkCluster.session` builds that session with
small executors and waits for them, so ``preprocess(events, engine="spark", con=session)`` runs the
same SQL as on ``local[2]``, now as tasks on the workers' executors.

Everything it started is stopped by process id: SIGTERM, then SIGKILL after ``stop_timeout``
seconds. Each daemon leads its own process group, so the executors a worker launched (its child
JVMs, one per application) are found by that group id and stopped too, also when their worker was
killed first. A start that fails stops what it had started and raises :class:`SparkClusterError`
with the end of the daemon's log; the cluster is stopped at interpreter exit as well.

From a shell (``make spark-cluster``): ``python -m decaylib.data.spark_cluster [--workers 2]
[--cores 1] [--memory 1g]`` prints the master URL and keeps the cluster up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from decaylib.checks import check_int
from decaylib.data.engine import spark_session, spark_unavailable

__all__ = ["HOST", "JVM_OPTIONS", "SparkClusterError", "spark_class", "free_port", "SparkCluster", "main"]

#: Every daemon listens on the loopback address only: the cluster is not reachable from other machines.
HOST = "127.0.0.1"
_MASTER = "org.apache.spark.deploy.master.Master"
_WORKER = "org.apache.spark.deploy.worker.Worker"

#: JVM options of the daemons and executors: a small machine's cluster starts in seconds, not tens of
#: seconds (one GC thread; the quick JIT only: a local cluster's jobs are short).
JVM_OPTIONS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"


class SparkClusterError(RuntimeError):
    """The local Spark cluster could not start, or a session could not use it; the message says why.

    Notebook 09.
    """


def spark_class() -> Path:
    """The installed pyspark's ``bin/spark-class`` (the launcher of Spark's daemons).

    Notebook 09.
    """
    reason = spark_unavailable()
    if reason:
        raise SparkClusterError(f"cannot start a Spark cluster here: {reason}")
    import pyspark  # optional dependency: only here, after the check above

    path = Path(pyspark.__file__).resolve().parent / "bin" / "spark-class"
    if not path.is_file():
        raise SparkClusterError(f"pyspark at {path.parents[1]} has no bin/spark-class; reinstall it "
                                "(pip install --force-reinstall 'decaylib[spark]')")
    return path


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on at the moment of the call.

    Notebook 09.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) of ``pid`` from ``/proc``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[2])


def _alive(pid: int) -> bool:
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")  # a zombie has exited already


def _group_members(groups) -> list[int]:
    """Live processes whose process group is one of ``groups`` (the daemons and what they launched)."""
    groups = set(groups)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if st is not None and st[1] in groups and st[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return sorted(found)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class SparkCluster:
    """A Spark standalone master and ``workers`` workers on 127.0.0.1, as separate processes.

    ::

        with SparkCluster(workers=2) as cluster:      # ~20-30 s: three JVMs start
            spark = cluster.session()                 # executors on both workers
            result = preprocess("events/", engine="spark", con=spark)
            spark.stop()

    ``cores`` and ``memory``: what each worker offers (``--cores``, ``--memory``); ``daemon_memory``:
    the heap of the master and worker daemons themselves; ``jvm_options``: the daemons' and executors'
    JVM options (:data:`JVM_OPTIONS`); ``log_dir``: where the daemons' logs and
    the workers' work folders go (default: a new temporary folder, kept after :meth:`stop` so it can
    be read); ``start_timeout``: seconds to wait for the master and for the workers to register.

    Notebook 09.
    """

    def __init__(self, workers: int = 2, *, cores: int = 1, memory: str = "1g", daemon_memory: str = "256m",
                 log_dir=None, jvm_options: str = JVM_OPTIONS, start_timeout: float = 120.0, stop_timeout: float = 10.0):
        self.n_workers = check_int("workers", workers)
        self.cores = check_int("cores", cores)
        for name, value in (("memory", memory), ("daemon_memory", daemon_memory)):
            if not isinstance(value, str) or not value[:-1].isdigit() or value[-1].lower() not in "kmgt":
                raise ValueError(f"{name} must be a JVM size such as '512m' or '1g', got {value!r}")
        self.memory, self.daemon_memory, self.jvm_options = memory, daemon_memory, str(jvm_options)
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.start_timeout, self.stop_timeout = float(start_timeout), float(stop_timeout)
        self.master_url: str | None = None
        self.webui_url: str | None = None
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._logs: list = []
        self._worker_ports: list[int] = []

    # ------------------------------------------------------------------ start
    def start(self) -> SparkCluster:
        """Start the master, then the workers (side by side), and wait until all have registered.

        Notebook 09.
        """
        if self._procs:
            raise SparkClusterError(f"this cluster is running already ({self.master_url})")
        launcher = spark_class()
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="decaylib-spark-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            port, ui = free_port(), free_port()
            self._launch("master", [str(launcher), _MASTER, "--host", HOST, "--port", str(port), "--webui-port", str(ui)])
            self.webui_url = f"http://{HOST}:{ui}"
            state = self._wait(lambda s: s.get("status") == "ALIVE", "the master to answer at " + self.webui_url)
            self.master_url = state.get("url") or f"spark://{HOST}:{port}"
            for i in range(self.n_workers):
                wport = free_port()
                self._worker_ports.append(wport)
                work = self.log_dir / f"worker-{i}"
                work.mkdir(exist_ok=True)
                self._launch(f"worker-{i}", [str(launcher), _WORKER, "--host", HOST, "--port", str(wport),
                                             "--webui-port", str(free_port()), "--cores", str(self.cores),
                                             "--memory", self.memory, "--work-dir", str(work), self.master_url])
            self._wait(lambda s: len(self._registered(s)) == self.n_workers,
                       f"{self.n_workers} worker(s) to register with {self.master_url}")
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, name: str, cmd: list[str]) -> None:
        env = dict(os.environ, SPARK_HOME=str(Path(cmd[0]).parents[1]), SPARK_LOCAL_IP=HOST,
                   SPARK_DAEMON_MEMORY=self.daemon_memory, SPARK_LOG_DIR=str(self.log_dir),
                   SPARK_DAEMON_JAVA_OPTS=self.jvm_options, PYSPARK_PYTHON=sys.executable)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        # its own session and process group: a Ctrl-C in the terminal or notebook reaches only this
        # process, and the executors a worker launches can be found (and stopped) by the group id
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        self._procs.append((name, proc))

    def _wait(self, done, what: str) -> dict:
        deadline = time.monotonic() + self.start_timeout
        state: dict = {}
        while time.monotonic() < deadline:
            for name, proc in self._procs:
                if proc.poll() is not None:
                    raise SparkClusterError(f"the Spark {name} (pid {proc.pid}) exited with code {proc.returncode} "
                                            f"while waiting for {what}; end of {self.log_dir / (name + '.log')}:\n"
                                            f"{_tail(self.log_dir / (name + '.log'))}")
            try:
                state = self.state()
            except (OSError, ValueError):
                state = {}
            if state and done(state):
                return state
            time.sleep(0.25)
        raise SparkClusterError(f"timed out after {self.start_timeout:.0f} s waiting for {what} (logs in {self.log_dir}); "
                                f"last state: {json.dumps(state)[:500]}")

    def _registered(self, state: dict) -> list[dict]:
        return [w for w in state.get("workers", []) if w.get("state") == "ALIVE" and w.get("port") in self._worker_ports]

    # ------------------------------------------------------------------ inspect
    def state(self) -> dict:
        """The master's view as JSON (``workers``, ``aliveworkers``, ``activeapps``, ``status``, ...).

        Notebook 09.
        """
        if self.webui_url is None:
            raise SparkClusterError("the cluster is not started")
        with urllib.request.urlopen(self.webui_url + "/json/", timeout=5) as r:
            return json.loads(r.read().decode("utf-8"))

    def alive_workers(self) -> int:
        """How many of this cluster's workers the master sees ``ALIVE`` now.

        Notebook 09.
        """
        return len(self._registered(self.state()))

    @property
    def master_pid(self) -> int:
        """Process id of the master's JVM.

        Notebook 09.
        """
        return self._pid("master")

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the workers' JVMs, in start order.

        Notebook 09.
        """
        return [p.pid for name, p in self._procs if name.startswith("worker-")]

    def _pid(self, name: str) -> int:
        for n, p in self._procs:
            if n == name:
                return p.pid
        raise SparkClusterError(f"no {name} is running (start the cluster first)")

    def executor_pids(self, worker: int) -> list[int]:
        """Process ids of the executor JVMs that worker ``worker`` launched (its process group).

        Notebook 09.
        """
        pid = self._pid(f"worker-{check_int('worker', worker, minimum=0)}")
        return [p for p in _group_members([pid]) if p != pid]

    def kill_worker(self, worker: int, sig: int = signal.SIGKILL, *, executors: bool = False) -> list[int]:
        """Send ``sig`` (default SIGKILL: a crash, no shutdown hooks) to worker ``worker``'s JVM, and
        with ``executors=True`` to the executors it launched too (the whole machine gone); returns
        the process ids signalled.

        Notebook 09.
        """
        pid = self._pid(f"worker-{check_int('worker', worker, minimum=0)}")
        pids = [pid] + (self.executor_pids(worker) if executors else [])
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        return pids

    # ------------------------------------------------------------------ stop
    def stop(self) -> dict[int, str]:
        """Stop every process this cluster started (workers first, then the master) and what they
        launched: SIGTERM, then SIGKILL after ``stop_timeout`` s. Returns ``{pid: how it ended}``
        (``"gone"``, ``"terminated"``, ``"killed"``). Safe to call twice.

        Notebook 09.
        """
        atexit.unregister(self.stop)
        groups = [p.pid for _, p in self._procs]
        outcome: dict[int, str] = {}
        if groups:
            for name, proc in self._procs:
                if proc.poll() is not None:
                    outcome[proc.pid] = "gone"
            targets = sorted(set(_group_members(groups)) | {p.pid for _, p in self._procs if p.poll() is None})
            # workers and executors before the master, so no worker tries to re-register
            targets.sort(key=lambda p: p == groups[0])
            for p in targets:
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + self.stop_timeout
            while time.monotonic() < deadline:
                for _, proc in self._procs:
                    proc.poll()  # reap our own children (a zombie counts as gone)
                if not any(_alive(p) for p in targets):
                    break
                time.sleep(0.1)
            for p in targets:
                if _alive(p):
                    try:
                        os.kill(p, signal.SIGKILL)
                        outcome[p] = "killed"
                    except ProcessLookupError:
                        outcome[p] = "terminated"
                else:
                    outcome.setdefault(p, "terminated")
            for p in _group_members(groups):  # anything launched meanwhile
                os.kill(p, signal.SIGKILL)
                outcome[p] = "killed"
            for _, proc in self._procs:
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
                    pass
        for log in self._logs:
            log.close()
        self._procs, self._logs, self._worker_ports = [], [], []
        self.master_url = self.webui_url = None
        return outcome

    def __enter__(self) -> SparkCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ a session on it
    def session(self, app: str = "decaylib-cluster", executor_memory: str = "512m", conf: dict | None = None,
                timeout: float = 60.0):
        """A SparkSession on this cluster (:func:`decaylib.data.engine.spark_session` with the master
        URL), one executor of ``cores`` cores per worker, returned once every executor has joined.

        Spark allows one session per process: stop a ``local[N]`` session first (``spark.stop()``);
        an error says so instead of handing that session back.

        Notebook 09.
        """
        if self.master_url is None:
            raise SparkClusterError("the cluster is not started (use SparkCluster(...).start() or `with`)")
        settings = {"spark.executor.memory": executor_memory, "spark.executor.cores": str(self.cores),
                    "spark.cores.max": str(self.cores * self.n_workers), "spark.driver.host": HOST,
                    "spark.driver.bindAddress": HOST, "spark.pyspark.python": sys.executable,
                    "spark.executor.extraJavaOptions": self.jvm_options, "spark.driver.extraJavaOptions": self.jvm_options,
                    "spark.sql.shuffle.partitions": str(self.cores * self.n_workers), **(conf or {})}
        spark = spark_session(self.master_url, app=app, jvm_log=self.log_dir / "driver.log", conf=settings)
        got = spark.sparkContext.master
        if got != self.master_url:
            raise SparkClusterError(f"a Spark session on {got!r} is already running in this process (Spark allows one); "
                                    f"call spark.stop() on it, then cluster.session() again for {self.master_url}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.executors(spark) >= self.n_workers:
                return spark
            time.sleep(0.25)
        n = self.executors(spark)
        spark.stop()
        raise SparkClusterError(f"only {n} of {self.n_workers} executor(s) joined within {timeout:.0f} s "
                                f"(logs in {self.log_dir}); is the workers' memory ({self.memory}) enough for "
                                f"executor_memory={executor_memory}?")

    @staticmethod
    def executors(spark) -> int:
        """How many executors the session ``spark`` has now (the driver not counted).

        Notebook 09.
        """
        return int(spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()) - 1

    @staticmethod
    def tasks_per_executor(spark) -> dict[str, dict]:
        """Per executor of the session ``spark`` (the driver left out), dead ones included: ``host``,
        ``active`` (still running), ``running`` (tasks running now), ``tasks`` (launched so far), ``failed``. Shows that both
        workers did the work, and what a lost executor had done.

        Notebook 09.
        """
        seq = spark.sparkContext._jsc.sc().statusStore().executorList(False)  # Spark's own bookkeeping (the UI's)
        out = {}
        for i in range(seq.size()):
            e = seq.apply(i)
            if e.id() != "driver":
                out[str(e.id())] = {"host": str(e.hostPort()), "active": bool(e.isActive()), "running": int(e.activeTasks()),
                                    "tasks": int(e.totalTasks()), "failed": int(e.failedTasks())}
        return out


def main(argv=None) -> int:
    """``python -m decaylib.data.spark_cluster``: start a cluster, print how to use it, keep it up until Ctrl-C.

    Notebook 09.
    """
    ap = argparse.ArgumentParser(prog="python -m decaylib.data.spark_cluster",
                                 description="A Spark standalone master and workers on 127.0.0.1 until Ctrl-C.")
    ap.add_argument("--workers", type=int, default=2, help="number of worker processes (default 2)")
    ap.add_argument("--cores", type=int, default=1, help="cores each worker offers (default 1)")
    ap.add_argument("--memory", default="1g", help="memory each worker offers (default 1g)")
    ap.add_argument("--log-dir", default=None, help="folder for the daemons' logs (default: a new temporary folder)")
    args = ap.parse_args(argv)

    def _term(*_):  # SIGTERM (kill, a supervisor) ends the wait like Ctrl-C, so stop() runs
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    t0 = time.monotonic()
    cluster = SparkCluster(args.workers, cores=args.cores, memory=args.memory, log_dir=args.log_dir)
    try:
        cluster.start()
        print(f"Spark cluster up in {time.monotonic() - t0:.1f} s\n"
              f"  master URL : {cluster.master_url}\n  web UI     : {cluster.webui_url}\n"
              f"  processes  : master {cluster.master_pid}, workers {cluster.worker_pids}\n  logs       : {cluster.log_dir}\n"
              f"Use it:  spark = spark_session({cluster.master_url!r}); preprocess(events, engine='spark', con=spark)\n"
              "Ctrl-C stops it.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        print(f"stopped: {cluster.stop()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
