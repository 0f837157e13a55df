"""Per-user advice for the report (notebook 07): what to do with each of a user's categories.

:func:`resolve_user` turns an id as the analyst types it into the panel's code (or says why the
user has no report: not in the event log, removed as a bot, ...); :func:`report_forecast` gives
every pair's expected events over the horizon from the forecast method that won a back-test on
the same log; :func:`pair_actions` (every pair) and :func:`category_actions` (one user) give each
category its current level against its peak, the forecast's pace, its decay rate with an interval
where the evidence supports one, the decay point and alert when they are recent, and one of
:data:`ACTIONS` with the reason built from those numbers; :func:`action_backtest` and
:func:`report_backtest` replay the rules at an earlier date and score them on what users did
next; :func:`report_numbers`, :func:`forecast_note`, :func:`backtest_note` and
:func:`half_life_text` put them in words for a reader.

Import flow (one way): ``decaylib.data`` -> ``decaylib.decay.counts`` -> :mod:`decaylib.recommend.strategies`
-> ``advice``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from decaylib.checks import InsufficientDataError, check_int, require_frame
from decaylib.data.clean import MIN_REMOVABLE_BOTS
from decaylib.decay.counts import forecast_counts
from decaylib.decay.evidence import DEFAULT_RULES, REASONS, wald_interval
from decaylib.recommend.strategies import decay_inputs_at_cutoff
from decaylib.schema import BASE_COLUMNS, BEHAVIOURS, EVENT_TOTAL, PAIR_COLS

__all__ = ['UnknownUserError', 'removed_users', 'check_user', 'resolve_user', 'reason_legend', 'ACTIONS', 'NEAR_PEAK', 'half_life_text', 'trailing_level', 'pair_actions', 'category_actions', 'action_backtest', 'report_forecast', 'forecast_note', 'report_backtest', 'backtest_note', 'report_numbers']


class UnknownUserError(KeyError):
    """A user id that is not in the data; the message lists a few valid ids.

    Notebook 07.
    """

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


def removed_users(panel_meta: dict | None) -> dict[int, str]:
    """``{user code: why it was removed and how to keep it}`` for the users that cleaning removed as bots.

    Reads the ``bots`` records and the ``bot_rule`` numbers that
    :func:`decaylib.workflow.pipeline.save_panel` writes into ``panel_meta.json``: the evidence
    (events per active day against the median, robust z against ``bot_z``, the scale when the MAD
    was 0), then the value of each parameter of :func:`decaylib.data.preprocess.preprocess` that
    would keep the user: ``bot_z`` (notebook 02's parameter) at the user's z or above, or
    ``max_bot_share`` below the share of users the rule removed (that keeps every flagged user, and
    only works with more than :data:`decaylib.data.clean.MIN_REMOVABLE_BOTS` of them).  An older
    ``panel_meta.json`` without the numbers gives the recorded reason alone, or a generic one.

    Notebook 07.
    """
    meta = panel_meta or {}
    rule = meta.get("bot_rule") or {}
    out: dict[int, str] = {}
    for b in meta.get("bots") or []:
        if b.get("removed", True):
            why = str(b.get("reason") or "flagged by the bot rule")
            how = _how_to_keep(b, rule)
            out[int(b["user_id"])] = f"{why}; to keep it, {how}" if how else why
    for u in meta.get("bot_users") or []:
        out.setdefault(int(u), "flagged by the bot rule (events per active day far above the median user's)")
    return out


def _how_to_keep(record: dict, rule: dict) -> str:
    """The ``bot_z`` and ``max_bot_share`` that keep a removed user, from its record's numbers ("" without them)."""
    z, bot_z = record.get("robust_z"), rule.get("bot_z")
    if z is None or bot_z is None:
        return ""
    keep_z = math.ceil(float(z) * 10) / 10  # a user is flagged when z > bot_z: bot_z = z keeps it
    scale = "" if rule.get("scale_rule", "mad") == "mad" or rule.get("scale") is None else (
        f" (the MAD was 0, so z used the fallback scale {float(rule['scale']):.3f}, rule {rule['scale_rule']})")
    how = (f"rebuild the panel with bot_z={keep_z:g} or more (now {float(bot_z):g}; notebook 02's parameter bot_z, "
           f"or preprocess(..., bot_z={keep_z:g})): its robust z is {float(z):.2f}{scale}")
    n, n_users, share = rule.get("n_removable"), rule.get("n_users"), rule.get("max_bot_share")
    if n is None or not n_users:
        return how
    if n <= MIN_REMOVABLE_BOTS:
        return (f"{how}; max_bot_share cannot keep it: the rule removed {n} user(s), and the cap never stops the "
                f"removal of {MIN_REMOVABLE_BOTS} or fewer")
    top = n / n_users  # the cap keeps every flagged user when n > max_bot_share * n_users
    keep_share = math.floor(top * 1000) / 1000
    if keep_share >= top:
        keep_share -= 0.001
    now = "None (no cap)" if share is None else f"{float(share):g}"
    return (f"{how}; or with preprocess(..., max_bot_share={max(keep_share, 0.0):g}) (now {now}): any value below "
            f"{n}/{n_users:,} = {top:.4g} keeps all {n} flagged users")


def _id_list(users: np.ndarray, display: Callable | None, n: int = 5) -> list:
    shown = users[:n].tolist()
    return [display(u) for u in shown] if display is not None else shown


def check_user(panel: pd.DataFrame, user_id, *, code_of: Callable | None = None, display: Callable | None = None,
               removed: dict | None = None) -> int:
    """The panel's integer code of ``user_id``, or :class:`UnknownUserError` with one clear line.

    Parameters
    ----------
    user_id:
        The id to report on: the panel's integer id (simulator), or, with ``code_of``, the user's
        own id as in their event file (a string such as ``"C12347"`` or an int).
    code_of:
        Maps the user's own id to the panel's code (e.g. :meth:`decaylib.workflow.pipeline.DataSource.user_code`);
        a ``KeyError`` or ``ValueError`` from it means "not in the event log" (so it must fail for an
        id the log does not hold); an id it maps that the panel lacks was removed by cleaning.
        ``None``: ids are the panel's own integers.
    display:
        Maps a code back to the user's own id, to list valid ids in the form the user knows.
    removed:
        ``{code: reason}`` of users cleaning removed as bots (:func:`removed_users`: the rule's
        numbers and the ``bot_z`` / ``max_bot_share`` that would keep the user): such an id gets
        that explanation instead of "not in the data".

    Notebook 07.
    """
    if "user_id" not in panel.columns:
        raise KeyError("panel is missing required column 'user_id'")
    users = np.unique(panel["user_id"].to_numpy())
    removed = removed or {}
    valid = f"valid ids include {_id_list(users, display)} ({len(users):,} users"
    valid += f", ids {users.min()}-{users.max()})" if display is None and len(users) else ")"
    if code_of is None:
        try:
            uid = int(user_id)
            if uid != user_id and not isinstance(user_id, str):
                raise ValueError
        except (TypeError, ValueError):
            raise UnknownUserError(f"user_id must be an integer id, got {user_id!r}; {valid}") from None
        shown = uid
    else:
        shown = user_id
        try:
            uid = int(code_of(user_id))
        except (KeyError, ValueError, TypeError):
            raise UnknownUserError(f"unknown user_id {user_id}: not in the event log; {valid}") from None
    if uid in removed:
        raise UnknownUserError(
            f"user_id {shown} has no report: cleaning (notebook 02) removed it as a bot ({removed[uid]}); {valid}")
    if uid not in set(users.tolist()):
        if code_of is not None:  # in the event log, but nothing of it survived cleaning
            raise UnknownUserError(f"user_id {shown} is in the event log but none of its events survived cleaning "
                                   f"(notebook 02: far-off timestamps, or a window that leaves them out); {valid}")
        raise UnknownUserError(f"unknown user_id {uid}: not in the data; {valid}")
    return uid


def resolve_user(src, user_id) -> int:
    """The panel code of the report's ``user_id`` in a :class:`decaylib.workflow.pipeline.DataSource`.

    On the simulator ``user_id`` is the panel's integer id; on the user's own events it is their
    own id (``"C12347"``, or an int if their ids are ints), mapped with ``src.user_code``.
    Unknown ids, and ids that cleaning removed as bots (read from ``panel_meta.json``), raise
    :class:`UnknownUserError` with one line that lists a few valid ids in the user's own form.
    The runner calls this for every id before it writes any report; notebook 07 calls it first.
    """
    panel = src.panel()
    removed = removed_users(src.panel_meta())
    if src.synthetic:
        return check_user(panel, user_id, removed=removed)
    return check_user(panel, user_id, code_of=src.user_code, display=src.display_user, removed=removed)


def reason_legend(advice: pd.DataFrame) -> pd.DataFrame:
    """Why the half-life of some categories is not estimable: ``reason, categories, meaning``.

    Notebook 07.
    """

    own = {"not_estimated": "the λ fit returned no estimate for this pair",
           "no_decay_phase": "no decay point up to the report date (or no observed day after it): nothing to fit"}
    counts = advice.loc[advice["lam_reason"] != "ok", "lam_reason"].value_counts()
    return pd.DataFrame({"reason": counts.index.astype(str), "categories": counts.to_numpy(),
                         "meaning": [own.get(r) or REASONS.get(r, r) for r in counts.index]})

#: The actions of the per-user report, in order of decreasing interest.
ACTIONS = ("keep recommending", "time a promotion", "re-engage with fresh items", "stop recommending",
           "dormant: no recent interest")

#: A level at least this share of its highest is called "near its highest level" in the reasons.
NEAR_PEAK = 0.9


def _pct(ratio: float) -> str:
    """The percentage the reasons print for a ratio (the same rounding everywhere)."""
    return f"{ratio:.0%}"


def _fmt_days(d: float) -> str:
    if not np.isfinite(d):
        return "∞"
    return f"{d:.1f}" if d < 10 else f"{d:.0f}"


def half_life_text(half_life: float, lo: float = np.nan, hi: float = np.nan, reason: str = "ok",
                   level: float = 0.90) -> str:
    """The half-life as the report shows it: with its interval when the evidence rules say
    ``ok``, otherwise ``"not estimable (<reason>)"``.

    ``"12 days (90% interval 7 to 30 days)"``; an interval that reaches λ <= 0 has an open upper
    end (``"7 to no decay"``); a fitted λ <= 0 is ``"no decay measured (λ ≤ 0)"`` (the fit found
    no fall after the decay point; the level may still be below its highest).

    Notebook 07.
    """
    if reason != "ok" or np.isnan(half_life):
        return f"not estimable ({reason})"
    text = "no decay measured (λ ≤ 0)" if np.isinf(half_life) else f"{_fmt_days(half_life)} days"
    if np.isnan(lo) and np.isnan(hi):
        return text
    if np.isinf(lo):
        interval = "no decay"
    else:
        lower = _fmt_days(lo) if np.isfinite(lo) else "?"
        interval = f"{lower} to no decay" if np.isinf(hi) else f"{lower} to {_fmt_days(hi)} days"
    if np.isinf(half_life):
        return f"no decay measured (λ ≤ 0; {level:.0%} interval of the half-life: {interval})"
    return f"{text} ({level:.0%} interval {interval})"


def _lambda_columns(frame: pd.DataFrame | None, uid: int, cats: pd.DataFrame) -> pd.DataFrame:
    """λ, its interval and reason for each category of ``cats`` (NaN and a reason when missing)."""
    cols = ["lam_hat", "se_lam", "lam_lo", "lam_hi", "half_life", "half_life_lo", "half_life_hi"]
    if frame is None or frame.empty:
        out = cats[["category"]].copy()
        for c in cols:
            out[c] = np.nan
        out["lam_reason"] = None
        return out
    require_frame(frame, "lam", ("user_id", "category", "lam_hat"))
    f = frame.loc[frame["user_id"].to_numpy() == uid].drop_duplicates("category")
    keep = ["category", *[c for c in cols if c in f.columns], *(["reason"] if "reason" in f.columns else [])]
    out = cats[["category"]].merge(f[keep], on="category", how="left")
    for c in cols:
        if c not in out.columns:
            out[c] = np.nan
    lam = out["lam_hat"].to_numpy(dtype=float)
    reason = out["reason"].to_numpy(dtype=object) if "reason" in out.columns else np.full(len(out), None, dtype=object)
    has_row = cats[["category"]].merge(f[["category"]].assign(_r=True), on="category", how="left")["_r"].notna().to_numpy()
    reason = np.where(np.isfinite(lam), np.where(pd.isna(reason), "ok", reason), reason)
    reason = np.where(has_row & pd.isna(reason), "not_estimated", reason)
    out["lam_reason"] = reason
    # ok estimates without an interval of their own: a Wald interval from se_lam when given
    wald = np.isfinite(lam) & ~np.isfinite(out["lam_lo"].to_numpy(dtype=float)) & np.isfinite(out["se_lam"].to_numpy(dtype=float))
    if wald.any():

        lo, hi = wald_interval(lam[wald], out["se_lam"].to_numpy(dtype=float)[wald], DEFAULT_RULES.interval_level)
        out.loc[wald, "lam_lo"], out.loc[wald, "lam_hi"] = lo, hi
    with np.errstate(divide="ignore"):
        hl = np.where(lam > 0, np.log(2) / np.where(lam > 0, lam, 1.0), np.inf)
    out["half_life"] = np.where(np.isfinite(lam), hl, np.nan)
    lo_l, hi_l = out["lam_lo"].to_numpy(dtype=float), out["lam_hi"].to_numpy(dtype=float)
    need = np.isfinite(lam) & ~np.isfinite(out["half_life_lo"].to_numpy(dtype=float)) & np.isfinite(lo_l) & np.isfinite(hi_l)
    if need.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            out.loc[need, "half_life_lo"] = np.where(hi_l[need] > 0, np.log(2) / hi_l[need], np.inf)
            out.loc[need, "half_life_hi"] = np.where(lo_l[need] > 0, np.log(2) / lo_l[need], np.inf)
    bad = ~np.isfinite(lam)
    out.loc[bad, [c for c in cols if c != "lam_hat"]] = np.nan
    return out


def trailing_level(panel: pd.DataFrame, window: int = 7) -> np.ndarray:
    """The report's *level* on every panel row: the mean daily ``interest`` over the last
    ``window`` days of its (user, category) pair, aligned with ``panel``'s rows.

    The days before a pair's first row count as days with score 0 (the panel starts a pair at its
    first event, so the first days are not a spike: one event is one event in ``window`` days);
    days lost to a logging outage (``observed`` False) are left out of the mean. Rows must be
    one per day per pair, without gaps (the zero-filled panel of :mod:`decaylib.data.preprocess`).
    Vectorised (cumulative sums within each pair), so it runs on a whole shop's panel at once.

    Notebook 07.
    """
    window = check_int("window", window, minimum=1)
    require_frame(panel, "panel", BASE_COLUMNS, allow_empty=True)
    if panel.empty:
        return np.empty(0)
    order = np.lexsort((panel["day"].to_numpy(), panel["category"].to_numpy(), panel["user_id"].to_numpy()))
    u = panel["user_id"].to_numpy()[order]
    c = panel["category"].to_numpy()[order]
    obs = panel["observed"].to_numpy(dtype=bool)[order] if "observed" in panel.columns else np.ones(len(panel), dtype=bool)
    x = np.where(obs, panel["interest"].to_numpy(dtype=float)[order], 0.0)
    n = len(x)
    new_pair = np.r_[True, (u[1:] != u[:-1]) | (c[1:] != c[:-1])]
    first = np.maximum.accumulate(np.where(new_pair, np.arange(n), 0))  # row of the pair's first day
    pos = np.arange(n) - first
    cx, co = np.r_[0.0, np.cumsum(x)], np.r_[0.0, np.cumsum(obs.astype(float))]
    lo = np.maximum(first, np.arange(n) - window + 1)
    sx, so = cx[np.arange(n) + 1] - cx[lo], co[np.arange(n) + 1] - co[lo]
    days = so + np.maximum(0, window - 1 - pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.where(days > 0, sx / np.where(days > 0, days, 1.0), np.nan)
    # a window of outage days only: the last level before it (0 before the pair's first level)
    last = np.maximum.accumulate(np.where(np.isfinite(level) | new_pair, np.arange(n), 0))
    level = np.where(np.isfinite(level), level, np.nan_to_num(level[last], nan=0.0))
    out = np.empty(n)
    out[order] = level
    return out


def _event_counts(p: pd.DataFrame) -> np.ndarray:
    """Events per panel row (the behaviour counts summed; 1 per day with interest when there are none)."""
    counts = [c for c in BEHAVIOURS if c in p.columns]
    n_ev = p[counts].sum(axis=1).to_numpy(dtype=float) if counts else (p["interest"].to_numpy(dtype=float) > 0) * 1.0
    observed = p["observed"].to_numpy(dtype=bool) if "observed" in p.columns else np.ones(len(p), dtype=bool)
    return np.where(observed, n_ev, 0.0)


def _forecast_column(forecast: pd.DataFrame | None, keys: pd.DataFrame, horizon: int) -> tuple[np.ndarray, str]:
    """The forecast's expected events of every pair in ``keys`` (NaN without a forecast) and the method's name."""
    if forecast is None:
        return np.full(len(keys), np.nan), ""
    require_frame(forecast, "forecast", (*PAIR_COLS, "expected"))
    h = forecast.attrs.get("horizon")
    if h is not None and int(h) != horizon:
        raise ValueError(f"the forecast is over {int(h)} days but horizon={horizon}: forecast with horizon={horizon}")
    f = forecast[[*PAIR_COLS, "expected"]].drop_duplicates(list(PAIR_COLS))
    got = keys.merge(f, on=list(PAIR_COLS), how="left")["expected"].to_numpy(dtype=float)
    method = str(forecast.attrs.get("picked") or (forecast["method"].iloc[0] if "method" in forecast.columns and len(forecast) else "the forecast"))
    # a pair the forecaster did not see (no event up to its cutoff) expects nothing from its own history
    return np.where(np.isfinite(got), got, 0.0), method


def pair_actions(panel: pd.DataFrame, cutoff_day: int, *, forecast: pd.DataFrame | None = None,
                 lam: pd.DataFrame | None = None, decay_points: pd.DataFrame | None = None,
                 alerts: pd.DataFrame | None = None, horizon: int = 14, level_window: int = 7,
                 promo_ratio: float = 0.5, stop_ratio: float = 0.15, start_date=None,
                 interval_level: float = 0.90) -> pd.DataFrame:
    """One recommended action for every (user, category) pair of ``panel`` at ``cutoff_day``, with its reason.

    The state of each pair, from data up to the cutoff only:

    * ``level``: the mean daily score over the last ``level_window`` days (:func:`trailing_level`),
      ``highest_level`` its highest value so far, ``ratio = level / highest_level``;
    * ``recent_events``: events in the last ``level_window`` days;
    * ``expected_next``: the events ``forecast`` expects over the next ``horizon`` days (a frame of
      :func:`decaylib.decay.counts.forecast_counts` at this cutoff; the report uses the method that
      won the back-test on the log, ``method="auto"``). ``outlook`` is the forecast's daily pace
      over the last ``level_window`` days' pace, ``(expected_next / horizon) / (recent_events /
      level_window)``; ``effective_ratio = ratio * min(1, outlook)``: a category whose last days
      collapsed (41, 1, 0 events) is not "at its highest level" when the forecast expects a fraction
      of that pace. Without ``forecast``: NaN, and ``effective_ratio = ratio``.
    * λ with its interval and reason (``lam``), the decay point (``decay_points``: ``t_decay``)
      and the early warning (``alerts``: ``alert_day``), each only up to the cutoff. A decay point
      or alert more than ``horizon`` days before the cutoff is history (``current_turn`` False):
      it stays in the table but no longer drives the action or the reason.

    The action, with ``e = effective_ratio``: no event in the last ``level_window`` days:
    **dormant**; ``e >= promo_ratio``: **time a promotion** with a current decay point or alert,
    **keep recommending** without, but **re-engage with fresh items** when the forecast expects
    fewer than one event every ``level_window`` days (``expected_next < horizon / level_window``:
    a single purchase last week is strong against its own past and still no reason to keep
    pushing); ``stop_ratio <= e < promo_ratio``: **re-engage with fresh items**; ``e <
    stop_ratio``: **stop recommending**. Each reason sentence is built from the
    numbers in its row, with the same rounding (the percentage is ``ratio``, the forecast's
    share is ``outlook``).

    Returns one row per pair (ordered by user, action as in :data:`ACTIONS`, level highest first):
    ``user_id, category, level, highest_level, ratio, recent_events, last_event_day, expected_next,
    outlook, effective_ratio, lam_hat, lam_lo, lam_hi, half_life, half_life_lo, half_life_hi,
    lam_reason, half_life_text, t_decay, alert_day, current_turn, action, reason``;
    ``attrs["method"]`` names the forecast's method.

    Notebook 07.
    """
    cutoff_day = check_int("cutoff_day", cutoff_day, minimum=0)
    level_window = check_int("level_window", level_window, minimum=1)
    horizon = check_int("horizon", horizon, minimum=1)
    if not 0 < stop_ratio < promo_ratio < 1:
        raise ValueError(f"need 0 < stop_ratio < promo_ratio < 1, got stop_ratio={stop_ratio}, promo_ratio={promo_ratio}")
    require_frame(panel, "panel", BASE_COLUMNS)
    p = panel.loc[panel["day"].to_numpy() <= cutoff_day]
    if p.empty:
        raise ValueError(f"the panel has no data on or before day {cutoff_day}")
    p = p.sort_values([*PAIR_COLS, "day"])
    n_ev = _event_counts(p)
    day = p["day"].to_numpy()
    state = pd.DataFrame({"user_id": p["user_id"].to_numpy(), "category": p["category"].to_numpy(),
                          "level": trailing_level(p, level_window),
                          "recent": np.where(day > cutoff_day - level_window, n_ev, 0.0),
                          "event_day": np.where(n_ev > 0, day, np.nan)})
    g = state.groupby(list(PAIR_COLS), sort=True)
    out = pd.DataFrame({"level": g["level"].last().fillna(0.0), "highest_level": g["level"].max().fillna(0.0),
                        "recent_events": g["recent"].sum(), "last_event_day": g["event_day"].max()}).reset_index()
    hi = out["highest_level"].to_numpy()
    out["ratio"] = np.where(hi > 0, out["level"].to_numpy() / np.where(hi > 0, hi, 1.0), 0.0)
    keys = out[list(PAIR_COLS)]
    expected, method = _forecast_column(forecast, keys, horizon)
    out["expected_next"] = expected
    pace = out["recent_events"].to_numpy() / level_window
    with np.errstate(invalid="ignore", divide="ignore"):
        outlook = np.where(pace > 0, (expected / horizon) / np.where(pace > 0, pace, 1.0), np.nan)
    out["outlook"] = outlook
    out["effective_ratio"] = np.where(np.isfinite(outlook), out["ratio"].to_numpy() * np.minimum(1.0, outlook), out["ratio"].to_numpy())

    def _lookup(frame, col):
        if frame is None or frame.empty:
            return np.full(len(out), np.nan)
        require_frame(frame, col, (*PAIR_COLS, col))
        f = frame[[*PAIR_COLS, col]].drop_duplicates(list(PAIR_COLS))
        return keys.merge(f, on=list(PAIR_COLS), how="left")[col].to_numpy(dtype=float)

    lam_cols = ["lam_hat", "lam_lo", "lam_hi", "half_life", "half_life_lo", "half_life_hi", "lam_reason"]
    lam_parts = [_lambda_columns(lam, uid, grp[["category"]].reset_index(drop=True)) for uid, grp in keys.groupby("user_id", sort=True)] \
        if lam is not None and not lam.empty else [_lambda_columns(None, 0, keys[["category"]])]
    lamc = pd.concat(lam_parts, ignore_index=True)
    for c in lam_cols:
        out[c] = lamc[c].to_numpy()
    t_decay = _lookup(decay_points, "t_decay")
    out["t_decay"] = np.where(t_decay <= cutoff_day, t_decay, np.nan)  # a decay point after the cutoff is the future
    no_lam = out["lam_reason"].isna().to_numpy()
    out.loc[no_lam, "lam_reason"] = np.where(out.loc[no_lam, "t_decay"].isna(), "no_decay_phase", "not_estimated")
    alert = _lookup(alerts, "alert_day")
    out["alert_day"] = np.where(alert <= cutoff_day, alert, np.nan)
    recent_turn = lambda d: np.isfinite(d) & (cutoff_day - np.nan_to_num(d, nan=-1e9) <= horizon)  # noqa: E731
    out["current_turn"] = recent_turn(out["t_decay"].to_numpy()) | recent_turn(out["alert_day"].to_numpy())
    out["half_life_text"] = [half_life_text(h, lo, hi, r, interval_level) for h, lo, hi, r in
                             zip(out["half_life"], out["half_life_lo"], out["half_life_hi"], out["lam_reason"])]

    def when(d) -> str:
        if start_date is None:
            return f"day {int(d)}"
        return f"{(pd.Timestamp(start_date) + pd.Timedelta(days=int(d))).date()}"

    def turn_of(r) -> str:
        if np.isfinite(r.t_decay) and cutoff_day - r.t_decay <= horizon:
            return f"it peaked on {when(r.t_decay)}"
        if np.isfinite(r.alert_day) and cutoff_day - r.alert_day <= horizon:
            return f"the early warning fired on {when(r.alert_day)}"
        return f"no decay point or early warning in the last {horizon} days"

    actions, reasons = [], []
    for r in out.itertuples(index=False):
        share = _pct(r.ratio)
        hl = f" Half-life: {r.half_life_text}." if r.lam_reason == "ok" else ""
        ahead = (f" Expected over the next {horizon} days: {r.expected_next:.1f} event{'s' if round(r.expected_next, 1) != 1 else ''}"
                 f" ({method}).") if np.isfinite(r.expected_next) else ""
        if r.recent_events <= 0:
            last = (f"the last one on {when(r.last_event_day)}, {cutoff_day - int(r.last_event_day)} days before the report date"
                    if np.isfinite(r.last_event_day) else "none since it first appeared")
            actions.append(ACTIONS[4])
            reasons.append(f"No events in the last {level_window} days ({last}); its level is {share} of its highest. "
                           f"Leave it out of the lists unless the user comes back to it.{ahead}{hl}")
            continue
        turn = turn_of(r)
        recent = f"{r.recent_events:,.0f} event{'s' if r.recent_events != 1 else ''} in the last {level_window} days"
        if share == "100%":
            where = f"at its highest level so far ({share}, {recent})"
        elif r.ratio >= NEAR_PEAK:
            where = f"near its highest level ({share} of it, {recent})"
        else:
            where = f"at {share} of its highest level ({recent})"
        slowing = np.isfinite(r.outlook) and r.outlook < 1 and r.ratio >= stop_ratio
        falls = (f" and the forecast expects {_pct(r.outlook)} of that pace next ({r.expected_next:.1f} events over "
                 f"{horizon} days, {method}): {_pct(r.effective_ratio)} of its highest level ahead") if slowing else ""
        e = r.effective_ratio
        few = np.isfinite(r.expected_next) and r.expected_next < horizon / level_window
        if e >= promo_ratio and few:  # strong against its own past, but the forecast expects less than one event a window
            actions.append(ACTIONS[2])
            reasons.append(f"Interest is {where}; {turn}. But the forecast expects "
                           f"{r.expected_next:.1f} events over the next {horizon} days ({method}), fewer than one every "
                           f"{level_window} days: fresh items in this category may rekindle it.{hl}")
        elif e >= promo_ratio:
            if not r.current_turn:
                actions.append(ACTIONS[0])
                reasons.append(f"Interest is {where}{',' + falls if falls else ''}; {turn}.{'' if falls else ahead}{hl}")
            else:
                actions.append(ACTIONS[1])
                reasons.append(f"Interest is {where},{falls + ',' if falls else ''} but {turn}: a promotion in the next "
                               f"days catches it before it fades.{'' if falls else ahead}{hl}")
        elif e >= stop_ratio:
            actions.append(ACTIONS[2])
            lead = (f"Interest is {where},{falls}" if r.ratio >= promo_ratio
                    else f"Interest has fallen to {share} of its highest level ({recent}){',' + falls if falls else ''}")
            reasons.append(f"{lead}; {turn}. Showing the same items again rarely helps; fresh items in this category "
                           f"may rekindle it.{'' if falls else ahead}{hl}")
        else:
            actions.append(ACTIONS[3])
            lead = (f"Interest is {where},{falls}" if r.ratio >= stop_ratio
                    else f"Interest has faded to {share} of its highest level ({recent})")
            reasons.append(f"{lead}; {turn}. Use the slot for something else.{'' if falls else ahead}{hl}")
    out["action"] = actions
    out["reason"] = reasons
    order = out["action"].map({a: i for i, a in enumerate(ACTIONS)}).to_numpy()
    out = out.iloc[np.lexsort((out["category"].to_numpy(), -out["level"].to_numpy(), order, out["user_id"].to_numpy()))]
    out = out.reset_index(drop=True)
    out.attrs.update({"level_window": level_window, "horizon": horizon, "method": method, "cutoff_day": cutoff_day})
    return out


def category_actions(panel: pd.DataFrame, user_id: int, cutoff_day: int, **settings) -> pd.DataFrame:
    """:func:`pair_actions` for one user's categories (the rows of the per-user report).

    ``user_id`` must be in the panel (:func:`check_user`'s clear error otherwise); ``settings`` are
    :func:`pair_actions`' keyword arguments (``forecast``, ``lam``, ``decay_points``, ``alerts``,
    ``horizon``, ``level_window``, ``promo_ratio``, ``stop_ratio``, ``start_date``,
    ``interval_level``); an unknown one is refused by name. Returns the rows without
    ``user_id``, ordered by action, then level.

    Notebook 07.
    """
    uid = check_user(panel, user_id)
    cutoff_day = check_int("cutoff_day", cutoff_day, minimum=0)
    mine = panel.loc[panel["user_id"].to_numpy() == uid]
    if not (mine["day"].to_numpy() <= cutoff_day).any():
        raise ValueError(f"user {uid} has no data on or before day {cutoff_day}")
    out = pair_actions(mine, cutoff_day, **settings)
    attrs = dict(out.attrs)
    out = out.drop(columns="user_id").reset_index(drop=True)
    out.attrs.update(attrs)
    return out


def action_backtest(panel: pd.DataFrame, cutoff_day: int, *, horizon: int = 14, windows: tuple[int, ...] = (7, 14),
                    method: str = "auto", n_cutoffs: int = 4, forecast: pd.DataFrame | None = None,
                    **settings) -> pd.DataFrame:
    """The report's advice at a past ``cutoff_day``, scored on what happened next.

    Every pair of ``panel`` with an event up to the cutoff gets its action from :func:`pair_actions`
    (data up to the cutoff only; ``settings`` as there: ``lam``, ``decay_points``, ``alerts``,
    ``level_window``, ``promo_ratio``, ``stop_ratio``), with the count forecast of ``method``
    (:func:`report_forecast` on the panel cut at the cutoff, as the report makes it, ``n_cutoffs``
    rolling origins before it for ``"auto"``; or a ready ``forecast``). The days after the cutoff then say whether the advice was
    right: the actions should order by the events that followed (keep > re-engage > dormant).

    Returns one row per action (in :data:`ACTIONS` order, actions nobody got left out):
    ``action, categories, mean events next <w> days`` for each of ``windows``, ``expected next``
    (the forecast's total over ``horizon``) and ``observed next`` (the events in those days).
    ``attrs``: ``cutoff_day``, ``method`` (the method the forecast used), ``ordered`` (keep >
    re-engage > dormant on every window, over the actions present), ``active`` (categories with an
    event in the last ``level_window`` days: ``categories``, ``expected``, ``observed``, ``ratio``),
    ``actions`` (the per-pair table).

    Notebook 07.
    """
    cutoff_day = check_int("cutoff_day", cutoff_day, minimum=0)
    horizon = check_int("horizon", horizon, minimum=1)
    windows = tuple(check_int("windows", w, minimum=1) for w in windows)
    require_frame(panel, "panel", BASE_COLUMNS)
    need = max(horizon, *windows)
    last = int(panel["day"].max())
    if cutoff_day + need > last:
        raise ValueError(f"cutoff_day={cutoff_day} leaves {last - cutoff_day} days to score, the back-test needs {need} "
                         f"(max of horizon={horizon} and windows={list(windows)}): choose cutoff_day <= {last - need}")
    if forecast is None:
        forecast = report_forecast(panel, cutoff_day, horizon, method=method, n_cutoffs=n_cutoffs)
    acts = pair_actions(panel, cutoff_day, forecast=forecast, horizon=horizon, **settings)
    after = panel.loc[(panel["day"].to_numpy() > cutoff_day) & (panel["day"].to_numpy() <= cutoff_day + need)]
    ev = pd.DataFrame({"user_id": after["user_id"].to_numpy(), "category": after["category"].to_numpy(),
                       "day": after["day"].to_numpy(), "n": _event_counts(after)})
    keys = acts[list(PAIR_COLS)]
    for w in sorted(set([*windows, horizon])):
        s = ev.loc[ev["day"] <= cutoff_day + w].groupby(list(PAIR_COLS))["n"].sum().rename(f"next_{w}").reset_index()
        acts[f"next_{w}"] = keys.merge(s, on=list(PAIR_COLS), how="left")[f"next_{w}"].fillna(0.0).to_numpy()
    g = acts.groupby("action", sort=False)
    table = pd.DataFrame({"categories": g.size()})
    for w in windows:
        table[f"mean events next {w} days"] = g[f"next_{w}"].mean()
    table["expected next"] = g["expected_next"].sum()
    table["observed next"] = g[f"next_{horizon}"].sum()
    table = table.reindex([a for a in ACTIONS if a in table.index]).rename_axis("action").reset_index()
    ladder = [a for a in (ACTIONS[0], ACTIONS[2], ACTIONS[4]) if a in set(table["action"])]
    means = table.set_index("action")
    ordered = all(all(means.loc[a, f"mean events next {w} days"] > means.loc[b, f"mean events next {w} days"]
                      for a, b in zip(ladder, ladder[1:])) for w in windows) if len(ladder) > 1 else None
    active = acts["recent_events"].to_numpy() > 0
    exp_a, obs_a = float(acts.loc[active, "expected_next"].sum()), float(acts.loc[active, f"next_{horizon}"].sum())
    table.attrs.update({"cutoff_day": cutoff_day, "horizon": horizon, "method": acts.attrs.get("method", method),
                        "ordered": ordered, "ladder": ladder, "actions": acts,
                        "active": {"categories": int(active.sum()), "expected": exp_a, "observed": obs_a,
                                   "ratio": exp_a / obs_a if obs_a > 0 else float("nan")}})
    return table


def _with_event_total(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel with :data:`~decaylib.schema.EVENT_TOTAL`: the behaviours' counts summed (one event stream)."""
    cols = [c for c in BEHAVIOURS if c in panel.columns]
    if not cols:
        raise ValueError(f"the panel has none of the event count columns {list(BEHAVIOURS)}: nothing to forecast")
    return panel.assign(**{EVENT_TOTAL: panel[cols].sum(axis=1)})


#: The report's ``method="auto"`` compares the forecast methods on at most this many users of a big log.
AUTO_MAX_USERS = 1000


def report_forecast(panel: pd.DataFrame, cutoff_day: int, horizon: int = 14, *, method: str = "auto",
                    n_cutoffs: int = 4, seed: int = 0, max_users: int | None = AUTO_MAX_USERS) -> pd.DataFrame:
    """The events every pair is expected to have over the next ``horizon`` days: the report's forecast.

    The behaviours' counts are summed into one stream per pair (:data:`~decaylib.schema.EVENT_TOTAL`)
    and forecast by :func:`decaylib.decay.counts.forecast_counts` on the whole panel up to
    ``cutoff_day`` (the pooled models learn from every user). With ``method="auto"`` (default) the
    method is the one with the lowest deviance on ``n_cutoffs`` rolling origins of *this* log
    before the cutoff (compared on a random sample of ``max_users`` users on a bigger log, then
    fitted on every pair), so the advice rests on a model checked on the user's own data;
    :func:`forecast_note` says which and how it did. Returns the frame of ``forecast_counts``
    (``user_id, category, expected, reason, method``; ``attrs``: ``picked``, ``auto`` ...).

    Notebook 07.
    """
    cutoff_day = check_int("cutoff_day", cutoff_day, minimum=0)
    p = _with_event_total(panel.loc[panel["day"].to_numpy() <= cutoff_day])
    try:
        out = forecast_counts(p, cutoff_day, horizon, method=method, column=EVENT_TOTAL, auto_cutoffs=n_cutoffs, seed=seed,
                              auto_max_users=max_users)
    except InsufficientDataError as err:
        if method != "auto":
            raise
        # too short a log to compare methods on earlier cutoffs: the recent pace goes on, and the note says why
        out = forecast_counts(p, cutoff_day, horizon, method="constant", column=EVENT_TOTAL, seed=seed)
        out.attrs["not_compared"] = str(err)
    if method != "auto" or "not_compared" in out.attrs:
        out.attrs["picked"] = str(out["method"].iloc[0]) if len(out) else method
    return out


def forecast_note(forecast: pd.DataFrame, start_date=None) -> str:
    """One paragraph on the report's forecast: which method, why, and how it did on this log.

    For ``method="auto"``: the candidates' mean deviance on the rolling origins, the winner and its
    lead, and its totals there ("on the last 4 cutoffs of this log it predicted 2,210 events
    against 2,148 observed"); every number is read from ``forecast.attrs``.

    Notebook 07.
    """
    picked = str(forecast.attrs.get("picked") or (forecast["method"].iloc[0] if len(forecast) else "?"))
    table = forecast.attrs.get("auto")
    h = forecast.attrs.get("horizon")
    if forecast.attrs.get("not_compared"):
        return (f"Expected events come from the {picked} model (the pace of the last days goes on) over the next {h} days: "
                f"no method could be compared on this log ({forecast.attrs['not_compared']}).")
    if table is None or not len(table):
        return f"Expected events come from the {picked} model over the next {h} days (not back-tested here: method={picked!r})."
    when = (lambda d: str((pd.Timestamp(start_date) + pd.Timedelta(days=int(d))).date())) if start_date is not None else (lambda d: f"day {int(d)}")
    cut = list(forecast.attrs.get("auto_cutoffs") or [])
    ah = forecast.attrs.get("auto_horizon", h)
    row = table.set_index("method").loc[picked]
    others = table.dropna(subset=["mean_deviance"]).sort_values("mean_deviance", kind="stable")
    others = others[others["method"] != picked]
    beat = ", ".join(f"{r.method} {r.mean_deviance:.3f}" for r in others.itertuples())
    lead = forecast.attrs.get("margin")
    text = (f"Expected events come from the **{picked}** model, the best of {len(table)} on this log: tried at "
            f"{len(cut)} earlier cutoff{'s' if len(cut) != 1 else ''} ({', '.join(when(c) for c in cut)}), each scored on "
            f"the {ah} days after it, it had the lowest mean Poisson deviance ({row['mean_deviance']:.3f}")
    text += f"; {beat})" if beat else ")"
    if lead is not None and np.isfinite(lead):
        text += f", {lead:.1%} lower than the next best"
    used, total = forecast.attrs.get("auto_users", (None, None))
    if used is not None and used < total:
        text += f" (compared on a random sample of {used:,} of the log's {total:,} users, then fitted on every user)"
    text += (f". On those cutoffs it predicted {row['predicted']:,.0f} events against {row['observed']:,.0f} observed"
             + (" for those users" if used is not None and used < total else ""))
    text += f" ({row['predicted'] / row['observed'] - 1:+.0%})." if row["observed"] > 0 else "."
    note = forecast.attrs.get("auto_note")
    return text + (f" Note: {note}." if note else "")


#: The windows (days after the cutoff) the report's back-test scores the actions on.
BACKTEST_WINDOWS: tuple[int, ...] = (7, 14)


def report_backtest(panel: pd.DataFrame, report_day: int, *, horizon: int = 14, method: str = "auto",
                    n_cutoffs: int = 4, level_window: int = 7, promo_ratio: float = 0.5,
                    stop_ratio: float = 0.15) -> pd.DataFrame:
    """The report's rules replayed on this log at the last cutoff that leaves enough days to score them.

    The cutoff is ``report_day - max(horizon, 14)``; λ and decay points come from the panel cut
    there (:func:`decaylib.recommend.strategies.decay_inputs_at_cutoff`), the forecast as in the
    report (:func:`report_forecast`), and :func:`action_backtest` scores the actions on the 7 and
    14 days that followed. The early warning is left out (it needs the forecaster's paths at that
    cutoff), so no action is a promotion on an alert alone. Raises
    :class:`~decaylib.checks.InsufficientDataError` with the log's span when the log is too short.

    Notebook 07.
    """
    report_day = check_int("report_day", report_day, minimum=0)
    horizon = check_int("horizon", horizon, minimum=1)
    need = max(horizon, *BACKTEST_WINDOWS)
    first = int(panel["day"].min())
    cut = report_day - need
    if cut - first + 1 < 2 * need + 14:
        raise InsufficientDataError(f"the log spans {report_day - first + 1} days; replaying the advice {need} days before "
                                    f"the report date needs {3 * need + 14} days (the forecasts learn from "
                                    f"{2 * need + 14} days before that cutoff)")
    lam, points = decay_inputs_at_cutoff(panel, cut)
    return action_backtest(panel, cut, horizon=horizon, windows=BACKTEST_WINDOWS, method=method, n_cutoffs=n_cutoffs,
                           lam=lam, decay_points=points, level_window=level_window, promo_ratio=promo_ratio,
                           stop_ratio=stop_ratio)


def backtest_note(table: pd.DataFrame, start_date=None) -> str:
    """What :func:`action_backtest`'s table says, in words, every number read from it.

    Notebook 07.
    """
    a = table.attrs
    when = (str((pd.Timestamp(start_date) + pd.Timedelta(days=int(a["cutoff_day"]))).date())
            if start_date is not None else f"day {int(a['cutoff_day'])}")
    means = table.set_index("action")
    col = next(c for c in means.columns if c.startswith("mean events next "))
    ladder = list(a.get("ladder") or [])
    parts = [f"{act.split(':')[0]} {means.loc[act, col]:.2f}" for act in ladder]
    head = f"At {when}, the same rules with the {a['method']} forecast gave the actions in the table"
    if a.get("ordered") is None:
        text = f"{head}; only {len(ladder)} of keep / re-engage / dormant occurred, so there is no order to check."
    elif a["ordered"]:
        text = (f"{head}; they ordered as they should by the events that followed ({col}: {' > '.join(parts)}, and the "
                f"same order on every window of the table).")
    else:
        text = (f"{head}; they did **not** order as they should (keep > re-engage > dormant) by the events that followed "
                f"({col}: {', '.join(parts)}; see the table for each window).")
    act = a["active"]
    if act["categories"] and act["observed"] > 0:
        text += (f" For the {act['categories']:,} categories active then, the forecast expected {act['expected']:,.0f} events "
                 f"over the next {a['horizon']} days against {act['observed']:,.0f} observed "
                 f"({act['expected'] / act['observed'] - 1:+.0%}).")
    return text


def report_numbers(advice: pd.DataFrame, start_date=None, category_names=None) -> pd.DataFrame:
    """The numbers behind the advice as an analyst reads them (no index, dates, rounded).

    ``category_names`` maps a category code to its name in the user's data (a dict, Series or
    callable); ``start_date`` turns day numbers into dates.

    Notebook 07.
    """
    def day(d):
        if not np.isfinite(d):
            return ""
        return str((pd.Timestamp(start_date) + pd.Timedelta(days=int(d))).date()) if start_date is not None else str(int(d))

    if category_names is None:
        names = advice["category"].astype(str)
    elif callable(category_names):
        names = advice["category"].map(lambda c: str(category_names(c)))
    else:
        names = advice["category"].map(category_names).astype(str)
    return pd.DataFrame({
        "category": names.to_numpy(),
        "action": advice["action"].to_numpy(),
        "level": advice["level"].round(2).to_numpy(),
        "highest level": advice["highest_level"].round(2).to_numpy(),
        "level / highest": [_pct(r) for r in advice["ratio"]],
        f"events, last {advice.attrs.get('level_window', 7)} days": advice["recent_events"].astype(int).to_numpy(),
        "half-life": advice["half_life_text"].to_numpy(),
        "decay point": [day(d) for d in advice["t_decay"]],
        "alert": [day(d) for d in advice["alert_day"]],
        f"expected events, next {advice.attrs.get('horizon', 14)} days": advice["expected_next"].round(1).to_numpy(),
        "outlook": ["" if not np.isfinite(o) else _pct(o) for o in advice["outlook"]],
    })
