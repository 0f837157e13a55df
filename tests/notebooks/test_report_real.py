"""The per-user report (notebook 07 through the runner's ``report`` command) on a shop's own log.

The log is the 10-day slice of the shipped Online Retail sample in the shop's own format (string
customer ids such as ``"C12347"``, its own column names, a JSON mapping), plus one visitor that
views hundreds of products a day and never buys, which cleaning removes as a bot (the sample has
only orders, and the bot rule's MAD is 0 on it: its fallback never removes a buyer). The report must use the shop's ids, write
nothing synthetic, show no tutorial text, and answer an unknown or removed id with one line.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from decaylib.checks import DataWarning
from decaylib.recommend.advice import ACTIONS
from decaylib.workflow.pipeline import OWN_DIR, SYNTHETIC_FILES, open_source
from decaylib.workflow.runner import main
from tests.conftest import NOTEBOOKS
from tests.real_logs import make_online_retail_log
from tests.workflow.test_runner import KERNEL_NOISE_TEXT, external_refs, local_scripts

pytestmark = pytest.mark.notebook

BOT = "C00001"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    base = tmp_path_factory.mktemp("report_real")
    csv, mapping = make_online_retail_log(base / "shop", days=10)
    shop_map = json.loads(mapping.read_text())
    shop_map["event_map"]["visit"] = "view"  # product pages seen: the scraper's only events
    mapping.write_text(json.dumps(shop_map))
    frame = pd.read_csv(csv, dtype=str)
    days = pd.to_datetime(frame["when"]).dt.normalize().unique()[:5]
    skus = frame[["sku", "family"]].drop_duplicates().head(50)
    bot = pd.DataFrame([{"customer": BOT, "sku": s.sku, "family": s.family, "kind": "visit",
                         "when": str(d + pd.Timedelta(seconds=60 * (i * 50 + j)))}
                        for d in days for i in range(6) for j, s in enumerate(skus.itertuples())])
    pd.concat([frame, bot], ignore_index=True).to_csv(csv, index=False)
    # the most active customer that cleaning kept (the sample's busiest buyers look like bots to the bot rule)
    src = open_source(base / "data", csv, mapping, verbose=False)
    with pytest.warns(DataWarning):
        panel = src.panel()
    active = panel[panel[["view", "click", "cart", "purchase"]].sum(axis=1) > 0]
    customer = src.display_user(int(active["user_id"].value_counts().index[0]))
    assert customer.startswith("C") and customer != BOT
    return base, csv, mapping, customer


def _args(base, build, csv, mapping):
    return ["report", "--notebooks", str(NOTEBOOKS), "--build", str(build), "--report-data-dir", str(base / "data"),
            "--events", str(csv), "--mapping", str(mapping)]


def _synthetic_files(root):
    return sorted(str(p) for name in SYNTHETIC_FILES for p in root.rglob(name))


def test_report_on_own_events_uses_own_ids_and_no_tutorial_text(shop):
    base, csv, mapping, customer = shop
    build = base / "build"
    assert main([*_args(base, build, csv, mapping), "--user-id", customer]) == 0
    page = build / "reports" / csv.stem / f"user_{customer}.html"
    html = page.read_text(encoding="utf-8")
    assert f"Interest report: user {customer}" in html
    # self-contained: nothing from the network, the book's local MathJax, no kernel noise
    assert external_refs(html) == []
    assert [p.is_file() for p in local_scripts(html, page)] == [True]
    assert not any(noise in html for noise in KERNEL_NOISE_TEXT)
    assert any(a in html for a in ACTIONS)
    assert "not estimable (" in html or "interval" in html  # every half-life says how sure it is
    text = re.sub(r'src="data:[^"]*"', "", html)  # figures are base64 data, not text
    for tutorial in ("You will learn", "Exercises", "Solutions", "dtype:", "Traceback", "simulator&#39;s truth",
                     "simulator's truth", "NaN", "nan%"):
        assert tutorial not in text, tutorial
    assert f"{csv.stem}/user_{customer}.html" in (build / "index.html").read_text()
    # nothing synthetic anywhere under data_dir; every artifact in the folder of this event file
    data_dir = base / "data"
    assert _synthetic_files(data_dir) == []
    assert [p.name for p in data_dir.iterdir()] == [OWN_DIR]


def test_unknown_and_removed_ids_are_one_line_each_and_nothing_is_written(shop, capsys, monkeypatch):
    base, csv, mapping, customer = shop
    build = base / "build_bad"
    # as `make report` passes them: through the environment
    monkeypatch.setenv("DECAY_REPORT_IDS", f"{customer} C99999999 {BOT}")
    monkeypatch.setenv("DECAY_REPORT_EVENTS", str(csv))
    monkeypatch.setenv("DECAY_REPORT_MAPPING", str(mapping))
    args = ["report", "--notebooks", str(NOTEBOOKS), "--build", str(build), "--report-data-dir", str(base / "data"),
            "--from-env"]
    assert main(args) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("[report] unknown user_id C99999999: not in the event log; valid ids include ['C")
    assert lines[1].startswith(f"[report] user_id {BOT} has no report: cleaning (notebook 02) removed it as a bot (")
    assert "events per active day" in lines[1] and "to keep it, rebuild the panel with bot_z=" in lines[1]
    assert "Traceback" not in err
    assert not build.exists()  # every id is checked before anything is written
    assert _synthetic_files(base / "data") == []


def test_report_goes_on_without_the_lstm_when_its_forecasts_do_not_fit(shop, tmp_path, monkeypatch):
    """A log whose cross-fitted forecasts exceed the memory budget still gets its report: the advice rests on the
    back-tested count forecast, and the page says why there is no LSTM forecast or early warning."""
    base, csv, mapping, customer = shop
    monkeypatch.setenv("DECAYLIB_MEMORY_BUDGET_GIB", "1e-6")  # read by the report's kernel at import
    build = tmp_path / "build"
    assert main([*_args(tmp_path, build, csv, mapping), "--user-id", customer]) == 0
    html = (build / "reports" / csv.stem / f"user_{customer}.html").read_text(encoding="utf-8")
    assert "No LSTM forecast and no early warning in this report" in html and "DECAYLIB_MEMORY_BUDGET_GIB" in html
    assert any(a in html for a in ACTIONS) and "Expected events come from the" in html
