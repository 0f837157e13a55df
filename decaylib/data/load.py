"""Your own event log as the tutorial's events: ``load_events`` and its timestamp and id parsing, mappings, id maps, the article's table and the shipped real data sets (notebooks 02 and 08)."""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from decaylib.artifacts import (
    ARTICLE_COLUMNS,
    ArtifactMissingError,
    read_parquet,
    write_parquet,
)
from decaylib.checks import (
    show_value,
    ROWS_NOTE,
    DataWarning,
    EventSchemaError,
    check_float_ids,
    check_unique_columns,
    row_examples,
)
from decaylib.schema import EVENT_LOG_COLUMNS, EVENT_TYPES, PURCHASE

__all__ = ['export_article_table', 'load_article_table', 'load_ebbinghaus', 'EVENT_TYPES', 'EVENT_LOG_COLUMNS', 'TS_UNITS', 'NO_ITEM', 'TS_MIN', 'TS_MAX_AHEAD', 'MAPPING_KEYS', 'ts_max', 'EventLog', 'load_events', 'write_id_maps', 'read_id_maps', 'load_mapping', 'read_online_retail', 'load_online_retail', 'load_online_retail_years', 'ONLINE_RETAIL_DIR', 'ONLINE_RETAIL_YEAR_FILES']


def export_article_table(panel: pd.DataFrame, start_date=None) -> pd.DataFrame:
    """The daily panel in the source article's format: one row per user and day.

    Columns: ``user_id``, ``date`` (or ``day`` when ``start_date`` is None), then
    浏览次数 (views), 点击次数 (clicks), 推荐次数 (recommendations = impressions) and
    兴趣度 (interest score), each summed over the user's categories.

    Notebooks 02 and 08.
    """
    need = ["user_id", "day", *ARTICLE_COLUMNS]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise KeyError(f"panel is missing column(s) {missing}")
    t = panel.groupby(["user_id", "day"], as_index=False)[list(ARTICLE_COLUMNS)].sum()
    if start_date is not None:
        t.insert(1, "date", pd.Timestamp(start_date) + pd.to_timedelta(t["day"], unit="D"))
        t = t.drop(columns="day")
    return t.rename(columns=ARTICLE_COLUMNS)


def load_article_table(source) -> pd.DataFrame:
    """Read a table in the article's format (a CSV path or a DataFrame) into decaylib's names.

    Returns ``user_id``, ``day`` (or ``date``), ``view``, ``click``, ``impression``,
    ``interest``.  Missing columns, negative counts and non-numeric values are errors.

    Notebook 00.
    """
    df = pd.read_csv(source) if not isinstance(source, pd.DataFrame) else source.copy()
    inverse = {v: k for k, v in ARTICLE_COLUMNS.items()}
    missing = [c for c in ARTICLE_COLUMNS.values() if c not in df.columns]
    if "user_id" not in df.columns:
        missing.insert(0, "user_id")
    if not ("day" in df.columns or "date" in df.columns):
        missing.append("day or date")
    if missing:
        raise KeyError(f"article table is missing column(s) {missing}; it has {list(df.columns)}")
    if len(df) == 0:
        raise ValueError("article table is empty")
    df = df.rename(columns=inverse)
    for c in ARTICLE_COLUMNS:
        num = pd.to_numeric(df[c], errors="coerce")
        if num.isna().any():
            raise ValueError(f"column {ARTICLE_COLUMNS[c]} ({c}) has {int(num.isna().sum())} non-numeric value(s)")
        if (num < 0).any():
            raise ValueError(f"column {ARTICLE_COLUMNS[c]} ({c}) has negative values")
        df[c] = num
    if "date" in df.columns:
        df["date"] = pd.to_datetime(df["date"])
    return df


def load_ebbinghaus(path) -> pd.DataFrame:
    """Ebbinghaus' 1885 savings table: ``delay_hours``, ``savings_Q_percent`` and the rest.

    Notebook 04.
    """
    df = pd.read_csv(path)
    need = ["delay_hours", "savings_Q_percent"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise KeyError(f"{path} is missing column(s) {missing}")
    return df

# ---------------------------------------------------------------------------------------------
# Your own events: load_events and its helpers
# ---------------------------------------------------------------------------------------------



_ID_COLUMNS = ("user_id", "item_id", "category")

#: The item id of every event of a log without an item column (see :func:`load_events`).
NO_ITEM = 0

#: Units of numeric (Unix) timestamps and their length in nanoseconds.
TS_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}

_UNIT_NAMES = {"s": "seconds", "ms": "ms", "us": "us", "ns": "ns"}

#: Timestamps before this are taken for a mistake (a wrong unit, a placeholder such as 1970-01-01).
TS_MIN = pd.Timestamp("1990-01-01")

#: Timestamps later than "now" plus this are taken for a mistake (a wrong unit, a typo in the year).
TS_MAX_AHEAD = pd.Timedelta(days=365)

#: Keys of a JSON mapping file (see :func:`load_mapping`), i.e. the keyword arguments of load_events.
MAPPING_KEYS = ("columns", "event_map", "ts_unit", "tz", "category", "date_only", "header", "sep", "ts_format")

#: The separators a CSV file is tried with when it reads as one column (to name the right ``sep``).
_OTHER_SEPS = (";", "\t", "|", ",")

_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}

_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz")

_PARQUET_SUFFIXES = (".parquet", ".pq")

_SUPPORTED = ".csv or .tsv (optionally compressed: .gz, .bz2, .zip, .xz), .parquet or .pq, a folder of Parquet files, or a pandas DataFrame"

_N_SHOW = 5

_ROWS_NOTE = ROWS_NOTE

_INT64_MAX = np.iinfo(np.int64).max

# A time of day followed by a UTC offset or zone letter: "08:41:34+01:00", "08:41Z", "08:41:34.5 UTC".
_TZ_SUFFIX = r"(?i)\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?[ \t]*(z|utc|gmt|[+-]\d{2}(?::?\d{2})?)$"

# A plain number (applied to stripped text; no \s or flags, so pandas can use pyarrow's fast regex).
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


def ts_max() -> pd.Timestamp:
    """The latest plausible timestamp: today (UTC) plus :data:`TS_MAX_AHEAD`.

    Notebooks 02 and 08.
    """
    return (pd.Timestamp.now(tz="UTC").tz_localize(None) + TS_MAX_AHEAD).normalize()


def _examples(values, rows, mask=None, k: int = _N_SHOW) -> str:
    """``row 3: 'x', row 9: 'y', ... (12 in all)`` for the rows where ``mask`` holds."""
    return row_examples(values, rows, mask, k)


def _rows_only(rows, mask, k: int = 10) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(int(rows[i])) for i in idx[:k])
    return shown + (", ..." if len(idx) > k else "")


@dataclass
class EventLog:
    """An event log in decaylib's canonical form, with everything needed to trace it back.

    Attributes
    ----------
    events:
        ``user_id``, ``item_id``, ``category`` (int64), ``ts`` (``datetime64[ns]``, naive: the
        shop's clock when ``tz`` was given, else UTC for instants and as written for naive times;
        calendar days when ``date_only``; ``report["ts_clock"]`` says which) and ``event`` (one of
        :data:`EVENT_TYPES`), in the order of the source's rows.  Every day downstream is the
        calendar day of ``ts``, so with ``tz`` the days are cut at the shop's midnight.
    report:
        What loading did, as plain JSON types: rows read and kept, events dropped per name,
        how timestamps were read, which id columns were factorized, counts (see :func:`load_events`).
    date_only:
        True when the timestamps are calendar dates without a time of day.  Then two events of the
        same user, item and day are two real events (two orders on one day), not a logging retry:
        duplicate removal must not merge them.
    id_maps:
        For each factorized id column, a DataFrame ``code`` (int64, the id used in ``events``) and
        ``original`` (the user's id, as a string).
    source:
        Where the events came from (a path or ``"DataFrame"``).

    Notebooks 02 and 08.
    """

    events: pd.DataFrame
    report: dict = field(default_factory=dict)
    date_only: bool = False
    id_maps: dict = field(default_factory=dict)
    source: str = "DataFrame"

    def __repr__(self) -> str:
        maps = f", factorized={list(self.id_maps)}" if self.id_maps else ""
        return f"EventLog(source={self.source!r}, {len(self.events):,} events, date_only={self.date_only}{maps})"

    def _check_column(self, column: str) -> None:
        if column not in _ID_COLUMNS:
            raise KeyError(f"unknown id column {column!r}; expected one of {list(_ID_COLUMNS)}")

    def original_ids(self, column: str, codes):
        """The user's own ids of ``codes`` (a scalar or an array) in ``column``.

        Identity for a column whose ids were integers; strings for a factorized column.
        Unknown codes are a ``KeyError`` naming them.
        """
        self._check_column(column)
        scalar = np.ndim(codes) == 0
        arr = np.atleast_1d(np.asarray(codes))
        if column not in self.id_maps:
            return codes if scalar else arr
        m = self.id_maps[column]
        pos = pd.Index(m["code"].to_numpy()).get_indexer(arr)
        if (pos < 0).any():
            bad = arr[pos < 0][:_N_SHOW].tolist()
            raise KeyError(f"code(s) {bad} are not {column} codes of this log (codes run from 0 to {len(m) - 1})")
        out = m["original"].to_numpy(dtype=object)[pos]
        return out[0] if scalar else out

    def code_of(self, column: str, original) -> int:
        """The int64 code that ``events`` uses for the user's id ``original`` in ``column``.

        For a factorized column the id is looked up by its string form (``12345`` and ``"12345"``
        are the same id); otherwise the id is its own code.  ``KeyError`` if the log does not have it.
        """
        self._check_column(column)
        if column in self.id_maps:
            m = self.id_maps[column]
            hit = np.flatnonzero(m["original"].to_numpy(dtype=object) == str(original))
            if len(hit) == 0:
                examples = m["original"].head(3).tolist()
                raise KeyError(f"{column} {original!r} is not in this event log ({len(m):,} known, e.g. {examples}){self._dropped_note()}")
            return int(m["code"].iloc[hit[0]])
        try:
            code = int(original)
            ok = float(original) == code if not isinstance(original, (int, np.integer, str)) else True
        except (TypeError, ValueError, OverflowError):
            ok = False
        if ok and isinstance(original, str):
            ok = original.strip().lstrip("+-").isdigit()
        if not ok or not (self.events[column].to_numpy() == code).any():
            raise KeyError(f"{column} {original!r} is not in this event log{self._dropped_note()}")
        return code

    def _dropped_note(self) -> str:
        """Where an id may have gone before the log was made: rows whose event name the mapping drops."""
        dropped = self.report.get("dropped_events") or {}
        return f" (rows of the event names that event_map drops, {dropped}, are not part of it)" if dropped else ""

    def describe(self) -> str:
        """A short human summary: what was read, kept, dropped, and how timestamps were taken."""
        r = self.report
        dropped = r.get("dropped_events") or {}
        drop_txt = "; dropped " + ", ".join(f"{k} {v:,}" for k, v in dropped.items()) if dropped else ""
        counts = ", ".join(f"{k} {v:,}" for k, v in (r.get("event_counts") or {}).items())
        ts_how = r.get("ts_kind", "?")
        if r.get("ts_unit"):
            ts_how += f", unit {r['ts_unit']}"
        if r.get("ts_format"):
            ts_how += f", format {r['ts_format']}"
        if r.get("ts_offsets"):
            ts_how += f", offsets {', '.join(r['ts_offsets'])} converted to UTC"
        if r.get("tz"):
            ts_how += f", days local to {r['tz']}" + ("" if r.get("tz_applied") else " (dates are kept as calendar days)" if r.get("date_only_detected") else "")
        shape = "%Y-%m-%d" if self.date_only else "%Y-%m-%d %H:%M"
        first, last = (pd.Timestamp(r[k]).strftime(shape) if r.get(k) else "?" for k in ("first_ts", "last_ts"))
        lines = [
            f"Event log from {self.source}: {r.get('rows_kept', len(self.events)):,} events "
            f"({r.get('rows_read', len(self.events)):,} rows read{drop_txt})",
            f"users {r.get('n_users', 0):,}, items {r.get('n_items', 0):,}, categories {r.get('n_categories', 0):,} "
            f"(category from {r.get('category_mode', 'column')})",
            f"time {first} .. {last} ({r.get('ts_clock', 'UTC')}; {r.get('span_days')} days); timestamps: {ts_how}",
            "dates only (no time of day): same-day repeats are real events, not retries" if self.date_only else "timestamps with a time of day",
            f"events: {counts}",
        ]
        if self.id_maps:
            lines.append(f"factorized ids (see id_maps): {', '.join(self.id_maps)}")
        return "\n".join(lines)


def _position(key) -> int | None:
    """A 0-based column position given as an int or as digits (JSON keys are strings); else None."""
    if isinstance(key, (bool, np.bool_)):
        return None
    if isinstance(key, (int, np.integer)):
        return int(key) if key >= 0 else None
    if isinstance(key, str) and key.strip().isdigit():
        return int(key.strip())
    return None


def _check_args(columns=None, event_map=None, ts_unit=None, tz=None, category=None, date_only=None, header=0,
                sep=None, ts_format=None) -> None:
    """Argument errors (``ValueError``/``TypeError``), raised before any data is read."""
    if header is not None and (isinstance(header, (bool, np.bool_)) or header != 0):
        raise ValueError(f"header={header!r}: expected 0 (the first row names the columns, the default) or None "
                         f"(no header row: name the columns by position, columns={{0: 'user_id', ...}}; null in JSON)")
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1):
        raise ValueError(f"sep={sep!r}: expected one character, such as ';', '\\t' (tab) or '|' (None: ',' for .csv, tab for .tsv)")
    if ts_format is not None:
        if not isinstance(ts_format, str) or "%" not in ts_format:
            raise ValueError(f"ts_format={ts_format!r}: expected a strftime format such as '%Y%m%d' or '%d/%m/%Y %H:%M'")
        if ts_unit is not None:
            raise ValueError(f"ts_format={ts_format!r} (dates written in that format) and ts_unit={ts_unit!r} (Unix "
                             f"timestamps) exclude each other: pass one")
    if columns is not None:
        if not isinstance(columns, dict):
            raise TypeError(f"columns must be a dict {{your_column: one of {list(EVENT_LOG_COLUMNS)} or None}}, got {type(columns).__name__}")
        if header is None:
            bad = [k for k in columns if _position(k) is None]
            if bad:
                flipped = {_position(v): k for k, v in columns.items() if k in EVENT_LOG_COLUMNS and _position(v) is not None}
                hint = f"; the other way round: columns={flipped}" if len(flipped) == len(columns) else ""
                raise ValueError(f"header=None: the file has no column names, so columns= keys are 0-based column positions "
                                 f"(0 or \"0\"), not {bad}: e.g. columns={{0: 'user_id', 1: 'item_id', 2: 'ts'}}{hint}")
            pos = [_position(k) for k in columns]
            if len(set(pos)) < len(pos):
                raise ValueError(f"columns= names one column position twice: {columns}")
        bad = {k: v for k, v in columns.items() if v is not None and v not in EVENT_LOG_COLUMNS}
        if bad:
            raise ValueError(f"columns maps to unknown name(s) {bad}; targets must be one of {list(EVENT_LOG_COLUMNS)} (or None to ignore a column)")
        targets = [v for v in columns.values() if v is not None]
        dup = sorted({v for v in targets if targets.count(v) > 1})
        if dup:
            raise ValueError(f"columns maps several columns to {dup}: {columns}")
    elif header is None:
        raise ValueError("header=None: the file has no column names, so columns= must name them by position, "
                         "e.g. columns={0: 'user_id', 1: 'item_id', 2: 'ts'}")
    if event_map is not None:
        if isinstance(event_map, str):
            if event_map not in EVENT_TYPES:
                raise ValueError(f"event_map={event_map!r} is not an event decaylib knows; expected one of {list(EVENT_TYPES)}")
        elif isinstance(event_map, dict):
            bad = {k: v for k, v in event_map.items() if v is not None and v not in EVENT_TYPES}
            if bad:
                raise ValueError(f"event_map maps to unknown event(s) {bad}; targets must be one of {list(EVENT_TYPES)} or None (drop)")
        else:
            raise TypeError(f"event_map must be a dict, a single event name or None, got {type(event_map).__name__}")
    if ts_unit is not None and ts_unit not in TS_UNITS:
        raise ValueError(f"unknown ts_unit={ts_unit!r}; expected one of {list(TS_UNITS)} (or None for dates and datetimes)")
    if tz is not None:
        if not isinstance(tz, str):  # pandas reads a number as a fixed offset in seconds: {"tz": 5} would shift every time
            raise TypeError(f"tz must be an IANA time-zone name (a string) such as 'Europe/Paris' or 'UTC', got "
                            f"{type(tz).__name__} {tz!r}; in a mapping file write \"tz\": \"Europe/Paris\"")
        try:
            pd.Timestamp("2000-01-01").tz_localize(tz)
        except Exception as e:  # the many exception types of the tz libraries
            raise ValueError(f"unknown time zone tz={tz!r} ({e}); use an IANA name such as 'Europe/Paris' or 'UTC'") from e
    if category is not None and not callable(category):
        if isinstance(category, str):
            if category != "item":
                raise ValueError(f"category={category!r}: expected None (a category column), 'item', an int or a callable")
        elif isinstance(category, (bool, np.bool_)) or not isinstance(category, (int, np.integer)):
            raise TypeError(f"category must be None, 'item', an int or a callable, got {category!r}")
    if date_only is not None and not isinstance(date_only, (bool, np.bool_)):
        raise TypeError(f"date_only must be None (detect), True or False, got {date_only!r}")


def _source_kind(path: Path) -> tuple[str, str | None]:
    if path.is_dir():
        return "parquet", None
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet", None
    for comp in ("", *_COMPRESSION_SUFFIXES):
        for suffix, sep in _CSV_SUFFIXES.items():
            if name.endswith(suffix + comp):
                return "csv", sep
    raise EventSchemaError(f"cannot read {path.name}: unknown file type; supported: {_SUPPORTED}")


def _check_sep(path: Path, sep: str, cells: list) -> None:
    """A CSV that reads as one column whose text holds another separator: name ``sep`` in the error."""
    if len(cells) != 1:
        return
    text = str(cells[0])
    found = [c for c in _OTHER_SEPS if c != sep and c in text]
    if found:
        raise EventSchemaError(
            f"{path} reads as one column {text[:80]!r} with the separator sep={sep!r}, but that text holds {found[0]!r}: "
            f"the file looks separated by {found[0]!r}; pass sep={found[0]!r} (\"sep\" in a mapping file)")


#: The first bytes of compressed files, and the suffix that tells pandas to decompress them.
_MAGIC = {b"\x1f\x8b": ("gzip", ".gz"), b"BZh": ("bzip2", ".bz2"), b"PK\x03\x04": ("zip", ".zip"),
          b"\xfd7zXZ\x00": ("xz", ".xz")}


def _check_compression(path: Path) -> None:
    """A compressed file whose name does not say so (gzip bytes in ``events.csv``): name the suffix it needs."""
    with open(path, "rb") as f:
        head = f.read(6)
    for magic, (what, suffix) in _MAGIC.items():
        if head.startswith(magic) and not path.name.lower().endswith(suffix):
            raise EventSchemaError(f"{path} is {what}-compressed but its name does not say so: decompression follows the "
                                   f"suffix, so rename it {path.name}{suffix} (or decompress it)")


def _header(source, header_row=0, sep=None) -> tuple[str, list, Callable]:
    """Name, column names (0, 1, ... for ``header_row=None``), and a reader ``read(usecols)`` of ``source``."""
    if not isinstance(source, (pd.DataFrame, str, os.PathLike)):
        raise TypeError(f"source must be a file path or a pandas DataFrame, got {type(source).__name__}")
    if header_row is None or sep is not None:
        what = "DataFrame" if isinstance(source, pd.DataFrame) else _source_kind(Path(source).expanduser())[0]
        if what != "csv":
            given = "header=None" if header_row is None else f"sep={sep!r}"
            raise ValueError(f"{given} applies to CSV files; a {what if what == 'DataFrame' else 'Parquet source'} "
                             f"names its columns already: remove it")
    if isinstance(source, pd.DataFrame):
        check_unique_columns(source.columns, "the DataFrame")
        return "DataFrame", list(source.columns), lambda cols, text=(): source[cols] if cols is not None else source
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"event file {path} does not exist")
    kind, by_suffix = _source_kind(path)
    sep = sep or by_suffix
    if kind == "csv" and path.is_file():
        _check_compression(path)
    try:
        if kind == "csv":
            first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
            cells = first.iloc[0].tolist() if len(first) else []
            _check_sep(path, sep, cells)
            if header_row is None:
                header = list(range(first.shape[1]))
            else:  # pandas would rename a repeated name to "ts.1" and read the first one only
                check_unique_columns(cells, str(path))
                header = list(pd.read_csv(path, sep=sep, nrows=0).columns)
        elif path.is_dir():
            header = None
        else:
            import pyarrow.parquet as pq

            header = list(pq.ParquetFile(path).schema_arrow.names)
    except pd.errors.EmptyDataError as e:
        raise EventSchemaError(f"{path} is empty (not even a header line)") from e
    except UnicodeDecodeError as e:
        raise EventSchemaError(f"{path} is not UTF-8 text ({e}): save it as UTF-8 (e.g. iconv -f latin1 -t utf-8), "
                               f"or read it with pd.read_csv(..., encoding=...) and pass the DataFrame") from e
    except EventSchemaError:
        raise
    except Exception as e:
        raise EventSchemaError(f"could not read {path} as {kind.upper()}: {e}") from e

    def read(cols, text=()):
        try:
            if kind == "csv":
                dtype = {c: str for c in text if cols is None or c in cols}
                return pd.read_csv(path, sep=sep, header=header_row, usecols=cols, low_memory=False, dtype=dtype or None)
            return pd.read_parquet(path, columns=cols)
        except Exception as e:
            raise EventSchemaError(f"could not read {path} as {kind.upper()}: {e}") from e

    if header is None:  # a Parquet folder: read it all to see its columns
        df = read(None)
        return str(path), list(df.columns), lambda cols, text=(): df[cols] if cols is not None else df
    return str(path), header, read


def _looks_like_data(header: list) -> bool:
    """Whether a CSV header row holds values (a number, a date) rather than column names."""
    try:
        from pandas.tseries.api import guess_datetime_format
    except ImportError:  # pandas < 2.2
        from pandas._libs.tslibs.parsing import guess_datetime_format
    for c in header:
        text = str(c).strip()
        if re.fullmatch(_NUMBER, text) or (any(ch.isdigit() for ch in text) and guess_datetime_format(text) is not None):
            return True
    return False


def _no_header_hint(name, header, is_csv: bool) -> str:
    """The "no header?" advice when a CSV's first row looks like data; else ''."""
    if not is_csv or not _looks_like_data(header):
        return ""
    return (f"; {name}'s first row {header} looks like data, not column names: no header? set \"header\": null in the "
            f"mapping (header=None) and name the columns by position, e.g. columns={{0: 'user_id', 1: 'item_id', 2: 'ts'}}")


def _map_columns(name, header, columns, event_map, category, is_csv: bool = False) -> tuple[dict, list, list]:
    """Check ``columns`` against the header; return (rename, columns to read, ignored columns).

    Without an item column (``item_id`` neither named nor mapped) the log is read without one."""
    columns = dict(columns or {})
    absent = [k for k in columns if k not in header]
    if absent:
        raise EventSchemaError(f"columns= names {absent}, which {name} does not have; it has {header}"
                               + _no_header_hint(name, header, is_csv))
    rename = {k: v for k, v in columns.items() if v is not None and k != v}
    unmapped = [c for c in header if c not in columns]
    clash = [(k, v) for k, v in rename.items() if v in unmapped]
    if clash:
        k, v = clash[0]
        raise EventSchemaError(
            f"columns= maps {k!r} to {v!r}, but {name} already has a column {v!r}; map that one too (to None to ignore it)"
        )
    ours = {columns.get(c, c): c for c in header if columns.get(c, c) in EVENT_LOG_COLUMNS}
    required = ["user_id", "ts"]
    if category is None:
        required.insert(1, "category")
    if isinstance(category, str) and "item_id" not in ours:
        raise EventSchemaError(f"category={category!r} (one category per item) needs an item column, and {name} has none "
                               f"(it has {header}); map it with columns={{'your_item_column': 'item_id'}}, or pass "
                               f"category=<int> for one category")
    if not isinstance(event_map, str):
        required.append("event")
    missing = [c for c in required if c not in ours]
    if missing:
        hints = []
        lower = {str(c).lower().replace(" ", "_"): c for c in header if c not in columns}
        guess = {lower[m]: m for m in missing if m in lower}
        if guess:
            hints.append(f"did you mean columns={guess}?")
        if "category" in missing:
            hints.append("without a category column pass category='item', an int or a callable")
        if "event" in missing:
            hints.append("without an event column pass event_map='purchase' (or another single event) if every row is that event")
        shown = f" (after columns={columns})" if columns else ""
        raise EventSchemaError(
            f"{name} is missing required column(s) {missing}{shown}; it has {header}. "
            f"Map your names with columns={{'your_name': 'user_id', ...}}" + ("; " + "; ".join(hints) if hints else "")
            + _no_header_hint(name, header, is_csv)
        )
    if "category" in ours and category is not None:
        raise EventSchemaError(
            f"category={category!r} was given but {name} also has a category column ({ours['category']!r}); "
            f"use one: pass category=None to use the column, or columns={{{ours['category']!r}: None}} to ignore it"
        )
    if "event" in ours and isinstance(event_map, str):
        raise EventSchemaError(
            f"event_map={event_map!r} (one event for every row) was given but {name} has an event column ({ours['event']!r}); "
            f"map its names with event_map={{...}}, or ignore it with columns={{{ours['event']!r}: None}}"
        )
    read_cols = [ours[c] for c in EVENT_LOG_COLUMNS if c in ours]
    ignored = [c for c in header if c not in read_cols]
    return rename, read_cols, ignored


def _map_events(ev: pd.Series, rows, event_map) -> tuple[np.ndarray, np.ndarray, dict]:
    """Canonical event names (object array) for the kept rows, the keep mask, dropped counts."""
    missing = ev.isna().to_numpy()
    if missing.any():
        raise EventSchemaError(f"column 'event' has {int(missing.sum()):,} missing value(s) at rows {_rows_only(rows, missing)} ({_ROWS_NOTE})")
    codes, uniques = pd.factorize(ev, sort=False)
    counts = np.bincount(codes, minlength=len(uniques))
    emap = event_map or {}
    target, unmapped = [], []
    for u, n in zip(uniques, counts):
        u = u.item() if isinstance(u, np.generic) else u
        if u in emap:
            t = emap[u]
        elif str(u) in emap:
            t = emap[str(u)]
        elif str(u) in EVENT_TYPES:
            t = str(u)
        else:
            t = None
            unmapped.append((str(u), int(n)))
        target.append(t)
    if unmapped:
        unmapped.sort(key=lambda x: (-x[1], x[0]))
        shown = ", ".join(f"{u!r} ({n:,} row{'s' if n != 1 else ''})" for u, n in unmapped[:10])
        more = f", ... ({len(unmapped)} names in all)" if len(unmapped) > 10 else ""
        case = {u: u.strip().lower() for u, _ in unmapped if u.strip().lower() in EVENT_TYPES}
        hint = f"; did you mean event_map={case}?" if case else ""
        raise EventSchemaError(
            f"column 'event' has name(s) that event_map does not map and that are not one of {list(EVENT_TYPES)}: "
            f"{shown}{more}. Map each to one of those, or to None to drop it, e.g. event_map={{{unmapped[0][0]!r}: 'view'}}{hint}"
        )
    target = np.array(target, dtype=object)
    keep_code = np.array([t is not None for t in target], dtype=bool)
    dropped = {str(u.item() if isinstance(u, np.generic) else u): int(n) for u, n, k in zip(uniques, counts, keep_code) if not k and n > 0}
    keep = keep_code[codes]
    return target[codes[keep]], keep, dropped


def _factorize(values) -> tuple[np.ndarray, pd.DataFrame]:
    """Codes 0, 1, ... of the sorted distinct ids (numeric order for ids that are all digits)."""
    codes, uniques = pd.factorize(values, sort=True)
    original = pd.Series(np.asarray(uniques, dtype=object)).astype(str)
    if original.str.fullmatch("0|[1-9][0-9]*").all():  # big integers, possibly read as text: 9 before 10
        order = pd.DataFrame({"n": original.str.len(), "s": original}).sort_values(["n", "s"], kind="stable").index.to_numpy()
        rank = np.empty(len(order), dtype="int64")
        rank[order] = np.arange(len(order))
        codes, original = rank[codes], original.iloc[order].reset_index(drop=True)
    return codes.astype("int64"), pd.DataFrame({"code": np.arange(len(original), dtype="int64"), "original": original})


def _float_ids(x: np.ndarray, col: str, rows) -> np.ndarray:
    return check_float_ids(x, col, rows)


def _text_ids(s: pd.Series, col, name) -> pd.Series:
    """A CSV id column read as text, typed as pandas would infer it (numbers as numbers), except that ids
    written with leading zeros stay text, so that "007" and "7" are two ids; a :class:`DataWarning`
    counts the ids that a number would have merged."""
    t = s.dropna().astype(str).str.strip()
    zeros = t.str.match(r"[+-]?0\d")
    if zeros.any():
        merged = t[zeros].str.lstrip("+-0").replace("", "0")
        n = int(merged.isin(set(t[~zeros])).sum() + merged.duplicated().sum())
        clash = f"; as numbers {n:,} of these rows would have merged with another id (e.g. {t[zeros].iloc[0]!r} and " \
                f"{merged.iloc[0]!r})" if n else ""
        warnings.warn(f"{name}: column {col!r} has ids written with leading zeros ({int(zeros.sum()):,} rows, e.g. "
                      f"{t[zeros].iloc[0]!r}): read as text, so they are coded 0, 1, ... (EventLog.id_maps maps them back)"
                      f"{clash}", DataWarning, stacklevel=4)
        return s
    try:
        return pd.to_numeric(s)
    except (ValueError, TypeError):
        return s


def _retype(raw: pd.DataFrame, cols, name) -> pd.DataFrame:
    """:func:`_text_ids` on the columns ``cols`` of ``raw`` (names that may be positions)."""
    raw = raw.copy()
    for c in cols:
        if c in raw.columns:
            raw[c] = _text_ids(raw[c], c, name)
    return raw


def _ids(s: pd.Series, col: str, rows) -> tuple[np.ndarray, pd.DataFrame | None]:
    """int64 ids of one column, and the id map when the column had to be factorized."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    values = s.to_numpy(dtype=object) if s.dtype == object else None
    if pd.api.types.is_bool_dtype(s.dtype):
        raise EventSchemaError(f"column {col!r} holds true/false values, not ids: {_examples(s.to_numpy(dtype=object), rows, None)} ({_ROWS_NOTE})")
    missing = s.isna().to_numpy()
    if missing.any():
        raise EventSchemaError(f"column {col!r} has {int(missing.sum()):,} missing id(s) at rows {_rows_only(rows, missing)} ({_ROWS_NOTE})")
    if pd.api.types.is_integer_dtype(s.dtype):
        if pd.api.types.is_unsigned_integer_dtype(s.dtype) and int(s.max()) > _INT64_MAX:
            return _factorize(s.to_numpy())
        return s.to_numpy(dtype="int64"), None
    if pd.api.types.is_float_dtype(s.dtype):
        return _float_ids(s.to_numpy(dtype=float), col, rows), None
    kind = pd.api.types.infer_dtype(s, skipna=False)
    if kind == "boolean":
        raise EventSchemaError(f"column {col!r} holds true/false values, not ids: {_examples(values, rows, None)} ({_ROWS_NOTE})")
    if kind == "integer":
        try:
            return s.astype("int64").to_numpy(), None
        except (OverflowError, ValueError, TypeError):
            return _factorize(values)  # integers beyond int64: sorted codes
    if kind in ("floating", "mixed-integer-float"):
        return _float_ids(s.astype(float).to_numpy(), col, rows), None
    if kind == "string":
        text = s.astype(str)
        empty = (text.str.strip() == "").to_numpy()
        if empty.any():
            raise EventSchemaError(f"column {col!r} has {int(empty.sum()):,} empty id(s) at rows {_rows_only(rows, empty)} ({_ROWS_NOTE})")
        return _factorize(text)
    if kind in ("mixed", "mixed-integer"):
        vals = values if values is not None else s.to_numpy(dtype=object)
        is_bool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in vals), dtype=bool, count=len(vals))
        if is_bool.any():
            raise EventSchemaError(f"column {col!r} holds true/false values, not ids: {_examples(vals, rows, is_bool)} ({_ROWS_NOTE})")
        return _factorize(s.astype(str))
    raise EventSchemaError(f"column {col!r} holds {kind} values ({s.dtype}), not ids: {_examples(s.to_numpy(dtype=object), rows, None)} ({_ROWS_NOTE})")


def _unit_readings(v) -> tuple[str, list]:
    """``'1511848894 is 2017-11-28 08:41 as seconds, ...'`` and the units giving a plausible date."""
    hi = ts_max()
    parts, plausible = [], []
    for unit in TS_UNITS:
        try:
            t = pd.Timestamp(float(v) if isinstance(v, float) else int(v), unit=unit)
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
            parts.append(f"out of range as {_UNIT_NAMES[unit]}")
            continue
        # Built from the fields: strftime refuses years outside 1..9999 (a ms value read as seconds).
        parts.append(f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d} as {_UNIT_NAMES[unit]}")
        if TS_MIN <= t <= hi:
            plausible.append(unit)
    return f"{show_value(v)} is " + ", ".join(parts), plausible


def _numeric_ts(x: pd.Series, rows, ts_unit) -> pd.Series:
    """Unix timestamps (numbers) -> naive UTC datetime64[ns]."""
    arr = x.to_numpy()
    first = arr[0]
    if ts_unit is None:
        text, plausible = _unit_readings(first)
        hint = ""
        if plausible:
            hint = f"; only {', '.join(repr(u) for u in plausible)} give{'s' if len(plausible) == 1 else ''} a date between {TS_MIN.date()} and {ts_max().date()}"
        s_first = str(first)
        if len(s_first) == 8 and s_first[:2] in ("19", "20"):
            hint += "; if these are dates written as YYYYMMDD, pass ts_format='%Y%m%d' (\"ts_format\" in a mapping file)"
        raise EventSchemaError(
            f"column 'ts' holds numbers, not dates; pass ts_unit='s', 'ms', 'us' or 'ns' (the unit of the Unix timestamps). "
            f"Row {int(rows[0])}: {text}{hint}"
        )
    factor = TS_UNITS[ts_unit]
    xf = arr.astype(float)
    epoch = pd.Timestamp("1970-01-01")
    lo = (TS_MIN - epoch).value / factor
    hi = (ts_max() - epoch).value / factor
    out = ~((xf >= lo) & (xf <= hi))
    if out.any():
        i = int(np.flatnonzero(out)[0])
        text, plausible = _unit_readings(arr[i])
        hint = f"; row {int(rows[i])}: {text}" + (f" (is ts_unit={plausible[0]!r}?)" if plausible and ts_unit not in plausible else "")
        if not out.all():  # one unit for most rows: the others were written in another unit, or are typos
            hint += (f"; the other {int((~out).sum()):,} row(s) are plausible with ts_unit={ts_unit!r}, so these few may be "
                     f"in another unit{f' ({plausible[0]!r})' if plausible else ''}: fix or remove them in the source")
        raise EventSchemaError(
            f"column 'ts' has {int(out.sum()):,} timestamp(s) outside the plausible range {TS_MIN.date()} .. {ts_max().date()} "
            f"when read with ts_unit={ts_unit!r}: {_examples(arr, rows, out)} ({_ROWS_NOTE}){hint}"
        )
    if np.issubdtype(arr.dtype, np.integer):
        ns = arr.astype("int64") * factor
    else:
        ns = np.rint(xf * factor).astype("int64")
    return pd.Series(ns.view("datetime64[ns]"))


def _check_range(wall: pd.Series, shown, rows, also=None) -> None:
    """Timestamps outside ``TS_MIN .. ts_max()`` (or flagged in ``also``) are an error showing them."""
    hi = ts_max()
    out = ((wall < TS_MIN) | (wall > hi)).to_numpy(dtype=bool, na_value=False)
    if also is not None:
        out |= also
    if out.any():
        raise EventSchemaError(
            f"column 'ts' has {int(out.sum()):,} timestamp(s) outside the plausible range {TS_MIN.date()} .. {hi.date()} "
            f"(io.TS_MIN .. now + io.TS_MAX_AHEAD): {_examples(shown, rows, out)} ({_ROWS_NOTE})"
        )


def _extract(text: pd.Series, pattern: str) -> pd.Series:
    """The first group of ``pattern`` in each string (NaN where it does not match).

    Uses pyarrow's RE2 directly when it can (pandas' ``str.extract`` runs Python's ``re`` per row).
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(text.array)
        named = pattern.replace("(z|", "(?P<g>z|", 1)
        got = pc.struct_field(pc.extract_regex(arr, named), [0])
        return pd.Series(got.to_pandas(), index=text.index).astype(object).where(lambda x: x.notna(), np.nan)
    except Exception:  # no pyarrow or an RE2 limitation: the pandas path gives the same answer
        return text.str.extract(pattern, expand=False)


def _fmt_offset(delta) -> str:
    m = int(pd.Timedelta(delta).total_seconds() // 60)
    return f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"


def _offset_minutes(suffix: str) -> int:
    s = suffix.strip().upper()
    if s in ("Z", "UTC", "GMT"):
        return 0
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})?", s)
    sign = -1 if m.group(1) == "-" else 1
    return sign * (int(m.group(2)) * 60 + int(m.group(3) or 0))


def _far_date(value: str, fmt) -> bool:
    """Whether Python reads ``value`` as a date outside what pandas can hold (years 1677..2262)."""
    import datetime as _dt

    for parse in ((lambda v: _dt.datetime.strptime(v, fmt)) if fmt else None, _dt.datetime.fromisoformat):
        if parse is None:
            continue
        try:
            year = parse(value).year
        except (ValueError, TypeError):
            continue
        return not 1678 <= year <= 2261
    return False


def _parse_strings(text: pd.Series, rows, utc: bool) -> tuple[pd.Series, str]:
    """Parse date strings with the format guessed from the first one, then ISO 8601; bad ones are errors."""
    try:
        from pandas.tseries.api import guess_datetime_format
    except ImportError:  # pandas < 2.2
        from pandas._libs.tslibs.parsing import guess_datetime_format

    # The format of the first value pandas can read (a bad first value must not spoil the rest).
    first_i, fmt = 0, None
    for i, v in enumerate(text.iloc[:100]):
        fmt = guess_datetime_format(v)
        if fmt is not None:
            first_i = i
            break
    first = text.iloc[first_i]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(text, format=fmt or "mixed", errors="coerce", utc=utc)
        bad = parsed.isna().to_numpy()
        used = fmt or "mixed"
        if bad.any() and fmt is not None:
            retry = pd.to_datetime(text[bad], format="ISO8601", errors="coerce", utc=utc)
            if retry.notna().any():
                parsed = parsed.copy()
                parsed[bad] = retry
                used = f"{fmt} or ISO8601"
                bad = parsed.isna().to_numpy()
    if bad.any():
        values = text.to_numpy(dtype=object)
        # Dates pandas cannot hold (before 1677 or after 2262 in nanoseconds) are out of range, not garbage.
        far = np.zeros(len(text), dtype=bool)
        far[bad] = [_far_date(v, fmt) for v in values[bad]]
        if far.any() and not (bad & ~far).any():
            _check_range(parsed.dt.tz_localize(None) if utc else parsed, values, rows, also=far)
        bad = bad & ~far
        raise EventSchemaError(
            f"column 'ts' has {int(bad.sum()):,} value(s) that are not dates (read with the format {fmt or 'mixed'!r} guessed from "
            f"row {int(rows[first_i])} {first!r}, then as ISO 8601): {_examples(text.to_numpy(dtype=object), rows, bad)} ({_ROWS_NOTE})"
        )
    if fmt and "%d" in fmt and "%m" in fmt and not fmt.startswith("%Y"):
        swapped = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
        alt = pd.to_datetime(text, format=swapped, errors="coerce", utc=utc)
        if alt.notna().all() and (alt != parsed).any():
            warnings.warn(
                f"every date in column 'ts' reads both as {fmt} and as {swapped} (e.g. {first!r}); used {fmt}. "
                f"If that is the wrong day/month order, parse the column yourself (pd.to_datetime(..., format=...)) and pass a DataFrame",
                DataWarning,
                stacklevel=4,
            )
    return parsed, used


def _dst_counts(wall: pd.Series, tz, instants: bool) -> tuple[int, int]:
    """Local clock times in ``tz`` that occur twice (the hour repeated when clocks go back) and
    that never occur (the hour skipped when they go forward; never for ``instants`` put on the clock)."""
    amb = wall.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").isna().to_numpy()
    if instants:
        return int(amb.sum()), 0
    gap = wall.dt.tz_localize(tz, ambiguous=np.zeros(len(wall), dtype=bool), nonexistent="NaT").isna().to_numpy()
    return int(amb.sum()), int(gap.sum())


def _shift_gap(wall: pd.Series, tz, shown, rows) -> pd.Series:
    """Local clock times that ``tz`` skips (02:10 when clocks go from 02:00 to 03:00) moved forward by the
    clock change (03:10), as written by a clock not yet changed; a :class:`DataWarning` counts them.

    Not pandas' ``nonexistent="shift_forward"``: it puts every such time on 03:00, so 02:10 and 02:40
    would become one instant, and the duplicate rule would take the second for a logging retry.
    """
    gap = wall.dt.tz_localize(tz, ambiguous=np.zeros(len(wall), dtype=bool), nonexistent="NaT").isna().to_numpy()
    w = wall[gap]
    before = w.dt.tz_localize(tz, ambiguous=np.zeros(len(w), dtype=bool), nonexistent="shift_backward")
    offset = before.dt.tz_localize(None) - before.dt.tz_convert("UTC").dt.tz_localize(None)  # the UTC offset before the gap
    out = wall.copy()
    out[gap] = _to_clock(w - offset, tz)
    n = int(gap.sum())
    i = int(np.flatnonzero(gap)[0])
    warnings.warn(
        f"{n:,} local time(s) in column 'ts' fall in the hour that daylight saving skips in {tz} (row {int(rows[i])}: "
        f"{show_value(shown[i])}, which that clock never shows): moved forward by the clock change, to "
        f"{out.iloc[i]:%Y-%m-%d %H:%M} (a clock not yet changed wrote them), so they stay apart and in order; "
        f"report['tz_nonexistent'] counts them ({_ROWS_NOTE})",
        DataWarning,
        stacklevel=4,
    )
    return out


def _to_clock(utc: pd.Series, tz) -> pd.Series:
    """Naive UTC instants -> the naive local clock times of ``tz`` at those instants."""
    return utc.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)


def _formatted(col: pd.Series, rows, ts_format: str) -> tuple[pd.Series, pd.Series | None, str]:
    """Dates written in ``ts_format`` (text, or integers such as 20240131) -> (clock times as
    written, UTC instants when the format has an offset ``%z`` else None, the kind read)."""
    shown = col.to_numpy(dtype=object)
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        raise ValueError(f"ts_format={ts_format!r} applies to dates written as text or integers; column 'ts' holds "
                         f"datetimes already: remove ts_format")
    kind = "string"
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        x = col.to_numpy(dtype=float)
        frac = ~np.isfinite(x) | (x != np.floor(x))
        if frac.any():
            raise EventSchemaError(f"column 'ts' holds numbers that are not whole, so they cannot be dates in ts_format="
                                   f"{ts_format!r}: {_examples(shown, rows, frac)} ({_ROWS_NOTE})")
        text, kind = pd.Series(x.astype("int64")).astype(str), "numeric"
    else:
        text = col.astype(str).str.strip()
    aware = "%z" in ts_format or "%Z" in ts_format
    parsed = pd.to_datetime(text, format=ts_format, errors="coerce", utc=aware)
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise EventSchemaError(f"column 'ts' has {int(bad.sum()):,} value(s) that do not match ts_format={ts_format!r}: "
                               f"{_examples(shown, rows, bad)} ({_ROWS_NOTE})")
    parsed = parsed.dt.tz_localize(None) if aware else parsed
    return parsed, (parsed if aware else None), kind


def _timestamps(col: pd.Series, rows, ts_unit, tz, date_only, ts_format=None) -> tuple[np.ndarray, dict]:
    """Canonical timestamps (naive: the clock of ``tz``, else UTC or as written; calendar days kept
    as written) of the ``ts`` column, and what was done."""
    info = {"ts_kind": None, "ts_unit": None, "ts_format": None, "ts_offsets": [], "tz": None if tz is None else str(tz), "tz_applied": False}
    missing = col.isna().to_numpy()
    if missing.any():
        raise EventSchemaError(f"column 'ts' has {int(missing.sum()):,} missing timestamp(s) at rows {_rows_only(rows, missing)} ({_ROWS_NOTE})")
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    col = col.reset_index(drop=True)
    if pd.api.types.is_bool_dtype(col.dtype):
        raise EventSchemaError(f"column 'ts' holds true/false values, not timestamps: {_examples(col.to_numpy(dtype=object), rows)} ({_ROWS_NOTE})")
    numeric = None
    wall = utc = None  # the clock times as written, and the UTC instants where the data fixes them
    shown = col.to_numpy(dtype=object)
    if ts_format is not None:
        wall, utc, info["ts_kind"] = _formatted(col, rows, ts_format)
        info["ts_format"] = ts_format
        if utc is not None and tz is not None:  # instants (an offset %z in the format): on the shop's clock
            wall = _to_clock(utc.astype("datetime64[ns]"), tz)
    elif pd.api.types.is_datetime64_any_dtype(col.dtype):
        info["ts_kind"] = "datetime"
        if getattr(col.dt, "tz", None) is not None:
            wall = col.dt.tz_localize(None)
            utc = col.dt.tz_convert("UTC").dt.tz_localize(None)
            info["ts_offsets"] = [str(col.dt.tz)]
        else:
            wall = col
    elif pd.api.types.is_numeric_dtype(col.dtype):
        numeric = col
    else:
        kind = pd.api.types.infer_dtype(col, skipna=False)
        if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
            numeric = pd.to_numeric(col)
        elif kind == "boolean":
            raise EventSchemaError(f"column 'ts' holds true/false values, not timestamps: {_examples(shown, rows)} ({_ROWS_NOTE})")
        else:
            text = col.astype(str).str.strip()
            shown = text.to_numpy(dtype=object)
            empty = (text == "").to_numpy()
            if empty.any():
                raise EventSchemaError(f"column 'ts' has {int(empty.sum()):,} empty timestamp(s) at rows {_rows_only(rows, empty)} ({_ROWS_NOTE})")
            if re.fullmatch(_NUMBER, text.iloc[0]):
                number = text.str.fullmatch(_NUMBER).to_numpy(dtype=bool)
                if not number.all():
                    raise EventSchemaError(
                        f"column 'ts' mixes numbers ({int(number.sum()):,}) with other text: {_examples(shown, rows, ~number)} ({_ROWS_NOTE})"
                    )
                numeric = pd.to_numeric(text)
            else:
                info["ts_kind"] = "string"
                suffix = _extract(text, _TZ_SUFFIX)
                aware = suffix.notna().to_numpy()
                if aware.any() and not aware.all():
                    raise EventSchemaError(
                        f"column 'ts' mixes timestamps with a time-zone offset ({int(aware.sum()):,}) and without one "
                        f"({int((~aware).sum()):,}), so the naive ones cannot be placed in time: with an offset "
                        f"{_examples(shown, rows, aware, 3)}; without {_examples(shown, rows, ~aware, 3)} ({_ROWS_NOTE})"
                    )
                if aware.any():
                    parsed, info["ts_format"] = _parse_strings(text, rows, utc=True)
                    utc = parsed.dt.tz_localize(None)
                    minutes = {u: _offset_minutes(u) for u in suffix.unique()}
                    offset = pd.to_timedelta(suffix.map(minutes).to_numpy(dtype="int64"), unit="min")
                    wall = utc + offset
                    info["ts_offsets"] = sorted({_fmt_offset(pd.Timedelta(minutes=m)) for m in minutes.values()})
                else:
                    wall, info["ts_format"] = _parse_strings(text, rows, utc=False)
    if numeric is not None:
        info["ts_kind"], info["ts_unit"] = "numeric", ts_unit
        utc = _numeric_ts(numeric.reset_index(drop=True), rows, ts_unit)
        # Unix timestamps are instants: with tz their clock is the shop's, so that midnight there cuts the days
        wall = utc if tz is None else _to_clock(utc.astype("datetime64[ns]"), tz)
    elif ts_unit is not None:
        raise ValueError(
            f"ts_unit={ts_unit!r} applies to numeric (Unix) timestamps; column 'ts' holds {info['ts_kind']} values "
            f"(e.g. {show_value(shown[0])}): remove ts_unit"
        )
    _check_range(wall, shown, rows)
    wall = wall.astype("datetime64[ns]")
    if utc is not None:
        utc = utc.astype("datetime64[ns]")
    detected = bool((wall.to_numpy().view("int64") % (86400 * 10**9) == 0).all())
    info["date_only_detected"] = detected
    info["date_only"] = detected if date_only is None else bool(date_only)
    if tz is not None and utc is not None and numeric is None and ts_format is None:
        implied = _to_clock(utc, tz)
        wrong = (implied != wall).to_numpy()
        if wrong.any() and not detected:
            i = int(np.flatnonzero(wrong)[0])
            raise EventSchemaError(
                f"tz={tz!r} does not match the UTC offsets written in column 'ts' at {int(wrong.sum()):,} row(s): "
                f"row {int(rows[i])}: {show_value(shown[i])} is UTC{_fmt_offset(wall.iloc[i] - utc.iloc[i])}, but {tz} was "
                f"UTC{_fmt_offset(implied.iloc[i] - utc.iloc[i])} then ({_ROWS_NOTE}); timestamps with offsets need no tz: remove it"
            )
    if detected:
        # Calendar dates are days where they were recorded: converting them to UTC would move each one
        # to the previous (or next) day, so they are kept as written (with tz, Unix timestamps at local
        # midnight are those dates too).
        final = wall
        info["ts_clock"] = "dates as written" if tz is None or numeric is None else str(tz)
        info["tz_applied"] = tz is not None and numeric is not None
    elif tz is not None:
        # The shop's clock: the days downstream (pandas, DuckDB, Spark) are cut at its midnight.
        final = wall
        info["tz_ambiguous"], info["tz_nonexistent"] = _dst_counts(wall, tz, instants=utc is not None)
        if info["tz_nonexistent"]:
            final = _shift_gap(wall, tz, shown, rows)
        info["tz_applied"], info["ts_clock"] = True, str(tz)
    elif utc is not None:
        final, info["ts_clock"] = utc, "UTC"
    else:
        final, info["ts_clock"] = wall, "as written"
    return final.to_numpy(dtype="datetime64[ns]"), info


def _category(category, frame: pd.DataFrame, rows, item_codes, id_maps) -> tuple[np.ndarray, str]:
    n = len(frame)
    if category is None:
        codes, m = _ids(frame["category"], "category", rows)
        if m is not None:
            id_maps["category"] = m
        return codes, "column"
    if isinstance(category, str):  # "item"
        if "item_id" in id_maps:
            id_maps["category"] = id_maps["item_id"].copy()
        return item_codes.copy(), "item"
    if not callable(category):
        return np.full(n, int(category), dtype="int64"), "constant"
    res = category(frame)
    if isinstance(res, pd.Series):
        if len(res) != n or not res.index.equals(frame.index):
            raise EventSchemaError(
                f"the category callable returned a Series of {len(res):,} rows with another index; it must return one label "
                f"per row of the frame it is given ({n:,} rows, same index)"
            )
        res = res.reset_index(drop=True)
    else:
        arr = np.asarray(res)
        if arr.ndim != 1 or len(arr) != n:
            raise EventSchemaError(f"the category callable returned shape {arr.shape}; it must return one label per row ({n:,})")
        res = pd.Series(arr)
    codes, m = _ids(res, "category", rows)
    if m is not None:
        id_maps["category"] = m
    return codes, "callable"


def load_events(source, *, columns=None, event_map=None, ts_unit=None, tz=None, category=None, date_only=None,
                header=0, sep=None, ts_format=None) -> EventLog:
    """Load your own event log into decaylib's canonical form ("bring your own events").

    Parameters
    ----------
    source:
        A CSV file (``.csv``, ``.tsv``, also compressed: ``.csv.gz``, ``.csv.bz2``, ``.csv.zip``,
        ``.csv.xz``), a Parquet file (``.parquet``, ``.pq``) or folder of Parquet files, or a pandas
        DataFrame (never modified).  One row per event.
    columns:
        ``{your_column: ours}`` where ours is one of ``user_id``, ``item_id``, ``category``, ``ts``,
        ``event``; map a column to ``None`` to ignore it.  Columns already named like ours need no
        entry; other columns are ignored (listed in ``report["ignored_columns"]``).  With
        ``header=None`` the keys are 0-based column positions: ``{0: "user_id", 2: "ts"}``, or
        digits as in a JSON file, whose keys are strings: ``{"0": "user_id", "2": "ts"}``.
        Without an item column (none named or mapped ``item_id``) the log is read all the same:
        ``item_id`` is :data:`NO_ITEM` for every event and a :class:`~decaylib.checks.DataWarning`
        says so (``report["item_mode"] == "constant"``).  The panel, λ and the advice are per
        (user, category) and need no item; items only tell apart rows that are otherwise the same,
        so rows repeating another row's user, category, timestamp and event are counted
        (``report["same_key_rows_without_item"]``) and the warning says that preprocess's duplicate
        rule will take them for logging retries unless the timestamps are dates only.
    header:
        ``0`` (default): the first row of a CSV file names the columns.  ``None`` (``null`` in
        JSON): the file has no header row and ``columns`` names the columns by position.  When the
        mapping names columns that a CSV file lacks and its first row looks like data (a number or a
        date), the error says "no header? set header: null / header=None".  CSV files only.
    sep:
        The separator of a CSV file: one character, e.g. ``";"``, ``"\t"`` or ``"|"``; default
        ``","`` for ``.csv`` and tab for ``.tsv``.  A file that reads as one column whose name (or
        first value) holds another separator is an error naming the ``sep`` to pass.  CSV files only.
    ts_format:
        The strftime format of dates written as text or integers (``"%d/%m/%Y %H:%M"``,
        ``"%Y%m%d"`` for ``20240131``): every value must match it (an error lists those that do
        not), nothing is guessed.  It excludes ``ts_unit``; an error for datetime columns.
    event_map:
        ``{your_event_name: ours}`` where ours is one of ``impression``, ``view``, ``click``,
        ``cart``, ``purchase``, or ``None`` to drop those rows (counted in
        ``report["dropped_events"]``).  Names already canonical need no entry; any other name is an
        error listing the unmapped names with their counts.  Keys may be the raw values (``{1: "view"}``)
        or their string form (``{"1": "view"}``, as in JSON).  A single event name instead of a dict
        (``event_map=PURCHASE``) says that every row is that event: for a log without an event
        column, such as an order table (it is an error if the data has an event column).
    ts_unit:
        The unit of numeric (Unix) timestamps: ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``.  Required
        for numbers (also digits stored as text), since 1511848894 is 2017-11-28 in seconds but
        1970-01-18 in milliseconds; the error shows what each unit would give (also when some or
        all values are in another unit than the one given).  An error for date strings and datetimes.
    tz:
        The shop's IANA time zone (``"Asia/Shanghai"``): its days are the log's days, cut at its
        local midnight.  Unix timestamps and timestamps with offsets are instants and are put on its
        clock (``ts`` is the local time then); naive date strings and datetimes are taken as its
        clock already and kept as written (local times that daylight saving repeats are counted in
        ``report["tz_ambiguous"]``; those it skips, 02:10 when clocks go from 02:00 to 03:00, were
        written by a clock not yet changed and are moved forward by the change, to 03:10, so that two
        of them never become one instant: a :class:`~decaylib.checks.DataWarning` and
        ``report["tz_nonexistent"]`` count them); offsets written in the
        data that differ from the zone's are an error.  Without ``tz``, Unix timestamps and offset
        times are UTC (days cut at UTC midnight: 08:00 in Beijing) and naive times are kept as
        written.  Calendar dates are never shifted.
    category:
        ``None`` (default): use the ``category`` column.  Without one:
        ``"item"``: one category per item (``category`` = the item's code), so λ and decay points
        are per (user, item), which is sparse: most users touch an item on one or two days, and
        most pairs will not be estimable.  An ``int``: every event in that one category, i.e. the
        user's interest in the shop as a whole.  A callable: called with the mapped frame (your
        columns renamed to ours, every column of the source, indexed by the 0-based data row of the
        kept rows) and returning one label per row (a Series with that index, or an array), e.g.
        ``lambda df: df["item_id"].astype(str).str[:3]``; labels that are not integers are factorized.
        Giving ``category=`` when the data has a category column is an error (one or the other).
    date_only:
        ``None`` (default): detect, True when every timestamp is at midnight (dates without a time
        of day, or written as ``00:00:00``).  ``True``/``False`` overrides the detection.  It matters
        for cleaning: with dates only, two identical rows on one day are two real events (two
        orders of the same item on one day), not a logging retry, so duplicate removal must keep
        them.  Detected dates are kept as calendar days: they are never shifted by ``tz`` or offsets.

    Returns
    -------
    EventLog
        ``events`` (canonical: int64 ids, naive ``datetime64[ns]`` ``ts`` on ``report["ts_clock"]``, canonical event
        names, in source row order), ``report``, ``date_only``, ``id_maps``, ``source``.

    Timestamps: date strings are read with the format guessed from the first readable value, then
    as ISO 8601 (dates and date-times may mix); when every value reads both day-first and
    month-first a ``DataWarning`` says which was used.  Strings with an explicit offset (``+01:00``,
    ``+0100``, ``Z``, ``UTC``) are instants and are converted to UTC, even when the offsets differ
    (daylight saving); a column that mixes strings with and without an offset is an error, since
    the naive ones cannot be placed.  Plausible timestamps lie in ``TS_MIN`` .. now +
    ``TS_MAX_AHEAD``; anything else is taken for a wrong unit or a typo and is an error.

    CSV files are read with pandas' type inference, except for the id columns: ids written as digits
    become integers, unless some are written with leading zeros (``007``): then the column is read as
    text, so that ``007`` and ``7`` stay two ids (as numbers both would be 7), and a
    :class:`~decaylib.checks.DataWarning` counts the ids a number would have merged.  Ids: integer ids are kept as int64.  Strings, integers beyond int64 (also uint64) are
    factorized: the sorted distinct ids get codes 0, 1, ... (deterministic), and
    ``id_maps[column]`` (``code``, ``original`` as text) maps them back, see
    :meth:`EventLog.original_ids` and :meth:`EventLog.code_of`.  Floats that are whole numbers
    (an integer column with gaps read from CSV) become int64.  Fractional or boolean ids and missing
    ids are errors: loading never guesses an id and never drops a row silently.

    ``report`` keys: ``source``, ``rows_read``, ``rows_kept``, ``dropped_events`` ({name: rows}),
    ``columns`` (renames applied), ``ignored_columns``, ``event_counts``, ``ts_kind``
    (``"datetime"``, ``"string"`` or ``"numeric"``), ``ts_unit``, ``ts_format`` (the format used for
    strings), ``ts_offsets`` (UTC offsets or time zone written in the data), ``tz``, ``tz_applied``
    (plus ``tz_ambiguous``/``tz_nonexistent`` when applied to naive times), ``date_only``,
    ``date_only_detected``, ``ts_clock`` (the zone of ``ts``: the ``tz`` given, ``"UTC"``,
    ``"as written"`` or ``"dates as written"``), ``category_mode`` (``"column"``, ``"item"``,
    ``"constant"``, ``"callable"``), ``item_mode`` (``"column"`` or ``"constant"``),
    ``same_key_rows_without_item``, ``factorized`` (columns), ``first_ts``, ``last_ts``, ``span_days``,
    ``n_users``, ``n_items``, ``n_categories``, ``n_events``.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    EventSchemaError
        The data does not fit: unknown file type, empty table, missing column (with "no header?"
        when a CSV's first row looks like data), a CSV read as one column (with the ``sep`` to
        pass), unmapped event names, numeric timestamps without ``ts_unit``, values not matching
        ``ts_format``, timestamps that are missing, unparseable, outside
        ``TS_MIN`` .. now + ``TS_MAX_AHEAD`` or that mix naive and offset times, bad ids.  Each
        message shows at most a few offending values with their 0-based data row numbers (the
        header not counted) and how many there are in all.
    ValueError, TypeError
        An argument is wrong (unknown target name, unknown unit or time zone, ...).

    Examples
    --------
    >>> log = load_events("orders.csv", columns={"CustomerID": "user_id", "StockCode": "item_id",
    ...                   "InvoiceDate": "ts"}, event_map=PURCHASE, category="item")  # doctest: +SKIP
    >>> print(log.describe())  # doctest: +SKIP

    Notebook 08.
    """
    _check_args(columns, event_map, ts_unit, tz, category, date_only, header, sep, ts_format)
    if header is None:  # positions, as ints: "0" (a JSON key) and 0 are the same column
        columns = {_position(k): v for k, v in columns.items()}
    name, names, read = _header(source, header, sep)
    is_csv = not isinstance(source, pd.DataFrame) and _source_kind(Path(source).expanduser())[0] == "csv"
    rename, read_cols, ignored = _map_columns(name, names, columns, event_map, category, is_csv)
    id_src = [c for c in names if (columns or {}).get(c, c) in _ID_COLUMNS]
    raw = read(None if callable(category) else read_cols, id_src)
    if is_csv:  # ids read as text: typed as pandas would, except that "007" stays text (as a number it is "7")
        raw = _retype(raw, id_src, name)
    n_read = len(raw)
    if n_read == 0:
        raise EventSchemaError(f"{name} has no rows (columns {names}): there are no events to load")
    frame = raw.rename(columns=rename)
    if callable(category):
        frame = frame.drop(columns=[c for c, v in (columns or {}).items() if v is None and c in frame.columns])
    frame = frame.reset_index(drop=True)
    rows = np.arange(n_read)

    if isinstance(event_map, str):
        ev, dropped = np.full(n_read, event_map, dtype=object), {}
    else:
        ev, keep, dropped = _map_events(frame["event"], rows, event_map)
        if not keep.all():
            frame, rows = frame[keep], rows[keep]
    if len(frame) == 0:
        raise EventSchemaError(f"event_map drops every row of {name} ({dropped}): there are no events left")

    ts, ts_info = _timestamps(frame["ts"], rows, ts_unit, tz, date_only, ts_format)
    id_maps = {}
    ids = {}
    has_item = "item_id" in frame.columns
    for col in ("user_id", "item_id") if has_item else ("user_id",):
        ids[col], m = _ids(frame[col].reset_index(drop=True), col, rows)
        if m is not None:
            id_maps[col] = m
    if not has_item:
        ids["item_id"] = np.full(len(frame), NO_ITEM, dtype="int64")
    cat, mode = _category(category, frame, rows, ids["item_id"], id_maps)
    same_key = 0
    if not has_item:
        same_key = _same_key_rows(ids["user_id"], cat, ts.view("int64"), np.asarray(ev, dtype=object))
        warnings.warn(_no_item_note(name, ignored, same_key, ts_info["date_only"]), DataWarning, stacklevel=2)

    events = pd.DataFrame(
        {"user_id": ids["user_id"], "item_id": ids["item_id"], "category": cat, "ts": ts, "event": pd.Series(ev, dtype=object).astype(str)}
    )
    first, last = events["ts"].min(), events["ts"].max()
    counts = events["event"].value_counts()
    report = {
        "source": name,
        "rows_read": int(n_read),
        "rows_kept": int(len(events)),
        "dropped_events": dropped,
        "columns": {str(k): v for k, v in rename.items()},
        "ignored_columns": [str(c) for c in ignored],
        "event_counts": {e: int(counts[e]) for e in EVENT_TYPES if e in counts.index},
        **ts_info,
        "category_mode": mode,
        "item_mode": "column" if has_item else "constant",
        "same_key_rows_without_item": same_key,
        "factorized": [c for c in _ID_COLUMNS if c in id_maps],
        "first_ts": first.isoformat(),
        "last_ts": last.isoformat(),
        "span_days": int((last.normalize() - first.normalize()).days) + 1,
        "n_events": int(len(events)),
        "n_users": int(events["user_id"].nunique()),
        "n_items": int(events["item_id"].nunique()),
        "n_categories": int(events["category"].nunique()),
    }
    return EventLog(events=events, report=report, date_only=bool(ts_info["date_only"]), id_maps=id_maps, source=name)


def _same_key_rows(user, cat, t, ev) -> int:
    """Rows that repeat an earlier row's user, category, timestamp and event (what an item would tell apart)."""
    order = np.argsort(t)
    st = t[order]
    eq = st[1:] == st[:-1]
    tie = np.zeros(len(t), dtype=bool)
    tie[1:] |= eq
    tie[:-1] |= eq
    rows = np.sort(order[tie])  # only rows sharing a timestamp can repeat one: a handful, unless dates only
    if len(rows) == 0:
        return 0
    key = pd.DataFrame({"u": user[rows], "c": cat[rows], "t": t[rows], "e": pd.factorize(ev[rows])[0]})
    return int(key.duplicated().sum())


def _no_item_note(name, ignored, same_key: int, date_only: bool) -> str:
    """The warning of a log without an item column: what the constant item costs."""
    hint = f" (not read: {[str(c) for c in ignored][:8]}; map one with columns={{'its_name': 'item_id'}} if it holds items)" if ignored else ""
    note = (f"{name} has no item column{hint}: item_id is {NO_ITEM} for every event. decaylib's panel, λ and advice are "
            f"per (user, category) and need no item; items only tell apart rows that are otherwise identical")
    if same_key and not date_only:
        note += (f": {same_key:,} row(s) repeat another row's user, category, timestamp and event, and preprocess's "
                 f"duplicate rule will remove them as logging retries (pass date_only=True to keep them)")
    elif same_key:
        note += f": {same_key:,} row(s) repeat another row's user, category, day and event; as dates only they are kept as real repeats"
    return note + "."


def write_id_maps(log_or_id_maps, directory) -> list[Path]:
    """Write one ``id_map_<column>.parquet`` per factorized column into ``directory`` (atomically).

    ``log_or_id_maps`` is an :class:`EventLog` or its ``id_maps`` dict.  Id-map files of the other
    id columns left from an earlier log are removed, so the folder always describes this log.
    Returns the paths written.

    Notebooks 02 and 08.
    """
    maps = log_or_id_maps.id_maps if isinstance(log_or_id_maps, EventLog) else log_or_id_maps
    if not isinstance(maps, dict):
        raise TypeError(f"expected an EventLog or a dict of id maps, got {type(log_or_id_maps).__name__}")
    unknown = sorted(set(maps) - set(_ID_COLUMNS))
    if unknown:
        raise ValueError(f"id maps for unknown column(s) {unknown}; expected some of {list(_ID_COLUMNS)}")
    directory = Path(directory)
    written = []
    for col in _ID_COLUMNS:
        path = directory / f"id_map_{col}.parquet"
        if col in maps:
            m = maps[col]
            if list(m.columns) != ["code", "original"]:
                raise ValueError(f"id map of {col!r} must have columns ['code', 'original'], has {list(m.columns)}")
            written.append(write_parquet(m, path))
        elif path.exists():
            path.unlink()
    return written


def read_id_maps(directory) -> dict:
    """Read the id maps written by :func:`write_id_maps` (an empty dict when there are none).

    Notebooks 02 and 08.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactMissingError(f"folder {directory} does not exist; write_id_maps writes the id maps there")
    maps = {}
    for col in _ID_COLUMNS:
        path = directory / f"id_map_{col}.parquet"
        if path.exists():
            m = read_parquet(path, ["code", "original"])
            maps[col] = pd.DataFrame({"code": m["code"].astype("int64"), "original": m["original"].astype(str)})
    return maps


def load_mapping(path_or_dict) -> dict:
    """The keyword arguments of :func:`load_events` from a JSON mapping file (or a dict).

    Valid keys: :data:`MAPPING_KEYS`: ``columns``, ``event_map``, ``ts_unit``, ``tz``,
    ``category`` (``"item"`` or an int in JSON), ``date_only``, ``header`` (``null`` for a CSV
    without a header row; then ``columns`` keys are positions written as digits), ``sep``,
    ``ts_format``; any other key is a ``ValueError`` naming it.  ``None`` gives ``{}``.
    Example files::

        {"columns": {"visitorid": "user_id", "itemid": "item_id", "timestamp": "ts"},
         "event_map": {"addtocart": "cart", "transaction": "purchase"},
         "ts_unit": "ms", "tz": "Asia/Shanghai", "category": "item"}

        {"header": null, "sep": ";", "columns": {"0": "user_id", "2": "ts"},
         "ts_format": "%Y%m%d", "event_map": "purchase", "category": 0}

    Notebook 08.
    """
    if path_or_dict is None:
        return {}
    where = "the mapping"
    if isinstance(path_or_dict, dict):
        mapping = dict(path_or_dict)
    else:
        path = Path(path_or_dict).expanduser()
        where = f"mapping file {path}"
        if not path.exists():
            raise FileNotFoundError(f"mapping file {path} does not exist")
        try:
            mapping = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{where} is not valid JSON: {e}") from e
        except UnicodeDecodeError as e:
            raise ValueError(f"{where} is not UTF-8 text ({e}); JSON files are UTF-8: save it in that encoding "
                             f"(e.g. iconv -f latin1 -t utf-8)") from e
        if not isinstance(mapping, dict):
            raise ValueError(f"{where} must hold a JSON object with keys among {list(MAPPING_KEYS)}, not a {type(mapping).__name__}")
    unknown = sorted(set(mapping) - set(MAPPING_KEYS), key=str)
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}; valid keys: {list(MAPPING_KEYS)}")
    try:
        _check_args(**{k: mapping[k] for k in MAPPING_KEYS if k in mapping})
    except (TypeError, ValueError) as e:
        raise type(e)(f"{where}: {e}") from e
    return mapping


# ---------------------------------------------------------------------------------------------
# UCI Online Retail (the shipped sample, the complete year and the year before it)
# ---------------------------------------------------------------------------------------------

#: The shipped Online Retail files (``data/online_retail/`` of the repository).
ONLINE_RETAIL_DIR = Path(__file__).resolve().parents[2] / "data" / "online_retail"

#: The two yearly files, oldest first: Online Retail II's sheet "Year 2009-2010" and Online Retail.
ONLINE_RETAIL_YEAR_FILES = ("online_retail_ii_2009_2010.parquet", "online_retail_full.parquet")

#: Online Retail II's column names and Online Retail's (which :func:`load_online_retail` uses).
_RETAIL_II_NAMES = {"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}

_RETAIL_NEED = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "CustomerID"]

#: One invoice line: the same line in two files is the same purchase.
_RETAIL_LINE = ["InvoiceNo", "StockCode", "InvoiceDate", "Quantity"]


def read_online_retail(path) -> pd.DataFrame:
    """Online Retail lines (CSV or Parquet, by suffix) in Online Retail's column names.

    Online Retail II's names (``Invoice``, ``Price``, ``Customer ID``) are renamed; a missing file
    is a ``FileNotFoundError``, an unknown suffix a ``ValueError`` and a missing column a
    ``KeyError``, each naming the file.

    Notebook 08.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"Online Retail file {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        try:
            raw = pd.read_parquet(path)
        except Exception as e:
            raise ValueError(f"could not read {path} as Parquet: {e}") from e
    elif any(name.endswith(s + c) for s in _CSV_SUFFIXES for c in ("", *_COMPRESSION_SUFFIXES)):
        sep = "\t" if ".tsv" in name else ","
        raw = pd.read_csv(path, sep=sep, dtype={"InvoiceNo": str, "Invoice": str, "StockCode": str,
                                                "CustomerID": "string", "Customer ID": "string"})
    else:
        raise ValueError(f"cannot read {path.name}: unknown file type; expected .csv (optionally compressed) or .parquet")
    raw = raw.rename(columns={k: v for k, v in _RETAIL_II_NAMES.items() if k in raw.columns and v not in raw.columns})
    missing = [c for c in _RETAIL_NEED if c not in raw.columns]
    if missing:
        raise KeyError(f"{path} is missing column(s) {missing} of Online Retail; it has {list(raw.columns)} "
                       f"(Online Retail II's {list(_RETAIL_II_NAMES)} are accepted too)")
    raw["InvoiceNo"] = raw["InvoiceNo"].astype("string")
    raw["StockCode"] = raw["StockCode"].astype("string")
    return raw


def _online_retail_events(raw: pd.DataFrame, removed: dict | None = None) -> pd.DataFrame:
    """Invoice lines -> purchase events (the rules of :func:`load_online_retail`), in row order."""
    removed = dict(removed or {})
    raw = raw[_RETAIL_NEED]
    cancel = raw["InvoiceNo"].str.startswith("C").fillna(False).to_numpy(dtype=bool)
    no_cust = ~cancel & raw["CustomerID"].isna().to_numpy()
    bad_q = ~cancel & ~no_cust & (raw["Quantity"] <= 0).fillna(True).to_numpy(dtype=bool)
    removed["cancellations"] = int(cancel.sum())
    removed["no_customer"] = int(no_cust.sum())
    removed["non_positive_quantity"] = int(bad_q.sum())
    raw = raw[~(cancel | no_cust | bad_q)]
    frame = pd.DataFrame(
        {
            "user_id": pd.to_numeric(raw["CustomerID"]).to_numpy(),
            "item_id": raw["StockCode"].to_numpy(),
            "ts": raw["InvoiceDate"].to_numpy(),
        }
    )
    log = load_events(frame, event_map=PURCHASE, category=lambda df: df["item_id"].str[:3])
    events = log.events
    events.attrs["removed"] = removed
    family = log.id_maps["category"]
    events.attrs["category_names"] = dict(zip(family["code"].tolist(), family["original"].tolist()))
    return events


def load_online_retail(path) -> pd.DataFrame:
    """The UCI Online Retail data (the CSV sample or a Parquet file) as decaylib events.

    Purchases only, customers only.  ``path`` is the shipped sample
    (``online_retail_sample.csv``) or one of the complete Parquet files
    (``online_retail_full.parquet``, ``online_retail_ii_2009_2010.parquet``), read by suffix
    (``.csv``, optionally compressed, or ``.parquet``); Online Retail II's column names
    (``Invoice``, ``Price``, ``Customer ID``) are read as Online Retail's (``InvoiceNo``,
    ``UnitPrice``, ``CustomerID``).

    Every invoice line with a customer and a positive quantity becomes one ``purchase`` event;
    ``category`` is the first three characters of the stock code turned into an integer code
    (a coarse "product family"), ``item_id`` an integer code of the stock code.  Cancellations
    (invoice numbers starting with ``C``), rows without a customer and non-positive quantities
    are removed; the returned frame's ``attrs["removed"]`` counts each.  Built on
    :func:`load_events`, so bad timestamps or ids are reported the same way.  A missing file is a
    ``FileNotFoundError``, a missing column a ``KeyError`` naming the file and the column.

    Notebook 08.
    """
    return _online_retail_events(read_online_retail(path))


def _line_keys(f: pd.DataFrame) -> pd.MultiIndex:
    """(invoice, stock code, timestamp, quantity, occurrence) of each line: the k-th copy of a line is k."""
    key = f[_RETAIL_LINE].astype({"InvoiceNo": "string", "StockCode": "string", "Quantity": "int64"})
    return pd.MultiIndex.from_frame(key.assign(_occ=key.groupby(_RETAIL_LINE, sort=False, dropna=False).cumcount()))


def _drop_repeated_lines(frames: list[pd.DataFrame]) -> tuple[list[pd.DataFrame], list[int]]:
    """Drop from each file the invoice lines that a later file also holds, counted with multiplicity.

    Two lines are the same when invoice number, stock code, timestamp and quantity agree.  A line
    written k times in one file (the source has such repeats) and m times in a later file loses
    min(k, m) copies, so repeats within one file are never merged.  Only the time span that the
    files share is compared (equal lines have equal timestamps).  Returns the frames and the
    number of lines dropped from each.
    """
    kept, dropped = [None] * len(frames), [0] * len(frames)
    for i in range(len(frames) - 1, -1, -1):
        f, later = frames[i], kept[i + 1:]
        hit = np.zeros(len(f), dtype=bool)
        if later and len(f):
            ts = f["InvoiceDate"]
            lo, hi = min(k["InvoiceDate"].min() for k in later), ts.max()
            cand = np.flatnonzero((ts >= lo).to_numpy())
            theirs = [k[(k["InvoiceDate"] <= hi).to_numpy()] for k in later]
            theirs = [k for k in theirs if len(k)]
            if len(cand) and theirs:
                seen = _line_keys(theirs[0])
                for k in theirs[1:]:
                    seen = seen.append(_line_keys(k))
                hit[cand[_line_keys(f.iloc[cand]).isin(seen)]] = True
        dropped[i] = int(hit.sum())
        kept[i] = f[~hit] if hit.any() else f
    return kept, dropped


def load_online_retail_years(paths_or_dir=None) -> pd.DataFrame:
    """Two years of one shop as one event log: Online Retail II's 2009-2010 and Online Retail.

    ``paths_or_dir`` is a folder holding :data:`ONLINE_RETAIL_YEAR_FILES` (default: the shipped
    ``data/online_retail/``) or a list of Online Retail files (CSV or Parquet, either data set's
    column names).  The files are read with :func:`load_online_retail`'s reader, put in the order
    of their first timestamp and concatenated; invoice lines that two files share (the two data
    sets overlap from 2010-12-01 to 2010-12-09: 22,523 lines) are kept once, from the later file,
    so the 2010-12..2011-12 part equals ``load_online_retail("online_retail_full.parquet")``.
    Lines are the same when invoice number, stock code, timestamp and quantity agree, counted with
    multiplicity (a line written twice in one file stays twice).  Then the rules of
    :func:`load_online_retail` apply (customers only, positive quantities, no cancellations) and
    the events come back sorted by time (stable: ties keep file order).

    ``attrs``: ``removed`` (``overlap_duplicates`` plus the counts of :func:`load_online_retail`),
    ``overlap_duplicates`` (lines dropped as repeated in a later file), ``sources`` (one dict per
    file: ``path``, ``rows``, ``first_ts``, ``last_ts``, ``dropped_as_overlap``),
    ``category_names``.  Missing files are a ``FileNotFoundError`` naming them, a missing column a
    ``KeyError`` naming the file and the column.

    Notebook 08.
    """
    if paths_or_dir is None:
        paths_or_dir = ONLINE_RETAIL_DIR
    if isinstance(paths_or_dir, (str, os.PathLike)):
        folder = Path(paths_or_dir).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"folder {folder} does not exist; pass the folder holding {list(ONLINE_RETAIL_YEAR_FILES)} "
                                    "or a list of Online Retail files")
        paths = [folder / f for f in ONLINE_RETAIL_YEAR_FILES]
    else:
        paths = [Path(p).expanduser() for p in paths_or_dir]
    if not paths:
        raise ValueError("no Online Retail files given")
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"Online Retail file(s) {absent} do not exist")
    frames = [read_online_retail(p) for p in paths]
    for f in frames:  # a CSV file's timestamps are text: compare and sort them as times
        if not pd.api.types.is_datetime64_any_dtype(f["InvoiceDate"]):
            f["InvoiceDate"] = pd.to_datetime(f["InvoiceDate"])
    order = sorted(range(len(frames)), key=lambda i: (frames[i]["InvoiceDate"].min(), i))
    paths, frames = [paths[i] for i in order], [frames[i] for i in order]
    kept, dropped = _drop_repeated_lines(frames)
    sources = [
        {"path": str(p), "rows": int(len(f)), "first_ts": f["InvoiceDate"].min().isoformat(),
         "last_ts": f["InvoiceDate"].max().isoformat(), "dropped_as_overlap": d}
        for p, f, d in zip(paths, frames, dropped)
    ]
    raw = pd.concat([k[_RETAIL_NEED] for k in kept], ignore_index=True)
    raw = raw.sort_values("InvoiceDate", kind="stable", ignore_index=True)
    events = _online_retail_events(raw, {"overlap_duplicates": int(sum(dropped))})
    events.attrs["overlap_duplicates"] = int(sum(dropped))
    events.attrs["sources"] = sources
    return events
