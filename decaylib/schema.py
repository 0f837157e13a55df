"""The one vocabulary of decaylib: event types, column names, pair keys (every notebook).

Every room imports its names from here, so that an event type or a column set is written once.
A test (``tests/test_house.py``) fails if an event name appears as a string literal anywhere
else in the package. Your own log's names are mapped onto these by
:func:`decaylib.data.load.load_events` (notebook 08).
"""

from __future__ import annotations

# The event types: a recommendation shown, then the four behaviours from interest to purchase.
IMPRESSION, VIEW, CLICK, CART, PURCHASE = "impression", "view", "click", "cart", "purchase"
#: Every event type, in the simulator's order (notebook 01).
EVENT_TYPES: tuple[str, ...] = (IMPRESSION, VIEW, CLICK, CART, PURCHASE)
#: The behaviours: what a user does (impressions are what the shop does), the evidence for λ (notebooks 02, 04).
BEHAVIOURS: tuple[str, ...] = (VIEW, CLICK, CART, PURCHASE)
#: The panel's count columns, one per event type (notebook 02).
COUNT_COLUMNS: tuple[str, ...] = (VIEW, CLICK, CART, PURCHASE, IMPRESSION)
#: The interest score's default weights per behaviour (notebook 02).
DEFAULT_WEIGHTS: dict[str, float] = {VIEW: 1.0, CLICK: 2.0, CART: 3.0, PURCHASE: 5.0}

#: The behaviours' counts summed per panel row: the events the report forecasts (notebook 07).
EVENT_TOTAL = "events"

#: The columns of an event log (notebooks 01, 02, 08).
EVENT_LOG_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "category", "ts", "event")
#: A pair: one user's interest in one category.
PAIR_COLS: tuple[str, str] = ("user_id", "category")
#: The key of a panel row: a pair on a day.
PANEL_KEY_COLUMNS: tuple[str, ...] = (*PAIR_COLS, "day")
#: What every panel reader needs: the key and the interest score.
BASE_COLUMNS: tuple[str, ...] = (*PANEL_KEY_COLUMNS, "interest")
#: The daily panel's columns, in order (notebook 02).
PANEL_COLUMNS: tuple[str, ...] = (*PANEL_KEY_COLUMNS, *COUNT_COLUMNS, "interest", "interest_smooth", "observed")
#: The forecaster's input features per day (notebook 03).
FEATURE_COLUMNS: tuple[str, ...] = (*COUNT_COLUMNS, "interest")
