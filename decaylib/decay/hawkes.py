r"""Interest that events excite and time decays: a pooled self-exciting (Hawkes) model of daily counts.

The article's curve :math:`I(t) = I_0 e^{-\lambda t}` describes one burst of interest. Shoppers come
back: every visit or purchase re-excites interest, which then decays again, on top of a steady
personal rate. This module fits that process to the daily counts of every (user, category) pair at
once, with the article's λ as the kernel's decay.

**The model.** For pair :math:`g`, event type :math:`k` (the panel columns given, e.g. view, click,
cart, purchase) and day :math:`t`, the count is Poisson with mean

.. math::

    c_{gkt} = \theta_g \Big( \mu_k e^{-\gamma D_{gt}} + \sum_j \alpha_{jk} S_{gjt} - s_k\,\alpha_{pk} Q_{gt} \Big),
    \qquad S_{gjt} = \sum_{d<t} y_{gjd}\, e^{-\beta (t-d)},\quad Q_{gt} = \sum_{d<t} y_{gpd}\, e^{-(\beta+\delta)(t-d)}

* :math:`\mu_k`: the baseline rate of type :math:`k`, the same for every pair up to the pair's
  multiplier :math:`\theta_g`; it fades while the pair is silent, :math:`D_{gt}` being the days since
  its last event, at a rate :math:`\gamma` (fitted; :math:`\gamma \to 0` is a steady rate), and each
  event restores it: interest decays between visits, and every visit restarts the decay, the
  non-additive counterpart of the excitation below and the role BG/NBD's dropout plays;
* :math:`\theta_g \sim \mathrm{Gamma}(r, r)` (mean 1): heterogeneity between pairs as NBD has it.
  It is integrated out, so the population is fitted by *marginal* likelihood and each pair gets a
  posterior :math:`\theta_g \mid y \sim \mathrm{Gamma}(r + Y_g, r + C_g)`, with :math:`Y_g` its
  events and :math:`C_g` the compensator (its expected events at :math:`\theta = 1`);
* :math:`\alpha_{jk} \ge 0`: how much one event of type :math:`j` raises the next day's rate of
  type :math:`k` (views exciting carts and purchases: cross-excitation);
* :math:`\beta`: the decay of the excitation, the article's λ (half-life :math:`\ln 2/\beta` days),
  one value for the whole log, reported with a profile-likelihood interval;
* satiation (``satiation=True``, only when a ``"purchase"`` type is modelled): a purchase's
  excitation of type :math:`k` is :math:`\alpha_{pk}(e^{-\beta u} - s_k e^{-(\beta+\delta)u})`,
  a difference of exponentials: with :math:`s_k` near 1 a purchase lowers the next days' rate
  (relative to the excitation it would bring) and the rate comes back later. Since
  :math:`0 \le s_k \le 1` and :math:`\delta \ge 0`, the kernel is never negative: the intensity
  stays at or above :math:`\theta_g\mu_k`, and every sum below keeps its closed form.

With :math:`\alpha = 0` the model is the Poisson–Gamma (NBD) constant rate; one burst followed by
no events is the article's decay curve :math:`\alpha y\, e^{-\beta t}`.

**Conditioning on the first day.** As BG/NBD conditions on the first purchase, each pair's
likelihood starts the day after its first event (of any type): that day's counts only seed the
state. Outage days (``observed == False``) carry no likelihood and no compensator.

**Vectorised.** The states are needed on event days only (the log term); the compensator of an
event is a geometric sum in closed form, :math:`\sum_{u=1}^{L} e^{-\beta u}`, less the outage days.
The states follow :math:`S_i = e^{-\beta (d_i - d_{i-1})}(S_{i-1} + y_{i-1})` over each pair's
sorted event days, computed for all pairs at once, one position in the pair at a time. The
gradient (β included, through :math:`\partial S/\partial\beta`) is analytic, so one L-BFGS run
fits every parameter: no optimiser call per pair.

**Forecasts.** The expected counts over the next days follow the same recursion with the
expected counts in place of the events (exact for the linear model at a given :math:`\theta`; the
pair's posterior mean :math:`\hat\theta_g` is plugged in, which ignores the second-order effect of
:math:`\theta`'s spread on self-excitation inside the horizon).

**Streaming.** :class:`HawkesState` keeps :math:`S, Q, Y, C` per pair and moves them one day at a
time (``step``), so a shop can update every pair's expected activity as each day closes.

Notebook 04b teaches it; notebook 08 compares it with SAR and BG/NBD on the Online Retail log.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from threadpoolctl import ThreadpoolController

from decaylib.checks import DataWarning, InsufficientDataError, check_int, column_names
from decaylib.data.panel import check_panel, outage_days_of
from decaylib.schema import BEHAVIOURS, PAIR_COLS, PURCHASE

__all__ = ['EventArrays', 'HawkesFit', 'HawkesState', 'event_arrays', 'fit_hawkes', 'hawkes_forecast',
           'fit_hawkes_continuous', 'PRIOR_ONLY_SHARE', 'LOG_BETA_RANGE', 'PROFILE_HALF_LIVES']

#: log β bounds of the fit: half-lives from about 15 minutes (0.01 day) to 20 years.
LOG_BETA_RANGE: tuple[float, float] = (float(np.log(np.log(2) / 7300.0)), float(np.log(np.log(2) / 0.01)))

#: Half-lives (days) at which :func:`fit_hawkes` scans the profile likelihood before freeing β.
PROFILE_HALF_LIVES: tuple[float, ...] = (0.25, 1.0, 3.0, 7.0, 21.0, 60.0, 180.0, 540.0, 2000.0)

#: A pair whose own data carry less than this share of its posterior (``data_share``, see
#: :func:`hawkes_forecast`) is forecast from the population: its ``reason`` is ``"prior_only"``.
PRIOR_ONLY_SHARE: float = 0.2

_LOG_BOUNDS = (-23.0, 8.0)     # log μ, log α
_LOG_R_BOUNDS = (-6.0, 12.0)    # log r: from very heterogeneous to no heterogeneity (θ = 1)
_LOG_DELTA_BOUNDS = (-6.0, 5.0)
_LOG_GAMMA_BOUNDS = (float(np.log(np.log(2) / 1e6)), float(np.log(np.log(2) / 1.0)))  # baseline half-life: a day to "never"
_CHI2_90 = float(stats.chi2.ppf(0.90, 1))


# --------------------------------------------------------------------------------------------
# The data: every pair's event days, sorted
# --------------------------------------------------------------------------------------------
@dataclass
class EventArrays:
    """Every pair's days with events, sorted by (pair, day): the data of :func:`fit_hawkes`.

    ``keys`` the pairs (one row each, sorted); ``pair`` (n,) the row's pair code; ``day`` (n,);
    ``y`` (n, K) the counts of the ``types``; ``first`` (G,) the pair's first event day;
    ``cutoff`` the last day of the data; ``outages`` sorted outage days; ``n_days`` (G,) the
    observed days after the first event up to the cutoff.

    Notebook 04b.
    """

    keys: pd.DataFrame
    types: tuple[str, ...]
    pair: np.ndarray
    day: np.ndarray
    y: np.ndarray
    first: np.ndarray
    cutoff: int
    outages: np.ndarray
    n_days: np.ndarray
    _pos: list = field(default_factory=list, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)
    _static: dict = field(default_factory=dict, repr=False)  # what does not depend on the parameters (_static)

    @property
    def n_pairs(self) -> int:
        return len(self.keys)

    @property
    def K(self) -> int:
        return len(self.types)

    def positions(self) -> list:
        """Row indices by position in the pair (1, 2, ...): the recursion's steps (cached)."""
        if not self._pos:
            n = len(self.pair)
            start = np.flatnonzero(np.r_[True, self.pair[1:] != self.pair[:-1]]) if n else np.zeros(0, np.int64)
            count = np.diff(np.r_[start, n])
            order = np.argsort(-count, kind="stable")
            start, count = start[order], count[order]
            for p in range(1, int(count.max()) if n else 0):
                self._pos.append(start[: np.searchsorted(-count, -p, side="left")] + p)
        return self._pos

    def subset(self, pairs: np.ndarray) -> "EventArrays":
        """The same data restricted to the pair codes ``pairs`` (sorted), re-coded 0..len-1."""
        pairs = np.asarray(pairs, dtype=np.int64)
        keep = np.isin(self.pair, pairs)
        recode = np.full(self.n_pairs, -1, dtype=np.int64)
        recode[pairs] = np.arange(len(pairs))
        return EventArrays(self.keys.iloc[pairs].reset_index(drop=True), self.types, recode[self.pair[keep]],
                           self.day[keep], self.y[keep], self.first[pairs], self.cutoff, self.outages,
                           self.n_days[pairs])


def _event_rows(panel: pd.DataFrame, types: tuple, pair_cols: list, cutoff: int):
    """:func:`event_arrays`' rows (those up to ``cutoff`` with an event) sorted by (pair, day), stably,
    with the pairs coded 0..G-1 in their sorted order: ``(codes, days, y, keys)``, the same arrays as
    ``pd.MultiIndex.factorize(sort=True)`` and ``np.lexsort`` give, without a Python tuple per row and
    with ``y`` built column by column in the sorted order (a fraction of the memory on a large panel).
    None where a key or the day is not a plain numpy integer array within the int64 range (pandas then
    does it)."""
    keys_in = [panel[c].to_numpy() for c in pair_cols]
    day = panel["day"].to_numpy()
    for v in (*keys_in, day):
        if not (isinstance(v, np.ndarray) and (v.dtype.kind == "i" or (v.dtype.kind == "u" and v.dtype.itemsize < 8))):
            return None
    counts = []
    for t in types:
        v = panel[t].to_numpy()
        counts.append(v if isinstance(v, np.ndarray) and v.dtype.kind in "iufb" else panel[t].to_numpy(dtype=float))
    keep = day <= cutoff
    anyc = np.zeros(len(day), dtype=bool)
    for v in counts:
        anyc |= v > 0  # the counts are >= 0 (check_panel): their sum is > 0 where one is
    keep &= anyc
    del anyc
    if not keep.any():
        raise InsufficientDataError(f"no pair has an event of {list(types)} on or before day {cutoff}")
    rows = None if keep.all() else np.flatnonzero(keep)
    del keep
    if rows is not None:
        keys_in, day = [v[rows] for v in keys_in], day[rows]
    lo = [int(v.min()) for v in keys_in]
    span = [int(v.max()) - m + 1 for v, m in zip(keys_in, lo)]
    total = 1
    for sp in span:
        total *= sp
    if total >= 2 ** 62:
        return None
    pk = np.zeros(len(day), dtype=np.int64)  # one integer per pair, in the pairs' lexicographic order
    for v, m, sp in zip(keys_in, lo, span):
        pk *= sp
        pk += v.astype(np.int64) - m
    del keys_in
    d = day.astype(np.int64)
    dlo = int(d.min())
    dspan = int(d.max()) - dlo + 1
    if total * dspan < 2 ** 62:
        key = pk * dspan
        key += d
        key -= dlo
        order = np.argsort(key, kind="stable")  # = np.lexsort((d, pk)): both stable
        del key
    else:
        order = np.lexsort((d, pk))
    pk = pk[order]
    d = d[order]
    new = np.r_[True, pk[1:] != pk[:-1]]
    codes = np.cumsum(new, dtype=np.int64)
    codes -= 1
    uk = pk[new]
    del pk, new
    key_cols = []
    for m, sp in zip(lo[::-1], span[::-1]):
        key_cols.append(uk % sp + m)
        uk = uk // sp
    keys = pd.DataFrame(dict(zip(pair_cols, key_cols[::-1])))
    src = order if rows is None else rows[order]
    del order, rows
    y = np.empty((len(src), len(types)))
    for j, v in enumerate(counts):
        y[:, j] = v[src]
    return codes, d, y, keys


def event_arrays(panel: pd.DataFrame, cutoff_day: int | None = None, *, types=tuple(BEHAVIOURS),
                 pair_cols: Sequence[str] = PAIR_COLS) -> EventArrays:
    """The daily panel (or any table of daily counts) up to ``cutoff_day`` as :class:`EventArrays`.

    ``panel`` has ``pair_cols``, ``day`` (integers) and the count columns ``types`` (non-negative;
    an interest score is accepted: the model is then a quasi-likelihood); rows without any count
    are dropped, several rows of one (pair, day) are refused (a duplicated day is a data error,
    not a larger count). ``observed == False`` rows mark outage days. ``cutoff_day`` default: the
    panel's last day.

    Notebook 04b.
    """
    types = tuple(column_names(list(types) if isinstance(types, tuple) else types))
    pair_cols = list(pair_cols)
    if not isinstance(panel, pd.DataFrame):
        raise TypeError(f"panel must be a pandas DataFrame, got {type(panel).__name__}")
    if pair_cols != list(PAIR_COLS):
        missing = [c for c in pair_cols if c not in panel.columns]
        if missing:
            raise ValueError(f"panel is missing column(s) {missing}; it has {list(panel.columns)}")
        check_panel(panel.assign(**{c: panel[pair_cols[0]] for c in PAIR_COLS if c not in panel.columns}), list(types))
    else:
        check_panel(panel, list(types))
    hi = int(panel["day"].max())
    cutoff = hi if cutoff_day is None else check_int("cutoff_day", cutoff_day, minimum=None)
    lo = int(panel["day"].min())
    if not lo <= cutoff <= hi:
        raise ValueError(f"cutoff_day={cutoff} is outside the panel's days [{lo}, {hi}]")
    outages = np.array(sorted(o for o in outage_days_of(panel) if o <= cutoff), dtype=np.int64)
    fast = _event_rows(panel, types, pair_cols, cutoff)
    if fast is not None:  # plain integer keys: sorted and coded with numpy (the same arrays as below)
        codes, d, y, keys = fast
    else:
        day = panel["day"].to_numpy()
        y = panel[list(types)].to_numpy(dtype=float)
        keep = (day <= cutoff) & (y.sum(axis=1) > 0)
        if not keep.any():
            raise InsufficientDataError(f"no pair has an event of {list(types)} on or before day {cutoff}")
        rows = panel.loc[keep, [*pair_cols, "day"]].reset_index(drop=True)
        y = y[keep]
        codes, uniq = pd.MultiIndex.from_frame(rows[pair_cols]).factorize(sort=True)
        keys = uniq.to_frame(index=False)
        keys.columns = pair_cols
        d = rows["day"].to_numpy(dtype=np.int64)
        order = np.lexsort((d, codes))
        codes, d, y = codes[order].astype(np.int64), d[order], y[order]
    dup = (codes[1:] == codes[:-1]) & (d[1:] == d[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        k = keys.iloc[codes[i]].to_dict()
        raise ValueError(f"panel has {int(dup.sum())} duplicated (pair, day) rows, e.g. {k} on day {int(d[i])}: "
                         f"aggregate the daily counts first (one row per pair and day)")
    start = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    first = d[start]
    n_out_after = len(outages) - np.searchsorted(outages, first, side="right")
    n_days = (cutoff - first) - n_out_after
    return EventArrays(keys, types, codes, d, y, first.astype(np.int64), int(cutoff), outages, n_days.astype(float))


# --------------------------------------------------------------------------------------------
# States and compensator sums
# --------------------------------------------------------------------------------------------
_BLAS = None


def _one_blas_thread(fn):
    """Run ``fn`` with BLAS on one thread (set once for the whole call: switching it at every step
    woke OpenBLAS's threads, which then kept a second core spinning). The products of a fit are long
    and thin, memory-bound: threads gain little, and on a busy machine they made them ten times
    slower. Every result is the same (the threads split the output between them)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        global _BLAS
        if _BLAS is None:
            _BLAS = ThreadpoolController()
        with _BLAS.limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return run


def _rows_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a long (n, K) array and a small (K, M) matrix, in blocks of rows small enough that
    OpenBLAS computes each on the calling thread (see :func:`_one_blas_thread`): the same entries as
    ``a @ b``, without waking its threads."""
    step = max(1, 65536 // max(1, a.shape[1] * b.shape[1]))
    if len(a) <= step:
        return a @ b
    out = np.empty((len(a), b.shape[1]), dtype=np.result_type(a, b))
    for i in range(0, len(a), step):
        np.matmul(a[i:i + step], b, out=out[i:i + step])
    return out


def _static(ev: EventArrays, name: str, st: dict | None = None) -> np.ndarray:
    """An array the likelihood needs that does not depend on the parameters, computed once and kept in
    ``st`` (default ``ev``'s own store, which :func:`fit_hawkes` empties when it is done): ``lik``
    (the rows after the pair's first day: the first only seeds the state), ``first_rows`` (the others),
    ``Y`` (per pair, the events of the ``lik`` rows), ``L_tail`` (days from the row to the cutoff),
    ``L_base`` (days to the pair's next row, or to the cutoff), ``since`` (days since the pair's
    previous row, 0 on its first) and the position-major order of :func:`_position_major`."""
    st = ev._static if st is None else st
    v = st.get(name)
    if v is None:
        n = len(ev.day)
        if name == "lik":
            v = ev.day > ev.first[ev.pair]
        elif name == "first_rows":
            v = np.flatnonzero(~_static(ev, "lik", st))
        elif name == "Y":
            v = np.bincount(ev.pair, weights=np.where(_static(ev, "lik", st), ev.y.sum(axis=1), 0.0), minlength=ev.n_pairs)
        elif name == "L_tail":
            v = (ev.cutoff - ev.day).astype(float)
        elif name == "L_base":
            same_next = np.r_[ev.pair[1:] == ev.pair[:-1], False] if n else np.zeros(0, bool)
            end = np.where(same_next, np.r_[ev.day[1:], 0], ev.cutoff)  # the next event's day, or the cutoff
            v = (end - ev.day).astype(float)
        elif name == "since":
            same_prev = np.r_[False, ev.pair[1:] == ev.pair[:-1]] if n else np.zeros(0, bool)
            v = np.where(same_prev, ev.day - np.r_[0, ev.day[:-1]], 0).astype(float)
        elif name in ("perm", "off", "gap"):
            _position_major(ev, st)
            return st[name]
        elif name == "inv":
            perm = _static(ev, "perm", st)
            v = np.empty_like(perm)
            v[perm] = np.arange(len(perm))
        else:
            raise KeyError(name)
        st[name] = v
    return v


def _take_rows(a: np.ndarray, idx: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a[idx]`` for a C-contiguous (n, K) array, by ``np.take`` on its rows viewed as single items: the
    same bytes, several times faster than fancy indexing of rows."""
    a = np.ascontiguousarray(a)
    if out is None:
        out = np.empty((len(idx),) + a.shape[1:], dtype=a.dtype)
    row = np.dtype((np.void, a.dtype.itemsize * int(np.prod(a.shape[1:], dtype=np.int64))))
    np.take(a.view(row).reshape(-1), idx, out=out.view(row).reshape(-1))
    return out


def _position_major(ev: EventArrays, st: dict | None = None):
    """The rows reordered by position in the pair (``perm``): position p's rows (pairs with more than p
    rows, the most active first) are the contiguous block ``off[p]:off[p+1]``, and the rows before them
    in their pairs are the first rows of block p-1; ``gap`` the days since the pair's previous row (0 on
    its first row), in that order. Kept in ``st`` (see :func:`_static`)."""
    st = ev._static if st is None else st
    if "perm" not in st:
        n = len(ev.pair)
        start = np.flatnonzero(np.r_[True, ev.pair[1:] != ev.pair[:-1]]) if n else np.zeros(0, np.int64)
        count = np.diff(np.r_[start, n])
        order = np.argsort(-count, kind="stable")  # as positions()
        start, count = start[order], count[order]
        m = np.searchsorted(-count, -np.arange(int(count.max()) if n else 0), side="left")  # pairs with > p rows
        perm = np.concatenate([start[:mp] + p for p, mp in enumerate(m)]) if n else np.zeros(0, np.int64)
        off = np.r_[0, np.cumsum(m)]
        step = np.zeros(n, dtype=np.int64)  # day minus the previous row's day
        if n:
            np.subtract(ev.day[1:], ev.day[:-1], out=step[1:])
        gap = step[perm].astype(float)
        del step
        gap[:off[1] if n else 0] = 0.0  # the pairs' first rows
        st["perm"], st["off"], st["gap"] = perm, off, gap
    return st["perm"], st["off"], st["gap"]


def _last_states(ev: EventArrays, beta: float, src: np.ndarray, st: dict | None = None) -> np.ndarray:
    """The states S of :func:`_states` on each pair's last row only, (G, K'): the same recursion, keeping
    one position's block at a time (memory of the order of the pairs, not of the rows)."""
    perm, off, gap = _position_major(ev, st)
    m = np.diff(off)  # pairs with more than p rows, non-increasing
    K = src.shape[1]
    out = np.zeros((ev.n_pairs, K), dtype=src.dtype)
    if not len(m):
        return out
    who = ev.pair[perm[:off[1]]]  # the pairs in the blocks' order
    prev = np.zeros((m[0], K), dtype=src.dtype)  # the states of position p's rows
    prev_src = _take_rows(src, perm[:off[1]])
    for p in range(len(m)):
        a, b = off[p], off[p + 1]
        if p:
            base = prev[:b - a] + prev_src[:b - a]
            prev = np.multiply(np.exp(-beta * gap[a:b])[:, None], base)
            prev_src = _take_rows(src, perm[a:b])
        done = m[p + 1] if p + 1 < len(m) else 0  # the pairs whose last row is at position p
        out[who[done:b - a]] = prev[done:]
    return out


def _states(ev: EventArrays, beta: float, src: np.ndarray, want_T: bool = True):
    """S_i = sum over the pair's earlier rows of src_m e^{-β(d_i-d_m)}, and T_i = -dS_i/dβ (None unless ``want_T``).

    The recursion S_i = e^{-β gap_i}(S_{i-1} + src_{i-1}) runs one position in the pair at a time, for
    all pairs at once, on the rows in position-major order (:func:`_position_major`), where every step
    reads and writes contiguous blocks."""
    perm, off, gap = _position_major(ev)
    s = _take_rows(src, perm)
    n0 = off[1] if len(off) > 1 else 0
    S = np.empty_like(s)
    S[:n0] = 0.0  # the pairs' first rows; every later block is written below
    T = None
    if want_T:
        T = np.empty_like(s)
        T[:n0] = 0.0
    e = np.exp(-beta * gap[off[1]:]) if len(off) > 2 else gap[:0]
    for p in range(1, len(off) - 1):
        a, b, pa = off[p], off[p + 1], off[p - 1]
        m = b - a
        ep = e[a - off[1]:b - off[1], None]
        base = S[pa:pa + m] + s[pa:pa + m]
        np.multiply(ep, base, out=S[a:b])
        if want_T:
            base *= gap[a:b, None]
            base += T[pa:pa + m]
            np.multiply(ep, base, out=T[a:b])
    inv = _static(ev, "inv")
    _take_rows(S, inv, out=s)  # back to the rows' order (s is no longer needed)
    if want_T:
        _take_rows(T, inv, out=S)
        return s, S
    return s, None


def _geom(rate: float, L: np.ndarray):
    """sum_{u=1..L} e^{-rate u} and sum_{u=1..L} u e^{-rate u}, without cancellation for small rate*L."""
    if rate <= 0:
        return np.asarray(L, dtype=float), L * (L + 1.0) / 2.0
    q = np.exp(-rate)
    one_q = -np.expm1(-rate)
    t = -rate * L
    a = np.negative(np.expm1(t))                  # 1 - q^L
    E = np.multiply(q, a)
    E /= one_q
    # sum u q^u = q (1 - (L+1) q^L + L q^(L+1)) / (1-q)^2 = q (a - L q^L (1-q)) / (1-q)^2
    su = np.exp(t, out=t)
    np.multiply(L, su, out=su)
    su *= one_q
    np.subtract(a, su, out=su)
    np.multiply(q, su, out=su)
    su /= one_q ** 2
    return E, su


def _outage_sums(ev: EventArrays, rate: float, start: np.ndarray, end: np.ndarray | None = None):
    """For each start day: sum over outage days o in (start, end] (end: the cutoff) of e^{-rate (o - start)},
    and of (o - start) e^{-rate (o - start)}."""
    E = np.zeros(len(start))
    su = np.zeros(len(start))
    for o in ev.outages:
        u = (o - start).astype(float)
        hit = (u > 0) if end is None else (u > 0) & (o <= end)
        w = np.where(hit, np.exp(-rate * np.where(hit, u, 0.0)), 0.0)
        E += w
        su += w * np.where(hit, u, 0.0)
    return E, su


def _tail(ev: EventArrays, beta: float, st: dict | None = None):
    """Per row m: E_m = sum over observed days u in (d_m, cutoff] of e^{-β(u-d_m)}, and -dE_m/dβ."""
    E, su = _geom(beta, _static(ev, "L_tail", st))
    if len(ev.outages):
        oE, osu = _outage_sums(ev, beta, ev.day)
        E, su = E - oE, su - osu
    return E, su


def _baseline(ev: EventArrays, gamma: float, st: dict | None = None):
    """The steady rate fades since the pair's last event and is restored by each event (e^{-γ·(days since
    the last event)}). Per pair: B_g = the sum of that factor over its observed days in (first, cutoff]
    (the baseline's compensator at μ = 1) and -dB_g/dγ; per row: its factor and its days since the
    previous event (0 on the pair's first day)."""
    L = _static(ev, "L_base", st)
    E, su = _geom(gamma, L)
    if len(ev.outages):
        end = ev.day + L.astype(np.int64)  # the pair's next row's day, or the cutoff
        oE, osu = _outage_sums(ev, gamma, ev.day, end)
        E, su = E - oE, su - osu
    G = ev.n_pairs
    B = np.bincount(ev.pair, weights=E, minlength=G)
    dB = np.bincount(ev.pair, weights=su, minlength=G)
    since = _static(ev, "since", st)
    return B, dB, np.exp(-gamma * since), since


def _kernel_sums(ev: EventArrays, beta: float, col: int | None = None):
    """States, tail sums and their per-pair totals at decay β (of all types, or of column ``col``),
    cached on ``ev`` for the last two (β, col) used (a fit with β fixed evaluates them once, also
    while the satiation states at β + δ change at every step)."""
    key = (float(beta), col)
    hit = ev._cache.pop(key, None)
    if hit is not None:
        ev._cache[key] = hit  # most recently used: evicted last
        return hit
    while len(ev._cache) >= 2:  # evicted before the new arrays are made
        ev._cache.pop(next(iter(ev._cache)))
    src = ev.y if col is None else ev.y[:, [col]]
    S, T = _states(ev, beta, src)
    E, dE = _tail(ev, beta)
    G = ev.n_pairs
    A = np.stack([np.bincount(ev.pair, weights=src[:, j] * E, minlength=G) for j in range(src.shape[1])], axis=1)
    dA = np.stack([np.bincount(ev.pair, weights=src[:, j] * dE, minlength=G) for j in range(src.shape[1])], axis=1)
    ev._cache[key] = out = (S, T, A, dA)
    return out


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    K: int
    sat: bool
    p: int  # index of the purchase type (satiation), -1 without

    @property
    def size(self) -> int:
        return self.K + self.K * self.K + (self.K + 1 if self.sat else 0) + 3

    def unpack(self, x):
        K = self.K
        i = 0
        mu = np.exp(x[i:i + K]); i += K
        alpha = np.exp(x[i:i + K * K]).reshape(K, K); i += K * K
        if self.sat:
            s = special.expit(x[i:i + K]); i += K
            delta = float(np.exp(x[i])); i += 1
        else:
            s, delta = np.zeros(K), 0.0
        beta = float(np.exp(x[i])); i += 1
        gamma = float(np.exp(x[i])); i += 1
        r = float(np.exp(x[i]))
        return mu, alpha, s, delta, beta, gamma, r

    def index_beta(self) -> int:
        return self.size - 3

    def index_gamma(self) -> int:
        return self.size - 2

    def bounds(self):
        b = [_LOG_BOUNDS] * (self.K + self.K * self.K)
        if self.sat:
            b += [(-12.0, 12.0)] * self.K + [_LOG_DELTA_BOUNDS]
        return b + [LOG_BETA_RANGE, _LOG_GAMMA_BOUNDS, _LOG_R_BOUNDS]


def _objective(x, ev: EventArrays, lay: _Layout, want_grad: bool = True):
    """Negative marginal log-likelihood (θ integrated out) and its gradient in the packed parameters.

    (The (n, K) arrays are computed in place in two buffers, ``c`` and ``tmp``: on a large log the
    allocations of fresh temporaries cost as much as the arithmetic.)"""
    mu, alpha, s, delta, beta, gamma, r = lay.unpack(x)
    K = lay.K
    S, T, A, dA = _kernel_sums(ev, beta)
    Bg, dBg, bf, age = _baseline(ev, gamma)
    y, Y, first = ev.y, _static(ev, "Y"), _static(ev, "first_rows")  # a pair's first day only seeds its state
    c = _rows_matmul(S, alpha)
    tmp = np.multiply(bf[:, None], mu[None, :])
    c += tmp                          # c = bf μ + S α
    C = Bg * mu.sum() + A @ alpha.sum(axis=1)
    if lay.sat:
        bs = beta + delta
        Q, TQ, Bq, dBq = _kernel_sums(ev, bs, lay.p)
        Bq, dBq = Bq[:, 0], dBq[:, 0]
        sa = s * alpha[lay.p]
        c -= np.multiply(Q, sa[None, :], out=tmp)
        C = C - Bq * sa.sum()
    np.maximum(c, 1e-300, out=c)
    rC = r + C
    np.log(c, out=tmp)
    tmp *= y
    tmp[first] *= 0.0                 # y log c, with y = 0 on the first days
    ll = tmp.sum() + (special.gammaln(r + Y) - special.gammaln(r) + r * np.log(r)
                      - (r + Y) * np.log(rC)).sum()
    if not want_grad:
        return -ll
    c_first = c[first]
    R = np.divide(y, c, out=c)        # d ll / d c_ik (c is not needed any more)
    R[first] = 0.0 / c_first
    w = -(r + Y) / rC                 # d ll / d C_g
    g_mu = np.multiply(R, bf[:, None], out=tmp).sum(axis=0) + (w * Bg).sum()
    g_alpha = S.T @ R + np.outer(w @ A, np.ones(K))
    # d/dβ: dS/dβ = -T, dE/dβ = -dE(returned as the positive sum u q^u)
    Ta = _rows_matmul(T, alpha)
    Ta *= R
    g_beta = -Ta.sum() - (w * (dA @ alpha.sum(axis=1))).sum()
    del Ta
    # d/dγ: dc/dγ = -age * bf * mu, dC/dγ = -dBg * sum(mu)
    g_gamma = -(np.multiply(R, mu[None, :], out=tmp).sum(axis=1) * bf * age).sum() - (w * dBg).sum() * mu.sum()
    grads = []
    if lay.sat:
        RQ = np.multiply(R, Q, out=tmp).sum(axis=0)      # per k
        wB = float((w * Bq).sum())
        g_alpha[lay.p] -= s * (RQ + wB)
        g_s = -alpha[lay.p] * (RQ + wB)
        # d/dδ (and the β part of β+δ): dQ/dbs = -TQ, dB/dbs = -dB
        np.multiply(R, TQ, out=tmp)
        tmp *= sa[None, :]
        g_bs = tmp.sum() + (w * dBq).sum() * sa.sum()
        g_beta += g_bs
        g_delta = g_bs
    g_r = (special.digamma(r + Y) - special.digamma(r) + np.log(r) + 1.0 - np.log(rC) - (r + Y) / rC).sum()
    grads = [g_mu * mu, (g_alpha * alpha).ravel()]
    if lay.sat:
        grads += [g_s * s * (1 - s), [g_delta * delta]]
    grads += [[g_beta * beta], [g_gamma * gamma], [g_r * r]]
    return -ll, -np.concatenate([np.ravel(g) for g in grads])


# --------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------
@dataclass
class HawkesFit:
    """A fitted self-exciting model (:func:`fit_hawkes`).

    ``mu`` (K,) baselines per day, ``alpha`` (K, K) with ``alpha[j, k]`` the excitation of type k by
    one event of type j, ``satiation`` (K,) the shares :math:`s_k` and ``satiation_decay`` δ
    (zeros without satiation), ``beta`` the decay (the article's λ), ``r`` the Gamma shape of the
    pairs' multipliers; ``beta_interval`` the 90% profile-likelihood interval of β (an end at the
    search range's bound is reported as that bound with ``at_edge``); ``loglik`` the marginal
    log-likelihood; ``n_pairs``, ``n_events``; ``converged`` and ``message`` from the optimiser.

    Notebook 04b.
    """

    types: tuple[str, ...]
    mu: np.ndarray
    alpha: np.ndarray
    satiation: np.ndarray
    satiation_decay: float
    beta: float
    r: float
    beta_interval: tuple[float, float]
    loglik: float
    n_pairs: int
    n_events: float
    converged: bool
    message: str
    at_edge: bool = False
    x: np.ndarray = field(default=None, repr=False)
    sat: bool = False
    gamma: float = 0.0

    @property
    def baseline_half_life(self) -> float:
        """ln 2 / γ, in days: how fast the steady rate fades while the pair is silent (inf: never)."""
        return float(np.log(2) / self.gamma) if self.gamma > 0 else float("inf")

    @property
    def half_life(self) -> float:
        """ln 2 / β, in days."""
        return float(np.log(2) / self.beta)

    @property
    def half_life_interval(self) -> tuple[float, float]:
        lo, hi = self.beta_interval
        return float(np.log(2) / hi), float(np.log(2) / lo)

    @property
    def branching_ratio(self) -> float:
        """Spectral radius of the expected offspring matrix α·Σ_u e^{-βu}: below 1 = no runaway (for θ = 1)."""
        m = self.alpha * (np.exp(-self.beta) / -np.expm1(-self.beta))
        return float(np.max(np.abs(np.linalg.eigvals(m))))

    def describe(self) -> str:
        lo, hi = self.half_life_interval
        mus = ", ".join(f"{t} {m:.3g}" for t, m in zip(self.types, self.mu))
        return (f"decay β = {self.beta:.4g}/day (half-life {self.half_life:.3g} days, 90% interval {lo:.3g}-{hi:.3g}); "
                f"baselines per day: {mus} (fading with a half-life of {self.baseline_half_life:.3g} days of "
                f"silence, restored by each event); heterogeneity r = {self.r:.3g}; branching ratio {self.branching_ratio:.3g}; "
                f"{self.n_pairs:,} pairs, {self.n_events:,.0f} events after their first day"
                + ("" if self.converged else f"; NOT CONVERGED ({self.message})"))

    def table(self) -> pd.DataFrame:
        """One row per parameter (name, value): for printing."""
        rows = [("beta", self.beta), ("half_life_days", self.half_life), ("gamma", self.gamma),
                ("baseline_half_life_days", self.baseline_half_life), ("r", self.r)]
        rows += [(f"mu[{t}]", m) for t, m in zip(self.types, self.mu)]
        rows += [(f"alpha[{a}->{b}]", self.alpha[i, j]) for i, a in enumerate(self.types) for j, b in enumerate(self.types)]
        if self.sat:
            rows += [(f"satiation[{t}]", v) for t, v in zip(self.types, self.satiation)]
            rows += [("satiation_decay", self.satiation_decay)]
        return pd.DataFrame(rows, columns=["parameter", "value"])


def _start(ev: EventArrays, lay: _Layout, beta0: float) -> np.ndarray:
    K = lay.K
    days = max(float(ev.n_days.sum()), 1.0)
    lik = ev.day > ev.first[ev.pair]
    rate = np.maximum(ev.y[lik].sum(axis=0) / days, 1e-6) if lik.any() else np.full(K, 1e-3)
    x = [np.log(rate * 0.5), np.full(K * K, np.log(0.05))]
    if lay.sat:
        x += [np.zeros(K), [0.0]]
    span = max(float(ev.cutoff - ev.first.min()), 1.0)
    x += [[np.log(beta0)], [np.log(np.log(2) / (4 * span))], [0.0]]  # the baseline starts nearly steady
    return np.concatenate([np.ravel(v) for v in x])


def _minimize(ev, lay, x0, fixed_beta=None, max_iter=500, ftol=1e-11):
    bounds = lay.bounds()
    if fixed_beta is not None:
        b = lay.index_beta()
        bounds = list(bounds)
        bounds[b] = (np.log(fixed_beta), np.log(fixed_beta))
        x0 = x0.copy()
        x0[b] = np.log(fixed_beta)
    return optimize.minimize(_objective, x0, args=(ev, lay), jac=True, method="L-BFGS-B", bounds=bounds,
                             options={"maxiter": max_iter, "ftol": ftol, "gtol": 1e-7})


@_one_blas_thread
def fit_hawkes(data, *, types=None, satiation: bool | None = None, cutoff_day: int | None = None,
               beta0: float = 0.1, max_pairs: int | None = None, interval: str | None = "profile", seed: int = 0,
               max_iter: int = 500) -> HawkesFit:
    """Fit the pooled self-exciting model by marginal maximum likelihood (one L-BFGS run, analytic gradient).

    Parameters
    ----------
    data : EventArrays or DataFrame
        :func:`event_arrays`' output, or a daily panel (then ``types`` and ``cutoff_day`` go to it).
    types : sequence of str
        The count columns modelled jointly (default: those of view, click, cart, purchase the panel has).
    satiation : bool
        Fit the purchase satiation kernel (needs a ``"purchase"`` type). Default: when purchase is
        modelled together with at least one other type (alone, a purchase series rarely separates
        satiation from a lower excitation).
    beta0 : float
        Starting decay per day.
    max_pairs : int
        Fit on a random sample of this many pairs (the parameters are global; the sample keeps the
        fit's time and memory bounded on very large logs). Default: all pairs.
    interval : {"profile", "wald", None}
        β's 90% interval: ``"profile"`` (likelihood ratio: two root searches, each a refit with β
        fixed), ``"wald"`` (log β ± 1.645 standard errors from the Hessian; faster) or none.

    Notebook 04b.
    """
    if isinstance(data, pd.DataFrame):
        if types is None:
            types = tuple(t for t in BEHAVIOURS if t in data.columns)
            if not types:
                raise ValueError(f"panel has none of the count columns view, click, cart, purchase; pass types= "
                                 f"(it has {list(data.columns)})")
        data = event_arrays(data, cutoff_day, types=types)
    elif not isinstance(data, EventArrays):
        raise TypeError(f"data must be a DataFrame or EventArrays, got {type(data).__name__}")
    ev = data
    if not (isinstance(beta0, (int, float)) and np.isfinite(beta0) and beta0 > 0):
        raise ValueError(f"beta0 must be a positive number, got {beta0!r}")
    has_p = PURCHASE in ev.types
    if satiation is None:
        satiation = has_p and ev.K > 1
    if satiation and not has_p:
        raise ValueError(f"satiation=True needs a {PURCHASE!r} type; types are {list(ev.types)}")
    if max_pairs is not None:
        max_pairs = check_int("max_pairs", max_pairs, minimum=10)
        if ev.n_pairs > max_pairs:
            pick = np.sort(np.random.default_rng(seed).choice(ev.n_pairs, max_pairs, replace=False))
            ev = ev.subset(pick)
    lik = ev.day > ev.first[ev.pair]
    n_events = float(ev.y[lik].sum())
    if n_events <= 0:
        raise InsufficientDataError(f"no pair has an event after its first day (of {ev.n_pairs:,} pairs): "
                                    f"nothing to learn a return rate or a decay from")
    lay = _Layout(ev.K, bool(satiation), ev.types.index(PURCHASE) if satiation else -1)
    # The likelihood is flat in β where α is 0 (an event that excites nothing has no decay), so a
    # local search from one start can stop on that plateau: scan the profile on a grid of
    # half-lives (each a fit with β fixed, warm-started from the previous), then free β from the best.
    x0 = _start(ev, lay, beta0)
    x = x0
    best = None
    na = lay.K + lay.K * lay.K
    for hl in PROFILE_HALF_LIVES:
        x = x.copy()
        x[lay.K:na] = np.maximum(x[lay.K:na], x0[lay.K:na])  # an α that collapsed at another β starts afresh
        ig = lay.index_gamma()
        x[ig] = max(x[ig], x0[ig])  # so does a γ
        r0 = _minimize(ev, lay, x, fixed_beta=float(np.log(2) / hl), max_iter=max_iter, ftol=1e-8)
        x = r0.x
        if best is None or r0.fun < best.fun:
            best = r0
    res = _minimize(ev, lay, best.x, max_iter=max_iter)
    if res.fun > best.fun:  # never worse than the best grid point
        res = best
    x = res.x
    mu, alpha, s, delta, beta, gamma, r = lay.unpack(x)
    ll = -float(res.fun)
    lo_b, hi_b = np.exp(LOG_BETA_RANGE)
    at_edge = bool(np.isclose(np.log(beta), LOG_BETA_RANGE, atol=1e-3).any())
    ci = (float("nan"), float("nan"))
    if interval not in ("profile", "wald", None):
        raise ValueError(f"interval must be 'profile', 'wald' or None, got {interval!r}")
    if interval == "profile":
        ci = _profile_interval(ev, lay, x, ll, beta)
    elif interval == "wald":
        se = _se_log_beta(ev, lay, x)
        z = float(stats.norm.ppf(0.95))
        ci = (float(beta * np.exp(-z * se)), float(beta * np.exp(z * se))) if np.isfinite(se) else ci
    at_edge = at_edge or bool(ci[0] <= lo_b * 1.0001 or ci[1] >= hi_b * 0.9999)
    if not res.success:
        warnings.warn(f"the self-exciting fit stopped without converging after {res.nit} iterations: {res.message}",
                      DataWarning, stacklevel=2)
    if at_edge:
        warnings.warn(f"the decay β = {beta:.4g}/day or its interval reaches the search range "
                      f"[{lo_b:.3g}, {hi_b:.3g}] per day: the log does not pin the half-life down", DataWarning,
                      stacklevel=2)
    ev._cache.clear()  # the states and the arrays kept for the fit: memory, on a large log
    ev._static.clear()
    return HawkesFit(ev.types, mu, alpha, s, float(delta), float(beta), float(r), ci, ll, ev.n_pairs, n_events,
                     bool(res.success), str(res.message), at_edge, x, bool(satiation), float(gamma))


def _se_log_beta(ev, lay, x) -> float:
    """Wald standard error of log β from the Hessian (central differences of the analytic gradient)."""
    P = len(x)
    h = 1e-4
    Hm = np.zeros((P, P))
    for i in range(P):
        e = np.zeros(P)
        e[i] = h
        Hm[i] = (_objective(x + e, ev, lay)[1] - _objective(x - e, ev, lay)[1]) / (2 * h)
    Hm = (Hm + Hm.T) / 2
    lo, hi = np.array(lay.bounds()).T
    free = (x > lo + 1e-6) & (x < hi - 1e-6)  # parameters on a bound (an α at 0) are held there
    b = lay.index_beta()
    if not free[b]:
        return float("nan")
    idx = np.flatnonzero(free)
    try:
        cov = np.linalg.inv(Hm[np.ix_(idx, idx)])
    except np.linalg.LinAlgError:
        return float("nan")
    v = cov[np.searchsorted(idx, b), np.searchsorted(idx, b)]
    return float(np.sqrt(v)) if v > 0 else float("nan")


def _profile_interval(ev, lay, x, ll, beta):
    """90% profile-likelihood interval of β: where the refit with β fixed loses χ²(1; 0.9)/2 of log-likelihood.

    The Wald standard error brackets each end; the root is then found by Brent's method on refits
    (warm-started at the optimum), and the bracket is widened where the profile is flatter."""
    target = ll - _CHI2_90 / 2

    def f(logb):
        r = _minimize(ev, lay, x, fixed_beta=float(np.exp(logb)))
        return -r.fun - target

    lb = float(np.log(beta))
    se = _se_log_beta(ev, lay, x)
    step = 1.645 * se if np.isfinite(se) and se > 0 else 0.1
    out = []
    for direction, edge in ((-1, LOG_BETA_RANGE[0]), (1, LOG_BETA_RANGE[1])):
        prev, cand = lb, lb + direction * step * 0.8
        found = None
        while found is None:
            if (cand - edge) * direction >= 0:
                found = edge if f(edge) > 0 else optimize.brentq(f, *sorted((edge, prev)), xtol=2e-3)
            elif f(cand) < 0:
                found = optimize.brentq(f, *sorted((cand, prev)), xtol=2e-3)
            else:
                prev, cand = cand, cand + direction * step * 0.5
                step *= 1.5
        out.append(float(np.exp(found)))
    return out[0], out[1]


# --------------------------------------------------------------------------------------------
# Posterior and forecasts
# --------------------------------------------------------------------------------------------
def _pair_summaries(ev: EventArrays, fit: HawkesFit):
    """Per pair: Y (events after the first day), C (compensator at θ=1) and the states on the day after the cutoff."""
    K = ev.K
    G = ev.n_pairs
    y = ev.y
    st = {}  # the arrays of _static, each dropped once used (memory: the rows of a large log)
    p = ev.types.index(PURCHASE) if fit.sat else -1
    bs = fit.beta + fit.satiation_decay
    S_last = _last_states(ev, fit.beta, y, st)
    Q_last = _last_states(ev, bs, y[:, [p]], st) if fit.sat else None
    for k in ("perm", "off", "gap"):
        st.pop(k, None)
    E, _ = _tail(ev, fit.beta, st)
    A = np.stack([np.bincount(ev.pair, weights=y[:, j] * E, minlength=G) for j in range(K)], axis=1)
    del E
    if fit.sat:
        Eq, _ = _tail(ev, bs, st)
        B = np.bincount(ev.pair, weights=y[:, p] * Eq, minlength=G)
        del Eq
    st.pop("L_tail", None)
    Bg = _baseline(ev, fit.gamma, st)[0]
    st.pop("L_base", None)
    st.pop("since", None)
    C = Bg * fit.mu.sum() + A @ fit.alpha.sum(axis=1)
    last = np.r_[np.flatnonzero(ev.pair[1:] != ev.pair[:-1]), len(ev.pair) - 1] if len(ev.pair) else np.zeros(0, int)
    base_next = np.exp(-fit.gamma * (ev.cutoff + 1 - ev.day[last]).astype(float))
    gap = (ev.cutoff + 1 - ev.day[last]).astype(float)
    S_next = np.exp(-fit.beta * gap)[:, None] * (S_last + y[last])
    Q_next = np.zeros(G)
    if fit.sat:
        C = C - B * (fit.satiation * fit.alpha[p]).sum()
        Q_next = np.exp(-bs * gap) * (Q_last[:, 0] + y[last, p])
    Y = _static(ev, "Y", st)
    return Y, C, S_next, Q_next, base_next


def hawkes_forecast(data: EventArrays, fit: HawkesFit, horizon: int, *, prior_only_share: float = PRIOR_ONLY_SHARE) -> pd.DataFrame:
    """Expected events of every pair over days ``cutoff+1 .. cutoff+horizon``, from the fitted model.

    Returns the pairs' keys with ``expected`` (all types summed), one ``expected_<type>`` column per
    type, ``theta`` (the pair's posterior mean multiplier :math:`(r+Y)/(r+C)`), ``data_share``
    (:math:`C/(r+C)`: the weight of the pair's own days in that mean, 0 for a pair first seen on
    the cutoff) and ``reason``: ``"prior_only"`` where ``data_share < prior_only_share`` (the
    forecast is the population's, moved little by the pair), ``"ok"`` otherwise.

    Notebook 04b.
    """
    if not isinstance(data, EventArrays):
        raise TypeError(f"data must be EventArrays (event_arrays(panel, cutoff)), got {type(data).__name__}")
    if not isinstance(fit, HawkesFit):
        raise TypeError(f"fit must be a HawkesFit, got {type(fit).__name__}")
    if tuple(fit.types) != tuple(data.types):
        raise ValueError(f"the fit models {list(fit.types)}, the data hold {list(data.types)}")
    horizon = check_int("horizon", horizon, minimum=1)
    if not (isinstance(prior_only_share, (int, float)) and 0 <= prior_only_share <= 1):
        raise ValueError(f"prior_only_share must be in [0, 1], got {prior_only_share!r}")
    Y, C, S, Q, base = _pair_summaries(data, fit)
    theta = (fit.r + Y) / (fit.r + C)
    share = C / (fit.r + C)
    state = HawkesState(fit, S, Q, data.keys, base=base)
    exp = state.expected(horizon, theta=theta)
    out = data.keys.copy()
    out["expected"] = exp.sum(axis=1)
    for j, t in enumerate(data.types):
        out[f"expected_{t}"] = exp[:, j]
    out["theta"] = theta
    out["data_share"] = share
    out["reason"] = np.where(share < prior_only_share, "prior_only", "ok")
    return out


#: Rows per block of :class:`HawkesState`'s updates: a block's arrays stay in the processor's cache.
_BLOCK_ROWS = 16384


def _row_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=1)`` of an (n, K) array. With K < 8 numpy adds a row's values in order, as done here
    a column at a time: the same sums, several times faster than numpy's reduction over a short axis."""
    if a.shape[1] >= 8 or a.shape[1] == 0:
        return a.sum(axis=1)
    out = a[:, 0].copy()
    for k in range(1, a.shape[1]):
        out += a[:, k]
    return out


class HawkesState:
    r"""Every pair's excitation state, moved one day at a time: the streaming form of the model.

    ``S`` (G, K) the excitation on the coming day, ``Q`` (G,) the satiation state, ``base`` (G,) the
    baseline's factor :math:`e^{-\gamma d}` on the coming day (:math:`d` days since the pair's last event), ``Y`` and ``C`` the pairs'
    events and compensator so far (for the posterior multiplier ``theta``), ``started`` whether the
    pair has had its first event (its likelihood starts the day after). :meth:`step` takes one day's
    counts (G, K) and moves every pair to the next day in a few vectorised operations;
    :meth:`expected` gives the expected counts over the next days.

    Notebook 04b.
    """

    def __init__(self, fit: HawkesFit, S=None, Q=None, keys: pd.DataFrame | None = None, n_pairs: int | None = None,
                 base=None):
        if not isinstance(fit, HawkesFit):
            raise TypeError(f"fit must be a HawkesFit, got {type(fit).__name__}")
        self.fit = fit
        K = len(fit.types)
        fresh = S is None
        if fresh:
            n_pairs = check_int("n_pairs", n_pairs, minimum=1)
            S = np.zeros((n_pairs, K))
        self.S = np.array(S, dtype=float)
        G = len(self.S)
        self.Q = np.zeros(G) if Q is None else np.array(Q, dtype=float)
        self.base = np.ones(G) if base is None else np.array(base, dtype=float)
        self.started = np.zeros(G, dtype=bool) if fresh else np.ones(G, dtype=bool)
        self.Y = np.zeros(G)
        self.C = np.zeros(G)
        self.keys = keys
        self._q = float(np.exp(-fit.beta))
        self._qs = float(np.exp(-(fit.beta + fit.satiation_decay)))
        self._qg = float(np.exp(-fit.gamma))
        self._p = fit.types.index(PURCHASE) if fit.sat else -1
        self._sa = fit.satiation * fit.alpha[self._p] if fit.sat else None

    def rate(self) -> np.ndarray:
        """Intensity at θ = 1 on the coming day, (G, K)."""
        return self._rate(slice(None))

    def _rate(self, rows: slice) -> np.ndarray:
        c = _rows_matmul(self.S[rows], self.fit.alpha)
        base = self.base[rows]
        for k, m in enumerate(self.fit.mu):  # c = base μ + S α - Q s α_p, a column at a time (long loops)
            c[:, k] += base * m
        if self._p >= 0:
            Q = self.Q[rows]
            for k, v in enumerate(self._sa):
                c[:, k] -= Q * v
        return c

    def step(self, counts, observed: bool = True) -> "HawkesState":
        """Close one day: add its counts (G, K) to the started pairs' totals and decay every state by one day.

        (Every pair's update is its own: they are made a block of rows at a time, so that the block's
        arrays stay in the processor's cache.)"""
        y = np.asarray(counts, dtype=float)
        if y.shape != self.S.shape:
            raise ValueError(f"counts must have shape {self.S.shape} (pairs, types), got {y.shape}")
        blocks = [slice(i, i + _BLOCK_ROWS) for i in range(0, len(y), _BLOCK_ROWS)]
        for rows in blocks:  # all checked before any state changes
            yb = y[rows]
            if yb.size and not (yb.min() >= 0 and np.isfinite(yb.max())):  # (a NaN fails the first test)
                raise ValueError("counts must be finite and non-negative")
        for rows in blocks:
            yb = y[rows]
            ysum = _row_sums(yb)
            if observed:
                st, C, Y = self.started[rows], self.C[rows], self.Y[rows]
                if st.all():  # the same sums, without copying the started rows
                    C += _row_sums(self._rate(rows))
                    Y += ysum
                else:
                    C[st] += _row_sums(self._rate(rows))[st]
                    Y[st] += ysum[st]
            active = ysum > 0
            base = self.base[rows]
            base *= self._qg
            np.copyto(base, self._qg, where=active)  # an event restores the steady rate (it fades again from tomorrow)
            started = self.started[rows]
            started |= active
            S = self.S[rows]
            S += yb
            S *= self._q
            if self._p >= 0:
                Q = self.Q[rows]
                Q += yb[:, self._p]
                Q *= self._qs
        return self

    @property
    def theta(self) -> np.ndarray:
        return (self.fit.r + self.Y) / (self.fit.r + self.C)

    def expected(self, horizon: int, theta=None) -> np.ndarray:
        """Expected counts per type summed over the next ``horizon`` days, (G, K): the mean recursion."""
        horizon = check_int("horizon", horizon, minimum=1)
        th = self.theta if theta is None else np.asarray(theta, dtype=float)
        tot = np.zeros_like(self.S)
        for i in range(0, len(tot), _BLOCK_ROWS):  # a block of pairs at a time, every day (the cache)
            rows = slice(i, i + _BLOCK_ROWS)
            S, Q, b, t, out = self.S[rows].copy(), self.Q[rows].copy(), self.base[rows].copy(), th[rows], tot[rows]
            for _ in range(horizon):
                c = _rows_matmul(S, self.fit.alpha)
                c += b[:, None] * self.fit.mu[None, :]
                if self._p >= 0:
                    c -= Q[:, None] * self._sa[None, :]
                m = np.maximum(c, 0.0, out=c)
                m *= t[:, None]
                out += m
                S += m  # S and Q are copies
                S *= self._q
                b = b * self._qg
                if self._p >= 0:
                    Q += m[:, self._p]
                    Q *= self._qs
        return tot


# --------------------------------------------------------------------------------------------
# Continuous time: event timestamps of one process (the cross-check with tick)
# --------------------------------------------------------------------------------------------
def _excitation(t: np.ndarray, k: np.ndarray, K: int, beta: float, span: float = 500.0) -> np.ndarray:
    """R[i, j] = β Σ_{m<i, k_m=j} e^{-β(t_i - t_m)}, exactly, by cumulative sums in blocks where β·(t - block start) <= span."""
    n = len(t)
    R = np.empty((n, K))
    if n == 0:
        return R
    carry = np.zeros(K)
    s_prev = t[0]
    x = beta * t
    starts = [0]
    i = 0
    while True:
        j = int(np.searchsorted(x, x[i] + span, side="right"))
        if j >= n:
            break
        starts.append(j)
        i = j
    starts.append(n)
    onehot = np.zeros((n, K))
    onehot[np.arange(n), k] = beta
    for a, b in zip(starts[:-1], starts[1:]):
        s0 = t[a]
        carry = carry * np.exp(-beta * (s0 - s_prev))
        e = np.exp(x[a:b] - beta * s0)
        cum = np.cumsum(onehot[a:b] * e[:, None], axis=0)
        excl = np.vstack([np.zeros((1, K)), cum[:-1]])  # strictly earlier events
        R[a:b] = (carry[None, :] + excl) / e[:, None]
        carry = (carry + cum[-1]) / e[-1]
        s_prev = t[b - 1]
    return R


def fit_hawkes_continuous(timestamps, end_time: float, *, decay: float | None = None):
    r"""Maximum likelihood of a multivariate Hawkes process with exponential kernel on event times.

    ``timestamps``: a list of K sorted arrays (one per type) of one realisation on ``[0, end_time]``,
    or a list of such realisations (all on the same ``end_time``). Intensity
    :math:`\lambda_k(t) = \mu_k + \sum_j a_{jk} \sum_{t_i^j < t} \beta e^{-\beta (t - t_i^j)}`,
    with ``a`` the kernel integrals (tick's ``adjacency``). ``decay`` fixed (as tick's
    ``HawkesExpKern(decays=...)``) or fitted (a bounded search of the profile likelihood in log β).
    For a given decay the excitation of every event is computed once, exactly, by cumulative sums
    (blocked so that no exponential overflows), and μ, a are fitted by L-BFGS with the analytic
    gradient (the negative log-likelihood is convex in them). Returns ``dict(mu=(K,),
    adjacency=(K, K) with adjacency[k, j] the effect of j on k as tick prints it, decay, loglik,
    converged)``.

    Notebook 04b.
    """
    reals = timestamps if len(timestamps) and isinstance(timestamps[0], (list, tuple)) else [timestamps]
    K = len(reals[0])
    if K == 0:
        raise ValueError("timestamps holds no event type")
    if not (isinstance(end_time, (int, float)) and np.isfinite(end_time) and end_time > 0):
        raise ValueError(f"end_time must be a positive number, got {end_time!r}")
    if decay is not None and not (isinstance(decay, (int, float)) and np.isfinite(decay) and decay > 0):
        raise ValueError(f"decay must be a positive number or None, got {decay!r}")
    data = []
    for real in reals:
        if len(real) != K:
            raise ValueError(f"every realisation must have {K} types, got {len(real)}")
        t = np.concatenate([np.asarray(a, dtype=float) for a in real])
        k = np.concatenate([np.full(len(a), j) for j, a in enumerate(real)]).astype(np.int64)
        if len(t) and (not np.all(np.isfinite(t)) or t.min() < 0 or t.max() > end_time):
            raise ValueError(f"timestamps must be finite and within [0, {end_time}]")
        o = np.argsort(t, kind="stable")
        data.append((t[o], k[o]))
    n_all = sum(len(t) for t, _ in data)
    if n_all == 0:
        raise InsufficientDataError("timestamps holds no event")

    def at_decay(b: float):
        pre = []
        for t, k in data:
            R = _excitation(t, k, K, b)
            Gk = np.array([np.sum(-np.expm1(-b * (end_time - t[k == j]))) for j in range(K)])
            oh = np.zeros((len(t), K))
            oh[np.arange(len(t)), k] = 1.0
            pre.append((k, R, Gk, oh))

        def f(x):
            mu, a = x[:K], x[K:].reshape(K, K)  # a[j, kk]: j excites kk
            val, gmu, ga = 0.0, np.zeros(K), np.zeros((K, K))
            for k, R, Gk, oh in pre:
                lam = np.maximum(mu[k] + np.einsum("ij,ji->i", R, a[:, k]), 1e-300)
                w = 1.0 / lam
                val += -np.log(lam).sum() + mu.sum() * end_time + (a * Gk[:, None]).sum()
                gmu += end_time - np.bincount(k, w, minlength=K)
                ga += Gk[:, None] - (R * w[:, None]).T @ oh
            return val, np.r_[gmu, ga.ravel()]

        x0 = np.r_[np.full(K, n_all / (K * end_time * len(data)) / 2), np.full(K * K, 0.2)]
        return optimize.minimize(f, x0, jac=True, method="L-BFGS-B", bounds=[(1e-10, None)] * (K + K * K),
                                 options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 10000})

    if decay is None:
        prof = optimize.minimize_scalar(lambda lb: at_decay(float(np.exp(lb))).fun, bounds=(-10.0, 10.0),
                                        method="bounded", options={"xatol": 1e-7})
        decay = float(np.exp(prof.x))
    res = at_decay(float(decay))
    return {"mu": res.x[:K], "adjacency": res.x[K:].reshape(K, K).T, "decay": float(decay), "loglik": -float(res.fun),
            "converged": bool(res.success)}
