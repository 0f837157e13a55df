"""Artifacts on disk (every notebook): atomic writes, metrics JSON, and the stage manifests that record how each artifact was made (lineage)."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from decaylib.schema import CLICK, IMPRESSION, VIEW

__all__ = ['ARTICLE_COLUMNS', 'ArtifactMissingError', 'current_umask', 'clean_temp_files', 'LOCK_NAME', 'DirectoryBusyError', 'directory_lock', 'atomic_write', 'write_parquet', 'read_parquet', 'to_jsonable', 'write_json', 'read_json', 'write_metrics', 'metrics_lineage', 'read_metrics', 'MANIFEST_SUFFIX', 'STAGE_COMMANDS', 'StageError', 'StageMissingError', 'IncompleteArtifactError', 'CorruptArtifactError', 'StaleArtifactError', 'manifest_path', 'param_diff', 'StageSet', 'save_stage', 'read_manifest', 'load_stage', 'check_inputs']

#: The source article's table: one row per user and day.
ARTICLE_COLUMNS = {VIEW: "浏览次数", CLICK: "点击次数", IMPRESSION: "推荐次数", "interest": "兴趣度"}


class ArtifactMissingError(FileNotFoundError):
    """An input artifact is not there; the message says which notebook or function makes it.

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """

#: Temporary files of :func:`atomic_write`: ``.<name>.<pid>.<random>.tmp`` in the target's folder.
_TMP_NEW = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")

#: The same without a process id (written by decaylib before 0.2): always taken for leftovers.
_TMP_OLD = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")


def current_umask() -> int:
    """The process' umask, read without changing it where the system allows (Linux ``/proc``).

    Notebooks 00-09 (every notebook), through :func:`atomic_write`.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_path(path, directory: bool = False) -> None:
    """``os.fsync`` a file, or a folder (so that a rename or an unlink in it is durable)."""
    if directory and os.name != "posix":
        return  # folders cannot be opened for fsync on Windows; renames there are journalled
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:  # some file systems refuse fsync on folders; never on files
            raise
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # ours: perhaps a write in progress in another thread
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_temp_files(directory) -> list[Path]:
    """Remove the temporary files that killed writes left in ``directory``; returns their paths.

    A temporary file of :func:`atomic_write` is named ``.<name>.<pid>.<random>.tmp``; it is removed
    when the process ``pid`` no longer runs (so a write in progress in another process is never
    disturbed), and always when it has no process id (written by an older decaylib).

    Notebooks 00-09 (every notebook), through :func:`atomic_write`.
    """
    d = Path(directory)
    removed = []
    try:
        entries = list(os.scandir(d))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        new = _TMP_NEW.match(entry.name)
        if new is None and _TMP_OLD.match(entry.name) is None:
            continue
        if new is not None and _pid_alive(int(new["pid"])):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except FileNotFoundError:
            pass
    return removed


# ---------------------------------------------------------------------------------------------
# One writer per folder: an advisory lock (fcntl.flock) on LOCK_NAME in the artifact folder
# ---------------------------------------------------------------------------------------------
try:
    import fcntl
except ImportError:  # Windows: no flock; sets stay atomic and verified, but two writers are not kept apart
    fcntl = None

#: The lock file of :func:`directory_lock` in each artifact folder (it holds the last writer's pid).
LOCK_NAME = ".decaylib.lock"

#: Seconds a run waits for another run's write before it gives up (``DECAYLIB_LOCK_TIMEOUT`` overrides).
LOCK_TIMEOUT = 600.0

_held: dict = {}  # resolved folder -> [file descriptor, depth, mode, threading.RLock]; one per process
_held_guard = threading.Lock()


class DirectoryBusyError(RuntimeError):
    """Another run kept writing an artifact folder longer than this run would wait (see :func:`directory_lock`).

    Notebooks 01-07 (the stages they save and load).
    """


def _lock_timeout() -> float:
    text = os.environ.get("DECAYLIB_LOCK_TIMEOUT", "")
    try:
        return max(0.0, float(text)) if text.strip() else LOCK_TIMEOUT
    except ValueError:
        raise ValueError(f"DECAYLIB_LOCK_TIMEOUT must be a number of seconds, got {text!r}") from None


def _lock_owner(fd: int) -> str:
    """``pid N, <what>`` of the run that last took the lock for writing, when that process still runs."""
    try:
        text = os.pread(fd, 512, 0).decode("utf-8", "replace")
        pid_text, _, what = text.partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return ""
    if pid == os.getpid() or not _pid_alive(pid):
        return ""  # a dead writer's pid: flock released its lock when it died
    return f"pid {pid}" + (f", {what.strip()}" if what.strip() else "")


@contextmanager
def directory_lock(directory, what: str = "", *, shared: bool = False, timeout: float | None = None):
    """Hold the artifact folder ``directory``'s lock: one writer at a time, readers never see a set half-written.

    ``shared=False`` (writers: :func:`save_stage` and the build-or-load steps of
    :mod:`decaylib.workflow.pipeline`) excludes every other process; ``shared=True`` (readers:
    :func:`load_stage`) excludes writers only.  The lock is ``fcntl.flock`` on ``LOCK_NAME`` in
    the folder, advisory and released by the system when its process ends, so a lock of a killed
    run is simply taken over; the writer's pid and ``what`` are written into the file for the
    message of the runs that wait.  A run that finds the folder locked prints one line
    ("another run (pid N) is writing <dir>: waiting ...") and waits up to ``timeout`` seconds
    (:data:`LOCK_TIMEOUT`, or ``$DECAYLIB_LOCK_TIMEOUT``), then raises :class:`DirectoryBusyError`
    ("another run is writing <dir> (pid N) ...").  Re-entrant within a process (one thread at a
    time).  Without ``fcntl`` (Windows) it does nothing; a reader of a folder without a lock file
    (no run of this decaylib wrote it) or one it cannot open goes on without it.

    Notebooks 01-07 (the stages they save and load).
    """
    d = Path(directory)
    if fcntl is None:
        yield
        return
    if not shared:
        d.mkdir(parents=True, exist_ok=True)
    try:
        key = str(d.resolve())
    except OSError:
        key = str(d.absolute())
    with _held_guard:
        entry = _held.setdefault(key, [None, 0, None, threading.RLock()])
    entry[3].acquire()
    try:
        if entry[1] > 0 and (shared or entry[2] == "ex"):  # this process holds it already
            entry[1] += 1
            try:
                yield
            finally:
                entry[1] -= 1
            return
        fresh = entry[0] is None
        if fresh:
            try:  # a reader never creates the file: a folder no run has written is not locked
                entry[0] = (os.open(d / LOCK_NAME, os.O_RDONLY) if shared
                            else os.open(d / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask()))
            except OSError:
                if not shared:
                    raise
                yield  # no lock file (no writer yet), or a folder this user cannot write
                return
        fd, mode = entry[0], fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        limit = _lock_timeout() if timeout is None else float(timeout)
        start, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                owner = _lock_owner(fd)
                if waited >= limit:
                    if fresh:
                        os.close(fd)
                        entry[0] = None
                    who = f" ({owner})" if owner else ""
                    raise DirectoryBusyError(
                        f"another run is writing {d}{who}: it did not finish within {limit:.0f} s; wait for it to end "
                        f"(or stop it), or give this run another data_dir; DECAYLIB_LOCK_TIMEOUT=<seconds> waits longer") from None
                if not told and waited >= 0.5:
                    who = f" ({owner})" if owner else ""
                    print(f"another run{who} is writing {d}: waiting up to {limit:.0f} s for it to finish ...",
                          file=sys.stderr, flush=True)
                    told = True
                time.sleep(0.05)
        if not shared:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
            except OSError:
                pass
        outer = entry[2]
        entry[1], entry[2] = entry[1] + 1, ("sh" if shared else "ex")
        try:
            yield
        finally:
            entry[1] -= 1
            entry[2] = outer
            if entry[1] == 0:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                entry[0], entry[2] = None, None
            elif outer == "sh":  # an exclusive lock taken inside a shared one: back to shared
                fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        entry[3].release()


@contextmanager
def atomic_write(path):
    """Yield a temporary path next to ``path``; move it over ``path`` if the block succeeds.

    The temporary file (``.<name>.<pid>.<random>.tmp`` in the same folder) gets the usual
    permissions (``0o666`` less the umask, like ``open``), is flushed to disk (``os.fsync``),
    renamed over ``path`` (``os.replace``, atomic) and the folder is fsynced, so after a crash
    ``path`` is either the old file or the new one, complete.  On any exception the temporary
    file is removed and ``path`` is left untouched.  Temporary files of killed writes in the
    folder are removed first (:func:`clean_temp_files`).

    Notebook 09.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_temp_files(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(path.parent, directory=True)
    finally:
        if tmp.exists():
            tmp.unlink()


#: Rows converted to Arrow at a time when a large frame is written to Parquet.
PARQUET_CHUNK_ROWS = 1 << 21


def _to_parquet(df: pd.DataFrame, path) -> None:
    """``df.to_parquet(path, index=False)``, converting at most :data:`PARQUET_CHUNK_ROWS` rows to Arrow
    at a time: a long forecast table is not held twice (as pandas and as Arrow) while it is written.
    The file reads back as the same frame."""
    if len(df) <= PARQUET_CHUNK_ROWS:
        df.to_parquet(path, index=False)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = pa.Table.from_pandas(df.iloc[:PARQUET_CHUNK_ROWS], preserve_index=False)
    with pq.ParquetWriter(path, first.schema) as writer:
        writer.write_table(first)
        del first
        for a in range(PARQUET_CHUNK_ROWS, len(df), PARQUET_CHUNK_ROWS):
            chunk = pa.Table.from_pandas(df.iloc[a : a + PARQUET_CHUNK_ROWS], schema=writer.schema,
                                         preserve_index=False)
            writer.write_table(chunk)
            del chunk
    pa.default_memory_pool().release_unused()  # Arrow's allocator would keep the chunks' memory


def _arrow_reader(data: bytes):
    """A file in memory that Arrow owns, to read Parquet from verified bytes.

    Not ``BytesIO``: Arrow wraps the bytes a Python file returns in Python buffers, and its scanner
    threads may drop the last of them after the script ends, while the interpreter is finalizing;
    such a thread then takes the GIL, is ended by the interpreter inside a C++ destructor, and the
    process aborts ("terminate called without an active exception", SIGABRT at exit: issue 21).
    A copy in Arrow's memory needs no GIL to be freed."""
    import pyarrow as pa

    out = pa.BufferOutputStream()
    out.write(data)
    return pa.BufferReader(out.getvalue())


def _read_parquet(src) -> pd.DataFrame:
    """``pd.read_parquet(src)``, the same frame, with about half the peak memory on long files.

    ``pd.read_parquet`` holds the whole file as Arrow and then as pandas (twice the frame, and
    Arrow's allocator keeps the freed half).  Numeric and boolean columns without nulls are copied
    row group by row group into arrays of their final size instead; any other column (strings,
    dates, nullable or extension dtypes) is read by pandas itself, alone.  Anything unusual in the
    file (a stored index, a dtype that pandas would restore differently) falls back to
    ``pd.read_parquet``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    def plain(columns=None) -> pd.DataFrame:
        if hasattr(src, "seek"):
            src.seek(0)
        return pd.read_parquet(src, columns=columns)

    try:
        pf = pq.ParquetFile(src)
        schema = pf.schema_arrow
        meta = json.loads((schema.metadata or {}).get(b"pandas", b"{}"))
        numpy_types = {c.get("name"): c.get("numpy_type") for c in meta.get("columns", [])}
        index = meta.get("index_columns", [])
        plain_index = all(isinstance(i, dict) and i.get("kind") == "range" and i.get("start") == 0
                          and i.get("step") == 1 and i.get("name") is None for i in index)
        n = pf.metadata.num_rows
        if pf.num_row_groups < 2 or not plain_index or len(set(schema.names)) != len(schema.names):
            return plain()
        lean = {}
        for f in schema:
            t = f.type
            if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
                dtype = np.dtype(t.to_pandas_dtype())
                if numpy_types.get(f.name, dtype.name) == dtype.name:
                    lean[f.name] = dtype
        cols = {name: np.empty(n, dtype=dt) for name, dt in lean.items()}
        a = 0
        for i in range(pf.num_row_groups):
            rg = pf.read_row_group(i, columns=list(lean))
            b = a + rg.num_rows
            for name in lean:
                col = rg.column(name)
                if col.null_count:  # pandas would give floats or a nullable dtype: let it
                    return plain()
                cols[name][a:b] = col.to_numpy()
            a = b
            del rg
        others = [c for c in schema.names if c not in lean]
        rest = plain(others) if others else None
        pa.default_memory_pool().release_unused()
        data = {c: (cols[c] if c in lean else rest[c]) for c in schema.names}
        return pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)
    except (OSError, ValueError, TypeError, KeyError, NotImplementedError):
        return plain()


def write_parquet(df: pd.DataFrame, path) -> Path:
    """Write ``df`` to Parquet atomically (no index), in chunks of rows when it is long.

    Notebooks 02 and 08.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a DataFrame, got {type(df).__name__}")
    with atomic_write(path) as tmp:
        _to_parquet(df, tmp)
    return Path(path)


def read_parquet(path, required_columns=(), made_by: str | None = None) -> pd.DataFrame:
    """Read a Parquet artifact and check that it has ``required_columns``.

    Notebook 09.
    """
    path = Path(path)
    if not path.exists():
        hint = f"; run {made_by} first" if made_by else ""
        raise ArtifactMissingError(f"artifact {path} does not exist{hint}")
    df = _read_parquet(path)
    missing = [c for c in required_columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path} is missing column(s) {missing}; it has {list(df.columns)}")
    return df


def to_jsonable(obj):
    """Convert NumPy/pandas scalars and containers to plain JSON types (NaN/inf -> None).

    Notebooks 00-06 and 08, through :func:`write_metrics` and :func:`save_stage`.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(obj, path) -> Path:
    """Write ``obj`` as pretty JSON atomically (NaN becomes null, never invalid JSON).

    Notebooks 00-06 and 08, through :func:`write_metrics` and :func:`save_stage`.
    """
    text = json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, sort_keys=False, allow_nan=False)
    with atomic_write(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def read_json(path, made_by: str | None = None):
    """Read a JSON artifact; :class:`ArtifactMissingError` (saying to run ``made_by`` first) when it does not exist.

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """
    path = Path(path)
    if not path.exists():
        hint = f"; run {made_by} first" if made_by else ""
        raise ArtifactMissingError(f"{path} does not exist{hint}")
    return json.loads(path.read_text(encoding="utf-8"))


def write_metrics(data_dir, notebook: str, metrics: dict, *, lineage: dict | None = None, data: dict | None = None) -> Path:
    """Write a notebook's headline numbers to ``data_dir/metrics/<notebook>.json``.

    ``lineage`` (``{stage: StageSet or fingerprint}``, the sets of ``data_dir`` the numbers were
    computed from) is recorded as ``"data": {..., "lineage": {stage: fingerprint}}`` beside
    ``data`` (what ran), so that ``runner metrics`` can mark numbers of another lineage than the
    sets in the folder now.

    Notebooks 00-09 (every notebook).
    """
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("metrics must be a non-empty dict")
    if lineage is not None or data is not None:
        fps = {}
        for k, v in (lineage or {}).items():
            if not isinstance(v, (str, StageSet)):
                raise TypeError(f"lineage {k!r} must be a StageSet or a fingerprint string, got {type(v).__name__}")
            fps[k] = v if isinstance(v, str) else v.fingerprint
        metrics = {**metrics, "data": {**(data or {}), **({"lineage": fps} if lineage is not None else {})}}
    return write_json(metrics, Path(data_dir) / "metrics" / f"{notebook}.json")


def metrics_lineage(metrics: dict) -> dict | None:
    """``{stage: fingerprint}`` that a metrics file recorded (see :func:`write_metrics`), or None.

    Notebooks 00-09 (every notebook), through ``python -m decaylib.workflow.runner metrics``.
    """
    data = metrics.get("data") if isinstance(metrics, dict) else None
    lineage = data.get("lineage") if isinstance(data, dict) else None
    return {k: v for k, v in lineage.items() if isinstance(v, str)} if isinstance(lineage, dict) else None


def read_metrics(data_dir, notebook: str) -> dict:
    """A notebook's headline numbers, read back from ``data_dir/metrics/<notebook>.json`` (see :func:`write_metrics`).

    Notebooks 00-06 and 08 (the metrics their :func:`write_metrics` call wrote).
    """
    return read_json(Path(data_dir) / "metrics" / f"{notebook}.json", made_by=f"notebook {notebook}")

# ---------------------------------------------------------------------------------------------
# Artifact sets with lineage: save_stage / load_stage
# ---------------------------------------------------------------------------------------------
#: ``<stage>.manifest.json``: written last by :func:`save_stage`, it vouches for a stage's files.
MANIFEST_SUFFIX = ".manifest.json"

MANIFEST_FORMAT = "decaylib-manifest/1"

#: How each stage is rebuilt; the errors of :func:`load_stage` end with it.
STAGE_COMMANDS = {
    "simulation": "run notebook 01_synthetic_events (or decaylib.workflow.pipeline.ensure_simulation)",
    "panel": "run notebook 02_preprocessing (or decaylib.workflow.pipeline.ensure_panel)",
    "forecasts": "run notebook 03_forecasting (or decaylib.workflow.pipeline.ensure_forecasts)",
    "lambda": "run notebook 04_decay_rate",
    "decay_points": "run notebook 05_decay_points",
    "recommendations": "run notebook 06_recommendations",
}

_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

_KEEP_IN_MEMORY = 64 << 20  # files up to this size are verified and parsed from the same bytes


class StageError(Exception):
    """Mixin of the errors of :func:`load_stage`: ``stage``, ``directory``, ``artifact`` (the file
    the message names), ``reason`` (what is wrong, one line) and ``command`` (what rebuilds it).

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """

    def _set(self, stage, directory, artifact, reason, command):
        self.stage, self.directory, self.artifact = stage, Path(directory), artifact
        self.reason, self.command = reason, command
        return f"{reason}; rebuild: {command}"


class StageMissingError(ArtifactMissingError, StageError):
    """A stage's set is not there at all (no manifest and none of its files).

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """

    def __init__(self, stage, directory, artifact, reason, command):
        super().__init__(self._set(stage, directory, artifact, reason, command))


class IncompleteArtifactError(ArtifactMissingError, StageError):
    """A stage's set is partly there: files without their manifest (an interrupted write, or files
    of an older decaylib), or a file the manifest lists is missing.

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """

    def __init__(self, stage, directory, artifact, reason, command):
        super().__init__(self._set(stage, directory, artifact, reason, command))


class CorruptArtifactError(IncompleteArtifactError):
    """A file does not match its manifest (size or sha256): truncated, or changed after it was written.

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """


class StaleArtifactError(RuntimeError, StageError):
    """A stage's set was built from inputs that have changed since (another simulation, another panel).

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """

    def __init__(self, stage, directory, artifact, reason, command):
        super().__init__(self._set(stage, directory, artifact, reason, command))


def manifest_path(directory, stage: str) -> Path:
    """The path of a stage's manifest: ``directory/<stage>.manifest.json``.

    Notebooks 01-07 (the stages they save and load).
    """
    return Path(directory) / f"{stage}{MANIFEST_SUFFIX}"


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _fingerprint(stage: str, files: dict, params, inputs: dict) -> str:
    import hashlib

    content = {"stage": stage, "files": {n: f["sha256"] for n, f in files.items()}, "params": params, "inputs": inputs}
    return hashlib.sha256(_canonical(content)).hexdigest()


def _hash_file(path: Path, keep_limit: int = 0):
    """``(sha256, size, bytes or None)``: the bytes are kept when the file is at most ``keep_limit``."""
    import hashlib

    h = hashlib.sha256()
    size, chunks = 0, []
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
            if size <= keep_limit:
                chunks.append(block)
    return h.hexdigest(), size, (b"".join(chunks) if size <= keep_limit else None)


def _short_params(params, keys) -> str:
    if not isinstance(params, dict):
        return ""
    return ", ".join(f"{k}={params.get(k)!r}" if isinstance(params.get(k), str) else f"{k}={params.get(k)}" for k in keys)


def param_diff(old, new) -> list[str]:
    """Keys whose values differ between two (JSON) parameter dicts, in ``new``'s order then ``old``'s.

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """
    old, new = old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {}
    keys = list(dict.fromkeys([*new, *old]))
    return [k for k in keys if to_jsonable(old.get(k)) != to_jsonable(new.get(k))]


@dataclass
class StageSet:
    """One stage's verified set of files in ``directory`` and its manifest (see :func:`save_stage`).

    ``frame(name)`` / ``json(name)`` read a file of the set (from the bytes that were verified
    when they fit in memory); ``path(name)`` gives the path of a file the manifest vouches for.

    Notebooks 01-07 (the stages they save and load).
    """

    directory: Path
    manifest: dict
    _data: dict = field(default_factory=dict, repr=False)

    @property
    def stage(self) -> str:
        return self.manifest["stage"]

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def params(self) -> dict:
        return self.manifest.get("params") or {}

    @property
    def inputs(self) -> dict:
        return self.manifest.get("inputs") or {}

    @property
    def files(self) -> dict:
        return self.manifest["files"]

    def describe(self, keys=None) -> str:
        """``simulation 3f2a1b2c (n_users=600, seed=42)``: the stage, its fingerprint and some parameters."""
        shown = _short_params(self.params, keys or [])
        return f"{self.stage} {self.fingerprint[:8]}" + (f" ({shown})" if shown else "")

    def path(self, name: str) -> Path:
        if name not in self.files:
            raise KeyError(f"{name} is not part of the {self.stage} set in {self.directory} (it has {sorted(self.files)})")
        return self.directory / name

    def _bytes_or_path(self, name: str):
        from io import BytesIO

        data = self._data.pop(name, None)
        return BytesIO(data) if data is not None else self.path(name)

    def frame(self, name: str, required_columns=()) -> pd.DataFrame:
        src = self._bytes_or_path(name)
        df = _read_parquet(_arrow_reader(src.getvalue()) if hasattr(src, "getvalue") else src)
        missing = [c for c in required_columns if c not in df.columns]
        if missing:
            raise ValueError(f"{self.directory / name} is missing column(s) {missing}; it has {list(df.columns)}")
        return df

    def json(self, name: str):
        src = self._bytes_or_path(name)
        text = src.getvalue().decode("utf-8") if hasattr(src, "getvalue") else src.read_text(encoding="utf-8")
        return json.loads(text)

    def __repr__(self) -> str:
        return f"StageSet({self.describe()}, {sorted(self.files)} in {self.directory})"


def _write_content(content, tmp: Path, name: str) -> None:
    if isinstance(content, pd.DataFrame):
        if not name.endswith(".parquet"):
            raise ValueError(f"{name}: a DataFrame is written as Parquet; name the file *.parquet")
        _to_parquet(content, tmp)
    elif isinstance(content, (dict, list)):
        if not name.endswith(".json"):
            raise ValueError(f"{name}: a dict or list is written as JSON; name the file *.json")
        text = json.dumps(to_jsonable(content), indent=2, ensure_ascii=False, allow_nan=False)
        tmp.write_text(text + "\n", encoding="utf-8")
    elif isinstance(content, bytes):
        tmp.write_bytes(content)
    elif callable(content):
        content(tmp)
        if not tmp.is_file():
            raise RuntimeError(f"the writer of {name} did not write the file it was given ({tmp})")
    else:
        raise TypeError(f"{name}: expected a DataFrame, a dict, bytes or a callable(path), got {type(content).__name__}")


def _check_names(stage: str, names) -> None:
    if not isinstance(stage, str) or not _STAGE_NAME.match(stage):
        raise ValueError(f"stage name {stage!r} must be letters, digits, '_' or '-'")
    for n in names:
        if not isinstance(n, str) or not n or n.startswith(".") or "/" in n or "\\" in n or n.endswith(MANIFEST_SUFFIX):
            raise ValueError(f"file name {n!r} of stage {stage!r} must be a plain file name (no folder, not hidden, not a manifest)")


def save_stage(directory, stage: str, files: dict, *, params: dict | None = None, inputs: dict | None = None) -> StageSet:
    """Write one stage's files as a set that becomes valid all at once, with its lineage.

    Parameters
    ----------
    directory:
        The folder of the set (created if missing).
    stage:
        The stage's name (``"simulation"``, ``"panel"``, ``"forecasts"``, ...).
    files:
        ``{file name: content}``; a content is a DataFrame (written as Parquet), a dict or list
        (JSON), bytes, or a callable that writes the file at the path it is given (for example
        ``lambda p: save_checkpoint(p, model)``).
    params:
        The parameters the set was built with (plain JSON values; recorded, part of the fingerprint).
    inputs:
        ``{input stage: StageSet or fingerprint}``: the sets it was built from. :func:`load_stage`
        compares them with the inputs of the day.

    Steps: the stage's old manifest is removed first (and the removal fsynced), so a crash part-way
    leaves the set visibly incomplete; each file is written by :func:`atomic_write` (temporary
    name, fsync, rename, fsync of the folder); files of the old set that the new one does not have
    are removed; ``<stage>.manifest.json`` is written last, with the stage, the parameters, the
    decaylib version, each file's sha256 and size, the inputs' fingerprints (and parameters) and
    the set's own fingerprint (a hash of the files' hashes, the parameters and the inputs).
    Temporary files of killed writes in the folder are removed first.  The whole write holds the
    folder's lock (:func:`directory_lock`): a second run that writes the same folder waits for it,
    and :func:`load_stage` never reads a set half-written.

    Returns the :class:`StageSet` (usable as an input of the next stage).

    Notebooks 03, 04, 05 and 06.
    """
    from decaylib import __version__

    if not isinstance(files, dict) or not files:
        raise ValueError(f"stage {stage!r}: files must be a non-empty dict of file name -> content")
    _check_names(stage, files)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    with directory_lock(d, f"writing the {stage} set"):
        return _save_stage(d, stage, files, params, inputs, __version__)


def _save_stage(d: Path, stage: str, files: dict, params, inputs, version) -> StageSet:
    clean_temp_files(d)
    mpath = manifest_path(d, stage)
    old_files = []
    try:
        old_files = list(json.loads(mpath.read_text(encoding="utf-8")).get("files", {}))
    except (OSError, ValueError, AttributeError):
        pass
    if mpath.exists() or mpath.is_symlink():
        mpath.unlink()
        _fsync_path(d, directory=True)
    records = {}
    for name, content in files.items():
        with atomic_write(d / name) as tmp:
            _write_content(content, tmp, name)
            sha, size, _ = _hash_file(tmp)
        records[name] = {"sha256": sha, "size": size}
    for name in old_files:
        if name not in files and isinstance(name, str) and "/" not in name and "\\" not in name and not name.startswith("."):
            try:
                (d / name).unlink()
            except (FileNotFoundError, IsADirectoryError, PermissionError):
                pass
    inputs = dict(inputs or {})
    for k, v in inputs.items():
        if not isinstance(v, (str, StageSet)):
            raise TypeError(f"input {k!r} of stage {stage!r} must be a StageSet or a fingerprint string, got {type(v).__name__}")
    input_fp = {k: v if isinstance(v, str) else v.fingerprint for k, v in inputs.items()}
    jparams = to_jsonable(params or {})
    manifest = {
        "format": MANIFEST_FORMAT,
        "stage": stage,
        "fingerprint": _fingerprint(stage, records, jparams, input_fp),
        "decaylib_version": version,
        "written_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "params": jparams,
        "inputs": input_fp,
        "input_params": {k: v.params for k, v in inputs.items() if isinstance(v, StageSet)},
        "files": records,
    }
    write_json(manifest, mpath)
    return StageSet(d, manifest)


def _manifest_ok(m, stage: str) -> bool:
    """Whether a parsed manifest is well formed and its fingerprint matches its own content (the
    files it lists are not read)."""
    try:
        files = m["files"]
        return bool(m.get("format") == MANIFEST_FORMAT and m.get("stage") == stage and isinstance(files, dict) and files
                    and all(isinstance(r, dict) and isinstance(r.get("sha256"), str) and isinstance(r.get("size"), int)
                            for r in files.values())
                    and m.get("fingerprint") == _fingerprint(stage, files, m.get("params"), m.get("inputs") or {}))
    except (KeyError, TypeError, AttributeError, ValueError):
        return False


def read_manifest(directory, stage: str) -> dict | None:
    """The stage's manifest when its fingerprint verifies (it is as :func:`save_stage` wrote it; the
    files it lists are not checked), else None: missing, unreadable, or changed after it was written.

    Its parameters are what a rebuild of a broken set reuses, so a manifest edited by hand is
    never trusted for them.

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """
    try:
        m = json.loads(manifest_path(directory, stage).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and _manifest_ok(m, stage) else None


def load_stage(directory, stage: str, *, expect_inputs: dict | None = None, expect_files=(), made_by: str | None = None) -> StageSet:
    """Verify one stage's set in ``directory`` and return it (see :func:`save_stage`).

    Checks that ``<stage>.manifest.json`` exists and is intact, that every file it lists is there
    with its recorded size and sha256 (a truncated or changed file is detected here, never read),
    that the manifest lists ``expect_files``, and that the recorded inputs are ``expect_inputs``
    (``{input stage: StageSet or fingerprint}``, the inputs as they are now).

    Raises (one line each, naming the artifact, what is wrong and the command that rebuilds it):
    :class:`StageMissingError` (nothing there), :class:`IncompleteArtifactError` (files without a
    manifest, a listed file missing), :class:`CorruptArtifactError` (a file or the manifest does
    not match), :class:`StaleArtifactError` (built from other inputs).  The first three are
    :class:`ArtifactMissingError`\\ s.

    Holds the folder's lock shared (:func:`directory_lock`): it waits while another run writes a set there.

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """
    d = Path(directory)
    with directory_lock(d, shared=True):
        return _load_stage(d, stage, expect_inputs, expect_files, made_by)


def _load_stage(d: Path, stage: str, expect_inputs, expect_files, made_by) -> StageSet:
    command = made_by or STAGE_COMMANDS.get(stage, f"rebuild the {stage} stage")
    mpath = manifest_path(d, stage)
    first = expect_files[0] if expect_files else mpath.name
    if not mpath.exists():
        present = [f for f in expect_files if (d / f).exists()]
        if present:
            verb = "is" if len(present) == 1 else "are"
            raise IncompleteArtifactError(
                stage, d, present[0], f"the {stage} set in {d} is incomplete: {', '.join(present)} {verb} there but "
                f"{mpath.name} is not (an interrupted write, or files of an older decaylib)", command)
        raise StageMissingError(stage, d, first, f"{first} does not exist in {d} (no {mpath.name})", command)
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        m = None
    if not isinstance(m, dict) or not _manifest_ok(m, stage):
        raise CorruptArtifactError(stage, d, mpath.name, f"{mpath.name} in {d} is unreadable or was changed after it was written", command)
    files = m["files"]
    first = next(iter(files))
    not_listed = [f for f in expect_files if f not in files]
    if not_listed:
        raise IncompleteArtifactError(stage, d, not_listed[0], f"{mpath.name} in {d} does not list {', '.join(not_listed)}", command)
    data = {}
    for name, rec in files.items():
        p = d / name
        if not p.is_file():
            raise IncompleteArtifactError(stage, d, name, f"{name} is missing from the {stage} set in {d}", command)
        size = p.stat().st_size
        if size != rec["size"]:
            raise CorruptArtifactError(stage, d, name, f"{name} in {d} is {size:,} bytes but {mpath.name} recorded {rec['size']:,} "
                                       "(truncated or changed since it was written)", command)
        sha, size, blob = _hash_file(p, _KEEP_IN_MEMORY)
        if sha != rec["sha256"] or size != rec["size"]:
            raise CorruptArtifactError(stage, d, name, f"{name} in {d} has changed since it was written (sha256 {sha[:8]}, "
                                       f"{mpath.name} recorded {rec['sha256'][:8]})", command)
        if blob is not None:
            data[name] = blob
    st = StageSet(d, m, data)
    check_inputs(st, expect_inputs, made_by=command)
    return st


def check_inputs(st: StageSet, expect_inputs: dict | None, made_by: str | None = None) -> None:
    """Raise :class:`StaleArtifactError` unless the set ``st`` was built from ``expect_inputs``
    (``{input stage: StageSet or fingerprint}``, the inputs as they are now).

    Notebooks 02-07 (loading the stages of the notebooks before them).
    """
    d, m, stage = st.directory, st.manifest, st.stage
    command = made_by or STAGE_COMMANDS.get(stage, f"rebuild the {stage} stage")
    first = next(iter(st.files))
    recorded = m.get("inputs") or {}
    for k, now in (expect_inputs or {}).items():
        now_fp = now if isinstance(now, str) else now.fingerprint
        was = recorded.get(k)
        if was == now_fp:
            continue
        if was is None:
            raise StaleArtifactError(stage, d, first, f"{first} in {d} was built without a recorded {k} "
                                     f"(the {k} is now {now_fp[:8]})", command)
        old_p = (m.get("input_params") or {}).get(k)
        new_p = now.params if isinstance(now, StageSet) else None
        keys = param_diff(old_p, new_p) if old_p is not None and new_p is not None else []
        old_s, new_s = _short_params(old_p, keys[:6]), _short_params(new_p, keys[:6])
        if not new_s and isinstance(now, StageSet) and now.inputs:  # same parameters: say what it is built from now
            ups = now.manifest.get("input_params") or {}
            new_s = "built from " + ", ".join(
                f"{u} {fp[:8]}" + (f" ({_short_params(ups[u], list(ups[u])[:4])})" if isinstance(ups.get(u), dict) and ups[u] else "")
                for u, fp in now.inputs.items())
        what = (f"{first} in {d} was built from {k} {was[:8]}" + (f" ({old_s})" if old_s else "")
                + f" but the {k} is now {now_fp[:8]}" + (f" ({new_s})" if new_s else ""))
        raise StaleArtifactError(stage, d, first, what, command)

