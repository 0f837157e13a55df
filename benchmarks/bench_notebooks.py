"""Wall time and peak kernel memory of every notebook with its default parameters.

Each notebook is executed with papermill (as ``make run`` does) while a watcher thread samples
the resident memory (RSS) of the kernel process and its children every 0.1 s.  The target from the
project issues: every notebook's kernel stays below 2 GiB (a classroom laptop), and the whole
``make run`` finishes in under 10 minutes on 2 CPU cores.

Usage::

    python benchmarks/bench_notebooks.py [--only 03 04] [--out build/bench_notebooks.json]

A benchmark, not a test: it reports numbers and never fails because the machine is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decaylib.workflow.runner import execute_notebook, list_notebooks  # noqa: E402

try:
    import psutil
except ImportError:  # pragma: no cover - psutil comes with jupyter's kernel machinery
    raise SystemExit("bench_notebooks needs psutil (pip install psutil)") from None


class PeakWatcher(threading.Thread):
    """Samples the summed RSS of this process's descendants except this process itself."""

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = 0
        self._halt = threading.Event()
        self._me = psutil.Process(os.getpid())

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0
            for child in self._me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._halt.wait(self.interval)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="notebook number prefixes")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    os.environ.pop("MPLBACKEND", None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nb in list_notebooks(ROOT / "notebooks", args.only):
            watcher = PeakWatcher()
            watcher.start()
            t0 = time.perf_counter()
            execute_notebook(nb, Path(tmp) / nb.name, cwd=nb.parent)
            seconds = time.perf_counter() - t0
            peak = watcher.stop()
            rows.append({"notebook": nb.stem, "seconds": round(seconds, 1), "peak_kernel_mib": round(peak / 2**20)})
            print(f"{nb.stem:28s} {seconds:7.1f} s   peak kernel RSS {peak / 2**20:7.0f} MiB", flush=True)
    total = sum(r["seconds"] for r in rows)
    worst = max(r["peak_kernel_mib"] for r in rows)
    print(f"{'total':28s} {total:7.1f} s   worst peak {worst} MiB (target < 2048 MiB)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"notebooks": rows, "total_seconds": total, "worst_peak_mib": worst,
                                        "cpu_count": os.cpu_count()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
