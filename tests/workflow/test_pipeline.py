"""pipeline.open_source: the simulator or the user's own events, never mixed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from decaylib.checks import InsufficientDataError
from decaylib.workflow.pipeline import (
    NO_TRUTH,
    OWN_DIR,
    SYNTHETIC_FILES,
    check_window_span,
    open_source,
    suggest_windows,
)


def _shop_csv(tmp_path, n_days=30):
    rows = []
    for u in range(6):
        for d in range(0, n_days, 2):
            for c in ("shoes", "hats"):
                rows.append({"uid": f"u{u}", "sku": f"{c}-{d % 3}", "cat": c,
                             "when": f"2024-03-{1 + d:02d} 10:{u:02d}:00", "what": "pageview"})
    path = tmp_path / "shop.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"columns": {"uid": "user_id", "sku": "item_id", "cat": "category",
                                               "when": "ts", "what": "event"},
                                   "event_map": {"pageview": "view"}}))
    return path, mapping


def test_own_events_go_to_their_own_folder_and_nothing_synthetic(tmp_path):
    csv, mapping = _shop_csv(tmp_path)
    src = open_source(tmp_path / "data", csv, mapping, verbose=False)
    assert not src.synthetic and src.truth is None and src.truth_daily is None
    panel = src.panel()
    assert src.artifact_dir.parent == tmp_path / "data" / OWN_DIR
    assert (src.artifact_dir / "panel.parquet").exists()
    assert not [p for f in SYNTHETIC_FILES for p in (tmp_path / "data").rglob(f)]
    assert src.span_days == 29 and panel["user_id"].nunique() == 6
    # the user's own ids round-trip
    code = src.user_code("u3")
    assert src.display_user(code) == "u3"
    m = src.write_metrics("02_preprocessing", {"x": 1})
    assert json.loads(m.read_text())["data"]["kind"] == "own_events"
    assert src.start_date == pd.Timestamp("2024-03-01")


def test_ids_map_back_from_the_artifacts_without_rereading_the_log(tmp_path):
    csv, mapping = _shop_csv(tmp_path)
    open_source(tmp_path / "data", csv, mapping, verbose=False).panel()
    again = open_source(tmp_path / "data", csv, mapping, verbose=False)
    code = again.user_code("u4")
    assert again.display_user(code) == "u4" and again._log is None  # read from id_map_user_id.parquet
    assert list(again.original_ids("category", [0, 1])) == ["hats", "shoes"]
    with pytest.raises(KeyError, match="'nobody' is not in this event log"):
        again.user_code("nobody")


def test_changed_file_or_mapping_gets_a_new_folder(tmp_path):
    csv, mapping = _shop_csv(tmp_path)
    a = open_source(tmp_path / "data", csv, mapping, verbose=False).artifact_dir
    assert open_source(tmp_path / "data", csv, mapping, verbose=False).artifact_dir == a  # deterministic
    csv.write_text(csv.read_text() + "u9,hats-1,hats,2024-03-05 10:00:00,pageview\n")
    assert open_source(tmp_path / "data", csv, mapping, verbose=False).artifact_dir != a


def test_simulator_mode_keeps_data_dir_and_truth(tmp_path):
    src = open_source(tmp_path, verbose=False, n_users=30, n_days=40, seed=2)
    assert src.synthetic and src.artifact_dir == tmp_path
    assert len(src.truth) > 0 and len(src.panel()) > 0
    assert "ground truth" in NO_TRUTH


def test_bad_source_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        open_source(tmp_path, tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="events_mapping was given without events_path"):
        open_source(tmp_path, None, {"ts_unit": "s"})
    with pytest.raises(ValueError, match="is a folder"):
        open_source(tmp_path, tmp_path)


def test_window_span_check_names_the_parameters():
    check_window_span(30, 14, 7)
    with pytest.raises(InsufficientDataError, match=r"spans 10 days; .* pass seq_length=5, horizon=3"):
        check_window_span(10, 14, 7)
    with pytest.raises(InsufficientDataError, match="at least 3"):
        check_window_span(2, 14, 7)
    assert suggest_windows(10, 14, 7) == (5, 3)
    s, h = suggest_windows(4, 14, 7)
    assert s + h <= 4


def test_an_integer_id_missing_from_the_log_is_not_in_the_event_log(tmp_path):
    """Integer ids have no id map: an id the log never held is "not in the event log", an id whose
    events cleaning removed (here a far-off timestamp) is "in the event log but ... cleaning"."""
    from decaylib.recommend.advice import UnknownUserError, resolve_user

    rows = [{"uid": 100 + u, "sku": d % 3, "cat": 1, "when": f"2024-03-{1 + d:02d} 10:{u:02d}:00", "what": "view"}
            for u in range(6) for d in range(0, 30)]
    rows.append({"uid": 777, "sku": 1, "cat": 1, "when": "2025-06-01 10:00:00", "what": "view"})
    path = tmp_path / "ints.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    mapping = {"columns": {"uid": "user_id", "sku": "item_id", "cat": "category", "when": "ts", "what": "event"}}
    src = open_source(tmp_path / "data", path, mapping, verbose=False)
    with pytest.warns(Warning):
        src.panel()
    assert resolve_user(src, 103) == 103
    with pytest.raises(UnknownUserError, match="unknown user_id 999: not in the event log; valid ids include"):
        resolve_user(src, 999)
    with pytest.raises(UnknownUserError, match="user_id 777 is in the event log but none of its events survived cleaning"):
        resolve_user(src, "777")
    again = open_source(tmp_path / "data", path, mapping, verbose=False)  # the panel from disk, the log not read
    assert again.user_code(103) == 103 and again._log is None
    with pytest.raises(UnknownUserError, match="unknown user_id 999: not in the event log"):
        resolve_user(again, 999)


def test_a_headerless_semicolon_file_with_unix_times_and_no_item_column(tmp_path):
    """The mapping keys header, sep, tz reach load_events through open_source; the days are the shop's."""
    import warnings

    from decaylib.checks import DataWarning

    day0 = pd.Timestamp("2024-03-01 00:30").tz_localize("Asia/Shanghai")  # 2024-02-29 16:30 UTC
    rows = [f"{100 + u};{int((day0 + pd.Timedelta(days=d, minutes=u)).timestamp())};view"
            for u in range(6) for d in range(30)]
    path = tmp_path / "shop.csv"
    path.write_text("\n".join(rows) + "\n")
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"header": None, "sep": ";", "columns": {"0": "user_id", "1": "ts", "2": "event"},
                                   "ts_unit": "s", "tz": "Asia/Shanghai", "category": 1}))
    src = open_source(tmp_path / "data", path, mapping, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # no item column; one category: the bot rule's MAD
        panel = src.panel()
    assert src.start_date == pd.Timestamp("2024-03-01")  # the local date, not the UTC one (02-29)
    assert src.span_days == 30 and panel["user_id"].nunique() == 6
    assert src.event_log().report["item_mode"] == "constant"
