"""Synthetic e-commerce events with known ground truth.

The generative model
--------------------
Every user is interested in a few categories (read "category" as brand or category). For one
(user, category) *pair* the true latent interest is

* ``0`` before the discovery day ``t_start``;
* a rise, exponential in time, from ``rise_floor * I0`` on ``t_start`` to the peak ``I0`` on
  ``t_peak`` (the true **decay point**);
* an exponential decay after the peak: ``I(t) = I0 * exp(-lam * (t - t_peak))``.

Each pair has its own ``lam`` (half-lives spread log-uniformly between ``half_life_range``) and
its own ``I0``.  Daily counts of ``view``, ``click``, ``cart`` and ``purchase`` are Poisson with
means exactly proportional to ``I(t)`` (one rate per event type), so the true ``lam`` is the same
for every behaviour and for any weighted sum of them.

Recommendation ``impression``\\ s are shown by the platform: more often in categories the user was
active in *yesterday* (``imp_base + imp_gain * I(t-1)`` while the pair is active).  They are
recorded as events and are a model input, but they do not change the other events' means.

Realistic dirt is injected on purpose and labelled in the truth:

* exact duplicate event rows (a logging retry),
* a few bot users with huge, flat volumes across many categories,
* logging-outage days on which every event is lost.

Everything is vectorized with NumPy (no Python loop per event) and driven by one seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from decaylib.checks import MemoryBudgetError
from decaylib.schema import (
    BEHAVIOURS,
    CART,
    CLICK,
    EVENT_TYPES,
    PAIR_COLS,
    PURCHASE,
    VIEW,
)

#: The fewest users a simulation accepts (fewer leave too few pairs to split, fit and check).
MIN_USERS = 10

__all__ = ['EVENT_TYPES', 'BEHAVIOURS', 'EVENT_RATES', 'START_DATE', 'SimConfig', 'Simulation', 'true_interest', 'simulation_memory', 'simulate',
           'SelfExcitingSimulation', 'simulate_self_exciting']



#: Expected count of each behaviour per day per unit of latent interest.
EVENT_RATES = {VIEW: 1.0, CLICK: 0.35, CART: 0.10, PURCHASE: 0.04}

#: Calendar date of simulated day 0.
START_DATE = pd.Timestamp("2026-01-05")


@dataclass(frozen=True)
class SimConfig:
    """Every knob of the simulator, with defaults that give a rich data set in seconds.

    ``pairs_per_user`` is the mean number of active categories per user (at least 1).
    ``peak_interest_median`` is the median ``I0`` in expected views per day at the peak.

    Notebooks 01 and 09.
    """

    n_users: int = 600
    n_categories: int = 24
    n_days: int = 120
    seed: int = 42
    pairs_per_user: float = 4.0
    half_life_range: tuple[float, float] = (3.0, 60.0)
    rise_days_range: tuple[int, int] = (3, 21)
    rise_floor: float = 0.1
    peak_interest_median: float = 5.0
    peak_interest_sigma: float = 0.6
    items_per_category: int = 40
    imp_base: float = 0.2
    imp_gain: float = 0.6
    duplicate_rate: float = 0.01
    bot_fraction: float = 0.01
    bot_daily_views: float = 250.0
    n_outage_days: int = 3
    start_date: str = str(START_DATE.date())

    def __post_init__(self) -> None:
        for name in ("n_users", "n_categories", "n_days", "items_per_category"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_days < 30:
            raise ValueError(f"n_days must be at least 30 so that pairs can rise and decay, got {self.n_days}")
        if self.n_users < MIN_USERS:
            raise ValueError(f"n_users must be at least {MIN_USERS} (fewer users leave too few pairs to split, fit "
                             f"and check), got {self.n_users}")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise TypeError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        lo, hi = self.half_life_range
        if not 0 < lo <= hi:
            raise ValueError(f"half_life_range must satisfy 0 < low <= high, got {self.half_life_range}")
        rlo, rhi = self.rise_days_range
        if not 1 <= rlo <= rhi:
            raise ValueError(f"rise_days_range must satisfy 1 <= low <= high, got {self.rise_days_range}")
        if not 0 < self.rise_floor < 1:
            raise ValueError(f"rise_floor must be in (0, 1), got {self.rise_floor}")
        if self.pairs_per_user < 1:
            raise ValueError(f"pairs_per_user must be >= 1, got {self.pairs_per_user}")
        for name in ("duplicate_rate", "bot_fraction"):
            if not 0 <= getattr(self, name) < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {getattr(self, name)}")
        if not 0 <= self.n_outage_days < self.n_days // 4:
            raise ValueError(f"n_outage_days must be in [0, n_days/4), got {self.n_outage_days}")


@dataclass
class Simulation:
    """The simulator's output: raw events plus the ground truth that produced them.

    Notebooks 01 and 09.
    """

    events: pd.DataFrame
    truth: pd.DataFrame
    truth_daily: pd.DataFrame
    config: SimConfig
    outage_days: list[int] = field(default_factory=list)
    n_duplicates: int = 0

    @property
    def bot_users(self) -> list[int]:
        return sorted(self.truth.loc[self.truth["is_bot"], "user_id"].unique().tolist())

    def summary(self) -> dict:
        """Headline sizes of the data set, as plain Python numbers (JSON-ready)."""
        real = self.truth[~self.truth["is_bot"]]
        return {
            "n_users": int(self.config.n_users),
            "n_categories": int(self.config.n_categories),
            "n_days": int(self.config.n_days),
            "n_pairs": int(len(real)),
            "n_events": int(len(self.events)),
            "n_bot_users": len(self.bot_users),
            "n_bot_events": int(self.events["user_id"].isin(self.bot_users).sum()),
            "n_duplicate_rows": int(self.n_duplicates),
            "outage_days": [int(d) for d in self.outage_days],
            "median_half_life": float(real["half_life"].median()),
        }


def true_interest(day, t_start, t_peak, peak_interest, lam, rise_floor: float = 0.1):
    """The true latent interest ``I(t)`` on ``day`` (broadcasts over NumPy arrays).

    Zero before ``t_start``; exponential rise from ``rise_floor * I0`` at ``t_start`` to ``I0`` at
    ``t_peak``; then ``I0 * exp(-lam * (day - t_peak))``.

    Notebooks 01 and 02.
    """
    day = np.asarray(day, dtype=float)
    t_start = np.asarray(t_start, dtype=float)
    t_peak = np.asarray(t_peak, dtype=float)
    rise = np.maximum(t_peak - t_start, 1.0)
    kappa = -np.log(rise_floor) / rise
    rising = peak_interest * np.exp(-kappa * (t_peak - day))
    falling = peak_interest * np.exp(-lam * (day - t_peak))
    out = np.where(day <= t_peak, rising, falling)
    return np.where(day < t_start, 0.0, out)


def _pairs(cfg: SimConfig, rng: np.random.Generator, bots: np.ndarray) -> pd.DataFrame:
    """Draw the (user, category) pairs and their true curves."""
    n_users, n_cat = cfg.n_users, cfg.n_categories
    # Category popularity (Zipf-like) so that a popularity baseline has something to find.
    cat_weight = 1.0 / np.arange(1, n_cat + 1) ** 0.7
    cat_weight = rng.permutation(cat_weight)
    cat_weight /= cat_weight.sum()

    k = np.minimum(1 + rng.poisson(cfg.pairs_per_user - 1, size=n_users), n_cat)
    # Categories without replacement per user via the Gumbel-top-k trick (vectorized).
    keys = np.log(cat_weight)[None, :] + rng.gumbel(size=(n_users, n_cat))
    order = np.argsort(-keys, axis=1)
    take = np.arange(n_cat)[None, :] < k[:, None]
    user_id = np.repeat(np.arange(n_users), k)
    category = order[take]
    n_pairs = len(user_id)

    rise = rng.integers(cfg.rise_days_range[0], cfg.rise_days_range[1] + 1, size=n_pairs)
    # Discovery days spread over the window; some pairs peak late and are still rising at the end.
    t_start = rng.integers(0, cfg.n_days - 15, size=n_pairs)
    t_peak = t_start + rise
    lo, hi = cfg.half_life_range
    half_life = np.exp(rng.uniform(np.log(lo), np.log(hi), size=n_pairs))
    lam = np.log(2.0) / half_life
    peak = cfg.peak_interest_median * np.exp(cfg.peak_interest_sigma * rng.standard_normal(n_pairs))

    truth = pd.DataFrame(
        {
            "user_id": user_id.astype("int64"),
            "category": category.astype("int64"),
            "t_start": t_start.astype("int64"),
            "t_peak": t_peak.astype("int64"),
            "peak_interest": peak,
            "lam": lam,
            "half_life": half_life,
            "is_bot": np.isin(user_id, bots),
        }
    )
    # Bots: flat, huge interest in many categories from day 0 (no decay: lam = 0, half-life inf).
    is_bot_pair = truth["is_bot"].to_numpy()
    truth.loc[is_bot_pair, ["t_start", "t_peak"]] = 0
    truth.loc[is_bot_pair, "lam"] = 0.0
    truth.loc[is_bot_pair, "half_life"] = np.inf
    bot_extra = []
    for b in bots:  # one small frame per bot user (a handful), not per event
        have = set(truth.loc[truth["user_id"] == b, "category"])
        extra = [c for c in range(n_cat) if c not in have][: max(0, n_cat // 2 - len(have))]
        if extra:
            bot_extra.append(
                pd.DataFrame(
                    {
                        "user_id": np.int64(b),
                        "category": np.asarray(extra, dtype="int64"),
                        "t_start": np.int64(0),
                        "t_peak": np.int64(0),
                        "peak_interest": 0.0,
                        "lam": 0.0,
                        "half_life": np.inf,
                        "is_bot": True,
                    }
                )
            )
    if bot_extra:
        truth = pd.concat([truth, *bot_extra], ignore_index=True)
    # A bot's ``bot_daily_views`` expected views per day are spread over its categories.
    bot_mask = truth["is_bot"].to_numpy()
    n_bot_cats = truth.loc[bot_mask].groupby("user_id")["category"].transform("size")
    truth.loc[bot_mask, "peak_interest"] = cfg.bot_daily_views / n_bot_cats.to_numpy()
    return truth.sort_values(list(PAIR_COLS), ignore_index=True)


#: Bytes held per simulated event while the events are built (measured: about 190 at 600 and 2,400 users).
_BYTES_PER_EVENT = 200


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux, else physical memory), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def simulation_memory(config: SimConfig) -> tuple[int, float]:
    """``(bytes, events per user)``: about how much memory :func:`simulate` needs for ``config``.

    About 1,500 events per user at 4 pairs and a median peak of 5 views a day (in proportion to
    both), plus the bots' daily views, at about 200 bytes an event while the events are built.

    Notebooks 01 and 09.
    """
    per_user = (1500.0 * config.pairs_per_user / 4.0 * config.peak_interest_median / 5.0
                + config.bot_fraction * config.bot_daily_views * config.n_days)
    dense = config.n_users * config.n_categories * 8 * 3  # the per-user category draws
    return int(config.n_users * per_user * _BYTES_PER_EVENT + dense), per_user


def _check_memory(cfg: SimConfig) -> None:
    need, per_user = simulation_memory(cfg)
    avail = _available_memory()
    if avail is None or need <= avail:
        return
    fit = max(int(avail / max(need / cfg.n_users, 1)), 0)
    raise MemoryBudgetError(
        f"n_users={cfg.n_users:,} would need about {need / 1024**3:,.1f} GiB of memory to simulate (about "
        f"{per_user:,.0f} events a user, {_BYTES_PER_EVENT} bytes each while they are built), but "
        f"{avail / 1024**3:,.1f} GiB is available: use n_users <= {fit:,} (or fewer n_days or pairs_per_user); "
        "for a log that big, see notebook 09_scaling_up")


def simulate(config: SimConfig | None = None, **overrides) -> Simulation:
    """Simulate events and their ground truth.

    Parameters
    ----------
    config:
        A :class:`SimConfig`; keyword ``overrides`` replace its fields, e.g.
        ``simulate(n_users=50, seed=1)``.  An unknown keyword raises ``TypeError`` naming it.

    Returns
    -------
    Simulation
        ``events`` (user_id, item_id, category, ts, event), ``truth`` (one row per pair),
        ``truth_daily`` (one row per pair and day from ``t_start`` to the last day), the outage
        days and the number of injected duplicate rows.

    Notebooks 01 and 09.
    """
    base = config or SimConfig()
    if overrides:
        valid = set(SimConfig.__dataclass_fields__)
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise TypeError(f"unknown simulation parameter(s) {unknown}; valid ones are {sorted(valid)}")
        base = SimConfig(**{**base.__dict__, **overrides})
    cfg = base
    _check_memory(cfg)
    rng = np.random.default_rng(cfg.seed)

    n_bots = int(round(cfg.bot_fraction * cfg.n_users))
    if cfg.bot_fraction > 0 and cfg.n_users >= 20:
        n_bots = max(n_bots, 2)
    bots = np.sort(rng.choice(cfg.n_users, size=n_bots, replace=False)) if n_bots else np.array([], int)
    truth = _pairs(cfg, rng, bots)

    # ---- daily truth: one row per pair and day from t_start to the end ------------------------
    n_days = cfg.n_days
    length = n_days - truth["t_start"].to_numpy()
    pair_idx = np.repeat(np.arange(len(truth)), length)
    offsets = np.arange(len(pair_idx)) - np.repeat(np.cumsum(length) - length, length)
    day = truth["t_start"].to_numpy()[pair_idx] + offsets
    t_start = truth["t_start"].to_numpy()[pair_idx]
    t_peak = truth["t_peak"].to_numpy()[pair_idx]
    peak = truth["peak_interest"].to_numpy()[pair_idx]
    lam = truth["lam"].to_numpy()[pair_idx]
    interest = true_interest(day, t_start, t_peak, peak, lam, cfg.rise_floor)
    interest_prev = np.where(day > t_start, true_interest(day - 1, t_start, t_peak, peak, lam, cfg.rise_floor), 0.0)

    outage_days = (
        np.sort(rng.choice(np.arange(5, n_days - 5), size=cfg.n_outage_days, replace=False))
        if cfg.n_outage_days
        else np.array([], dtype=int)
    )
    daily = pd.DataFrame(
        {
            "user_id": truth["user_id"].to_numpy()[pair_idx],
            "category": truth["category"].to_numpy()[pair_idx],
            "day": day.astype("int64"),
            "interest": interest,
        }
    )
    for ev in BEHAVIOURS:
        daily[f"expected_{ev}"] = EVENT_RATES[ev] * interest
    daily["expected_impression"] = cfg.imp_base + cfg.imp_gain * interest_prev
    daily["outage"] = np.isin(day, outage_days)

    # ---- Poisson counts per (pair, day, event), then one row per event ------------------------
    means = daily[[f"expected_{ev}" for ev in EVENT_TYPES]].to_numpy()
    counts = rng.poisson(means)
    counts[daily["outage"].to_numpy()] = 0
    flat = counts.ravel()
    cell = np.repeat(np.arange(flat.size), flat)
    row = cell // len(EVENT_TYPES)
    ev_code = cell % len(EVENT_TYPES)
    n_ev = len(cell)

    cat = daily["category"].to_numpy()[row]
    # Items within a category follow a Zipf-like popularity.
    item_w = 1.0 / np.arange(1, cfg.items_per_category + 1) ** 1.1
    item_w /= item_w.sum()
    item_rank = rng.choice(cfg.items_per_category, size=n_ev, p=item_w)
    item_id = cat * cfg.items_per_category + item_rank
    seconds = rng.integers(0, 86_400, size=n_ev)
    start = pd.Timestamp(cfg.start_date)
    ts = start + pd.to_timedelta(daily["day"].to_numpy()[row] * 86_400 + seconds, unit="s")

    events = pd.DataFrame(
        {
            "user_id": daily["user_id"].to_numpy()[row].astype("int64"),
            "item_id": item_id.astype("int64"),
            "category": cat.astype("int64"),
            "ts": ts.astype("datetime64[ns]"),
            "event": pd.Categorical.from_codes(ev_code, categories=list(EVENT_TYPES)),
        }
    )
    # Exact duplicates: a logging retry writes some rows twice.
    n_dup = int(round(cfg.duplicate_rate * n_ev))
    if n_dup:
        dup_rows = rng.choice(n_ev, size=n_dup, replace=False)
        events = pd.concat([events, events.iloc[dup_rows]], ignore_index=True)
    # Shuffle rows, then sort by time as a log would be (stable, seeded).
    events = events.iloc[rng.permutation(len(events))].sort_values("ts", kind="stable", ignore_index=True)
    events["event"] = events["event"].astype(str)

    return Simulation(
        events=events,
        truth=truth,
        truth_daily=daily,
        config=cfg,
        outage_days=[int(d) for d in outage_days],
        n_duplicates=n_dup,
    )


# --------------------------------------------------------------------------------------------
# The self-exciting mode: events drive interest
# --------------------------------------------------------------------------------------------
@dataclass
class SelfExcitingSimulation:
    """Daily counts from :func:`simulate_self_exciting` and the truth that made them.

    ``panel``: ``user_id, category, day``, one column per type and ``observed`` (one row per pair
    and day with at least one event); ``truth``: the parameters (``mu``, ``alpha``, ``beta``, ``r``,
    ``satiation``, ``satiation_decay``, ``types``); ``theta``: one row per pair with its multiplier.

    Notebook 04b.
    """

    panel: pd.DataFrame
    truth: dict
    theta: pd.DataFrame

    def events(self, seed: int = 0) -> pd.DataFrame:
        """The counts as an event log (``user_id, item_id, category, ts, event``): one row per event,
        at a uniformly random second of its day (for the loaders and the continuous-time fit)."""
        rng = np.random.default_rng(seed)
        frames = []
        for t in self.truth["types"]:
            n = self.panel[t].to_numpy(dtype=np.int64)
            rows = np.repeat(np.arange(len(self.panel)), n)
            p = self.panel.iloc[rows]
            ts = START_DATE + pd.to_timedelta(p["day"].to_numpy(), unit="D") + pd.to_timedelta(
                rng.integers(0, 86400, len(rows)), unit="s")
            frames.append(pd.DataFrame({"user_id": p["user_id"].to_numpy(), "item_id": p["category"].to_numpy() * 1000,
                                        "category": p["category"].to_numpy(), "ts": ts, "event": t}))
        ev = pd.concat(frames, ignore_index=True)
        return ev.sort_values(["ts", "user_id"], kind="stable").reset_index(drop=True)


def simulate_self_exciting(n_users: int = 400, n_categories: int = 3, n_days: int = 120, *,
                           types=(VIEW, CART, PURCHASE), mu=None, alpha=None, beta: float = 0.3, r: float = 8.0,
                           satiation=None, satiation_decay: float = 0.0, seed: int = 0) -> SelfExcitingSimulation:
    r"""Simulate daily counts in which every event raises the next days' rates, which then decay.

    For pair g, type k and day t: :math:`y_{gkt} \sim \mathrm{Poisson}(\theta_g(\mu_k + \sum_j
    \alpha_{jk} S_{gjt} - s_k \alpha_{pk} Q_{gt}))` with :math:`S_{gjt} = \sum_{d<t} y_{gjd}
    e^{-\beta(t-d)}` (:math:`Q` the same for purchases at decay :math:`\beta+\delta`) and
    :math:`\theta_g \sim \mathrm{Gamma}(r, r)`: the model of :mod:`decaylib.decay.hawkes`, with
    known parameters, so its fit is checked against the truth. Defaults: baselines 0.05, 0.01,
    0.004 per day; views excite views 0.1, carts 0.03 and purchases 0.005, carts excite purchases
    0.1; no satiation. Parameters under which some pair's process would run away (its multiplier
    times the branching ratio, the spectral radius of :math:`\alpha e^{-\beta}/(1-e^{-\beta})`,
    at 1 or more) are refused with the numbers.

    Notebook 04b.
    """
    n_users = int(n_users)
    if n_users < 1 or n_categories < 1 or n_days < 2:
        raise ValueError(f"need n_users >= 1, n_categories >= 1 and n_days >= 2, got {n_users}, {n_categories}, {n_days}")
    types = tuple(types)
    K = len(types)
    if mu is None:
        mu = [0.05, 0.01, 0.004][:K] + [0.01] * max(0, K - 3)
    mu = np.asarray(mu, dtype=float)
    if alpha is None:
        alpha = np.zeros((K, K))
        alpha[0, 0] = 0.1
        if K > 1:
            alpha[0, 1] = 0.03
        if K > 2:
            alpha[0, 2], alpha[1, 2] = 0.005, 0.1
    alpha = np.asarray(alpha, dtype=float)
    sat = np.zeros(K) if satiation is None else np.asarray(satiation, dtype=float)
    if mu.shape != (K,) or alpha.shape != (K, K) or sat.shape != (K,):
        raise ValueError(f"mu must have {K} values, alpha {K}x{K} and satiation {K} (one per type of {list(types)})")
    if np.any(mu <= 0) or np.any(alpha < 0) or np.any((sat < 0) | (sat > 1)) or not beta > 0 or not r > 0 \
            or satiation_decay < 0:
        raise ValueError("need mu > 0, alpha >= 0, 0 <= satiation <= 1, beta > 0, r > 0 and satiation_decay >= 0")
    p = types.index(PURCHASE) if PURCHASE in types else -1
    if np.any(sat > 0) and p < 0:
        raise ValueError(f"satiation needs a {PURCHASE!r} type; types are {list(types)}")
    rng = np.random.default_rng(seed)
    G = n_users * n_categories
    theta = rng.gamma(r, 1.0 / r, G)
    branching = float(np.max(np.abs(np.linalg.eigvals(alpha * (np.exp(-beta) / -np.expm1(-beta))))))
    if branching * theta.max() >= 1:
        raise ValueError(f"explosive parameters: the branching ratio is {branching:.3g} and the most active of the "
                         f"{G} pairs has multiplier {theta.max():.3g}, so its events would grow without bound "
                         f"(product {branching * theta.max():.3g} >= 1); lower alpha, raise beta or raise r")
    S = np.zeros((G, K))
    Q = np.zeros(G)
    q, qs = np.exp(-beta), np.exp(-(beta + satiation_decay))
    sa = sat * alpha[p] if p >= 0 else np.zeros(K)
    days = []
    for t in range(n_days):
        c = mu[None, :] + S @ alpha - Q[:, None] * sa[None, :]
        y = rng.poisson(theta[:, None] * np.maximum(c, 0.0)).astype(np.int64)
        days.append(y)
        S = q * (S + y)
        if p >= 0:
            Q = qs * (Q + y[:, p])
    Y = np.stack(days, axis=1)  # (G, n_days, K)
    g, d = np.nonzero(Y.sum(axis=2) > 0)
    panel = pd.DataFrame({"user_id": (g // n_categories).astype(np.int64), "category": (g % n_categories).astype(np.int64),
                          "day": d.astype(np.int64)})
    for j, t in enumerate(types):
        panel[t] = Y[g, d, j]
    panel["observed"] = True
    truth = {"types": types, "mu": mu, "alpha": alpha, "beta": float(beta), "r": float(r), "satiation": sat,
             "satiation_decay": float(satiation_decay), "n_days": int(n_days)}
    th = pd.DataFrame({"user_id": np.arange(G) // n_categories, "category": np.arange(G) % n_categories, "theta": theta})
    return SelfExcitingSimulation(panel, truth, th)
