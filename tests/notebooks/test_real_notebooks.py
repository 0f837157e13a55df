"""Notebooks 02-07 on event logs that are not simulated (issue 8).

Two logs built from the shipped UCI Online Retail sample in the shop's own format (string
customer ids, its own column names, cancellations to drop): the full year of sparse purchases and
a 10-day slice. Each notebook must run to the end, write nothing synthetic into its data folder and
record in its metrics which data it ran on.
"""

from __future__ import annotations

import json

import pytest

from decaylib.workflow.pipeline import OWN_DIR, SYNTHETIC_FILES, open_source
from decaylib.workflow.runner import execute_notebook
from tests.conftest import NOTEBOOKS
from tests.real_logs import make_online_retail_log

pytestmark = pytest.mark.notebook

SMALL_FORECAST = {"epochs": 4, "cv_epochs": 1, "n_folds": 2, "max_train_windows": 3000, "hidden_size": 8}
PER_NOTEBOOK = {
    "03_forecasting": SMALL_FORECAST,
    "04_decay_rate": {"n_cutoffs": 1, "n_boot": 100, "mc_replicates": 100},
    "06_recommendations": {"n_boot": 50},
}
SHORT = {"03_forecasting": {"seq_length": 5, "horizon": 3}}
NOTEBOOKS_02_07 = ["02_preprocessing", "03_forecasting", "04_decay_rate", "05_decay_points", "06_recommendations"]


def _text(output) -> str:
    """What a reader sees of an output: streams, plain text and HTML (not images)."""
    if "text" in output:
        return "".join(output["text"])
    data = output.get("data", {})
    return "".join("".join(data.get(k, "")) for k in ("text/plain", "text/html", "text/markdown"))


def _synthetic_files(root):
    return sorted(str(p) for name in SYNTHETIC_FILES for p in root.rglob(name))


@pytest.fixture(scope="module", params=[None, 10], ids=["full_year", "ten_days"])
def real_run(request, tmp_path_factory):
    """Run notebooks 02-07 on one log; return data_dir, metrics by notebook, the files, the report."""
    days = request.param
    base = tmp_path_factory.mktemp(f"real_{days or 'full'}")
    csv, mapping = make_online_retail_log(base / "shop", days=days)
    data_dir, out = base / "data", base / "out"
    metrics = {}
    for name in NOTEBOOKS_02_07:
        params = {"data_dir": str(data_dir), "events_path": str(csv), "events_mapping": str(mapping),
                  **PER_NOTEBOOK.get(name, {}), **(SHORT.get(name, {}) if days else {})}
        execute_notebook(NOTEBOOKS / f"{name}.ipynb", out / f"{name}.ipynb", params, cwd=NOTEBOOKS)
        found = list(data_dir.rglob(f"metrics/{name}.json"))
        assert len(found) == 1, (name, found)
        metrics[name] = json.loads(found[0].read_text())
    # 07, the report, for the most active customer that cleaning kept, by the shop's own id
    src = open_source(data_dir, csv, mapping, verbose=False)
    panel = src.panel()
    active = panel[panel[["view", "click", "cart", "purchase"]].sum(axis=1) > 0]
    customer = src.display_user(int(active["user_id"].value_counts().index[0]))
    nb = execute_notebook(NOTEBOOKS / "07_user_report.ipynb", out / "07_user_report.ipynb",
                          {"data_dir": str(data_dir), "events_path": str(csv), "events_mapping": str(mapping),
                           "user_id": customer, "retail_file": None}, cwd=NOTEBOOKS)  # as make report runs it
    report = "\n".join(_text(o) for c in nb.cells for o in c.get("outputs", []))
    return data_dir, metrics, csv, mapping, days, customer, report


def test_no_synthetic_file_and_metrics_say_what_ran(real_run):
    data_dir, metrics, csv, _, _, _, _ = real_run
    assert _synthetic_files(data_dir) == []
    # every artifact lives in the folder of this event file, under data_dir/own/
    assert sorted(p.name for p in data_dir.iterdir()) == [OWN_DIR]
    for name, m in metrics.items():
        assert m["data"]["kind"] == "own_events", name
        assert m["data"]["events_path"] == str(csv.resolve()), name


def test_every_estimate_says_whether_it_is_supported(real_run):
    _, metrics, _, _, _, _, _ = real_run
    for name in ("04_decay_rate", "05_decay_points"):
        counts = metrics[name]["reasons"]
        for method, by_reason in counts.items():
            total = sum(by_reason.values())
            assert total > 0, (name, method)
            assert set(by_reason) != {"ok"} or total < 20, (name, method, by_reason)  # sparse logs: not all ok


def test_short_log_stops_with_one_line_for_default_windows(real_run, tmp_path):
    data_dir, _, csv, mapping, days, _, _ = real_run
    if days is None:
        pytest.skip("the full-year log fits the default windows")
    with pytest.raises(Exception) as err:
        execute_notebook(NOTEBOOKS / "03_forecasting.ipynb", tmp_path / "03.ipynb",
                         {"data_dir": str(data_dir), "events_path": str(csv), "events_mapping": str(mapping),
                          **SMALL_FORECAST}, cwd=NOTEBOOKS)
    assert "spans 10 days; seq_length + horizon = 14 + 7 = 21 needs at least 21; pass seq_length=5, horizon=3" in str(err.value)


def test_report_speaks_the_shops_ids_and_never_contradicts_itself(real_run):
    _, _, _, _, _, customer, report = real_run
    assert customer.startswith("C") and f"user {customer}" in report
    assert "still rising (0%" not in report and "NaN" not in report
    assert "against the simulator" not in report  # no truth table on the shop's data
