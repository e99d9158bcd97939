"""RFM summary per customer in the BTYD ("buy till you die") convention of PRODUCT.md §5.

Input: one row per revenue event with columns ``user_id`` (str), ``event_date`` (pl.Date) and
``value`` (Float64, net USD; negative = refund).

Convention (the one used by Fader, Hardie & Lee for CDNOW and by the ``lifetimes`` library):

* events after ``observation_end`` are ignored;
* events are netted per (user, day); a **purchase day** is a day whose net value is > 0. Days whose
  net value is <= 0 (refund-only days, or days where refunds cancel the purchases) are *not*
  purchase days: they count neither in frequency/recency nor in the spend model (they still count
  in ``total_value``). Option ``include_zero_value=True`` also counts days made only of $0 events
  (free purchases), as the published CDNOW analyses do;
* the first purchase day is the customer's birth (time 0 of the purchase models);
* ``frequency`` = purchase days − 1 (repeat purchase days);
* ``recency`` = last − first purchase day (0 when frequency = 0) — this is the BTYD "recency",
  *not* the marketing RFM "days since last purchase";
* ``t`` = observation_end − first purchase day (the models' T);
* ``monetary_value`` = mean net value of the repeat purchase days (every purchase day except the
  first), 0 when frequency = 0;
* ``first_purchase_value`` = net value of the first purchase day;
* ``total_value`` = net value of all events up to observation_end, refunds included.

Values are netted and summed exactly in integer millionths of the currency unit (``MICROS``), so
the output is bit-identical from run to run and for any order of the input rows.

Times are expressed in the chosen unit: days, or weeks = days / 7 (fractional). Users without any
purchase day are absent from the output.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import polars as pl

TimeUnit = Literal["days", "weeks"]

_UNIT_DAYS = {"days": 1.0, "weeks": 7.0}

RFM_COLUMNS = (
    "user_id",
    "first_purchase_date",
    "last_purchase_date",
    "frequency",
    "recency",
    "t",
    "monetary_value",
    "first_purchase_value",
    "total_value",
)


def unit_days(time_unit: TimeUnit) -> float:
    """Number of days in one time unit (1 for days, 7 for weeks)."""
    try:
        return _UNIT_DAYS[time_unit]
    except KeyError:
        raise ValueError(f"time_unit must be 'days' or 'weeks', got {time_unit!r}") from None


def to_time_unit(days, time_unit: TimeUnit):
    """Convert a number of days (scalar, numpy array or Polars expression) to the time unit."""
    return days / unit_days(time_unit)


def horizon_in_units(horizon_days: float, time_unit: TimeUnit) -> float:
    """A prediction horizon is always given in days; this converts it to the model's time unit."""
    if not horizon_days >= 0:
        raise ValueError(f"horizon_days must be >= 0, got {horizon_days!r}")
    return float(horizon_days) / unit_days(time_unit)


def _check_transactions(transactions: pl.DataFrame) -> None:
    missing = {"user_id", "event_date", "value"} - set(transactions.columns)
    if missing:
        raise ValueError(f"transactions lack column(s) {sorted(missing)}; need user_id, event_date, value")
    if transactions.schema["event_date"] != pl.Date:
        raise TypeError(f"event_date must be pl.Date, got {transactions.schema['event_date']}")
    if not transactions.schema["value"].is_numeric():
        raise TypeError(f"value must be numeric, got {transactions.schema['value']}")
    nulls = {
        c: n
        for c, n in zip(transactions.columns, transactions.null_count().row(0), strict=True)
        if c in ("user_id", "event_date", "value") and n
    }
    if nulls:
        raise ValueError(f"transactions contain nulls: {nulls}")


#: Values are summed as integers in millionths of the currency unit: integer sums are exact, so
#: they do not depend on the order of the terms (float sums would differ in the last bits with
#: the summation order), and a purchase refunded the same day nets to exactly 0 (9.99 − 9.99 in
#: floats need not).
MICROS = 1_000_000

_EPOCH = dt.date(1970, 1, 1)


class _Daily:
    """Net value per (user, day) for events with start < event_date <= end, from one sort.

    Arrays are sorted by (user key, day): ``user`` (int64 key), ``day`` (days since 1970),
    ``micros`` (net value of the day, int64), ``purchase`` (bool), ``first_row`` (index of one
    input row of the user-day, to recover the original user_id), and ``user_starts`` (index of the
    first day of each user).

    A day is a purchase day when its net value is > 0, or (``include_zero_value``) when every
    event of the day has value exactly 0.
    """

    def __init__(self, transactions: pl.DataFrame, start: dt.date | None, end: dt.date, include_zero_value: bool):
        cond = pl.col("event_date") <= end
        if start is not None:
            cond = cond & (pl.col("event_date") > start)
        uid = pl.col("user_id")
        dtype = transactions.schema["user_id"]
        key = uid.cast(pl.Int64) if dtype.is_integer() and dtype != pl.UInt64 else uid.rank("dense").cast(pl.Int64)
        # the key is computed on all rows before the date filter, so that windows share keys
        frame = (
            transactions.lazy()
            .with_row_index("_row")
            .with_columns(key.alias("_key"))
            .filter(cond)
            .select(
                "_row",
                "_key",
                pl.col("event_date").cast(pl.Int32).alias("_day"),
                _micros(pl.col("value")).alias("_micros"),
            )
            .collect()
        )
        key_arr = frame["_key"].to_numpy()
        day = frame["_day"].to_numpy().astype(np.int64)
        # one sort on a combined (key, day) integer; ties (same user and day) are summed, so
        # their order does not matter, and every row of a user carries the same user_id
        if len(key_arr):
            k0, d0 = int(key_arr.min()), int(day.min())
            span = int(day.max()) - d0 + 1
            if (int(key_arr.max()) - k0 + 1) * span < 2**62:
                combined = (key_arr - k0) * span + (day - d0)
                order = pl.Series(combined).arg_sort().to_numpy()
            else:
                order = frame.select(pl.arg_sort_by("_key", "_day")).to_series().to_numpy()
        else:
            order = np.zeros(0, dtype=np.int64)
        key_arr = key_arr[order]
        day = day[order]
        micros = frame["_micros"].to_numpy()[order]
        rows = frame["_row"].to_numpy()[order]
        n = len(key_arr)
        new_day = np.ones(n, dtype=bool)
        if n:
            new_day[1:] = (key_arr[1:] != key_arr[:-1]) | (day[1:] != day[:-1])
        starts = np.flatnonzero(new_day)
        self.user = key_arr[starts]
        self.day = day[starts].astype(np.int64)
        self.first_row = rows[starts]
        self.micros = np.add.reduceat(micros, starts) if n else np.zeros(0, dtype=np.int64)
        self.purchase = self.micros > 0
        if include_zero_value and n:
            nonzero_events = np.add.reduceat((micros != 0).astype(np.int64), starts)
            self.purchase |= nonzero_events == 0
        new_user = np.ones(len(self.user), dtype=bool)
        if len(self.user):
            new_user[1:] = self.user[1:] != self.user[:-1]
        self.user_starts = np.flatnonzero(new_user)


def _micros(expr: pl.Expr) -> pl.Expr:
    return (expr.cast(pl.Float64) * MICROS).round().cast(pl.Int64)


def _per_user_purchases(daily: _Daily):
    """Per user with at least one purchase day: (position of the user's first purchase day in the
    daily arrays, first and last purchase day, purchase days, Σ micros of purchase days, micros of
    the first purchase day)."""
    idx = np.flatnonzero(daily.purchase)
    users = daily.user[idx]
    new = np.ones(len(idx), dtype=bool)
    if len(idx):
        new[1:] = users[1:] != users[:-1]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(idx)][: len(starts)] - 1
    first_pos = idx[starts]
    micros = daily.micros[idx]
    total = np.add.reduceat(micros, starts) if len(idx) else np.zeros(0, dtype=np.int64)
    return first_pos, daily.day[idx[starts]], daily.day[idx[ends]], ends - starts + 1, total, micros[starts]


def _per_user_total(daily: _Daily, users: np.ndarray) -> np.ndarray:
    """Σ net micros of all days (refund-only days included) for each user key in ``users``
    (sorted, a subset of daily.user)."""
    totals = np.add.reduceat(daily.micros, daily.user_starts) if len(daily.user) else np.zeros(0, dtype=np.int64)
    pos = np.searchsorted(daily.user[daily.user_starts], users)
    return totals[pos]


def _rfm_frame(transactions: pl.DataFrame, observation_end: dt.date, time_unit: TimeUnit, include_zero_value: bool):
    """(RFM summary as in ``rfm_summary`` but in key order, user keys) — see the module docstring."""
    days_per_unit = unit_days(time_unit)
    daily = _Daily(transactions, None, observation_end, include_zero_value)
    first_pos, first_day, last_day, n_days, purchase_micros, first_micros = _per_user_purchases(daily)
    keys = daily.user[first_pos]
    total_micros = _per_user_total(daily, keys)
    end_day = (observation_end - _EPOCH).days
    frequency = n_days - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, (purchase_micros - first_micros) / MICROS / np.maximum(frequency, 1), 0.0)
    user_ids = transactions["user_id"].gather(daily.first_row[first_pos]) if len(first_pos) else transactions["user_id"].clear()
    frame = pl.DataFrame(
        {
            "user_id": user_ids,
            "first_purchase_date": pl.Series(first_day, dtype=pl.Int32).cast(pl.Date),
            "last_purchase_date": pl.Series(last_day, dtype=pl.Int32).cast(pl.Date),
            "frequency": pl.Series(frequency, dtype=pl.Int64),
            "recency": pl.Series((last_day - first_day) / days_per_unit, dtype=pl.Float64),
            "t": pl.Series((end_day - first_day) / days_per_unit, dtype=pl.Float64),
            "monetary_value": pl.Series(monetary, dtype=pl.Float64),
            "first_purchase_value": pl.Series(first_micros / MICROS, dtype=pl.Float64),
            "total_value": pl.Series(total_micros / MICROS, dtype=pl.Float64),
        }
    )
    return frame, keys


def rfm_summary(
    transactions: pl.DataFrame, observation_end: dt.date, time_unit: TimeUnit, *, include_zero_value: bool = False
) -> pl.DataFrame:
    """BTYD RFM summary per user (see the module docstring for the exact convention).

    ``include_zero_value=True`` also counts as purchase days the days whose events all have value
    exactly 0 (free purchases: a transaction-counting model counts them). The published CDNOW
    figures need it: 8 of the 2,357 sample customers bought only a $0.00 item. Default False: a
    purchase day must have positive net value (a user with only $0 events has not paid).

    Output columns: user_id, first_purchase_date, last_purchase_date, frequency (Int64),
    recency (Float64), t (Float64), monetary_value (Float64), first_purchase_value (Float64),
    total_value (Float64), one row per user with at least one purchase day, sorted by user_id.

    One pass: the events are sorted once by (user, day); day nets and user aggregates are then
    segment sums (``np.add.reduceat``) over the sorted integer arrays — exact, so the output is
    bit-identical for any order of the input rows.
    """
    _check_transactions(transactions)
    unit_days(time_unit)
    frame, _ = _rfm_frame(transactions, observation_end, time_unit, include_zero_value)
    return frame.sort("user_id")


def calibration_holdout_split(
    transactions: pl.DataFrame,
    calibration_end: dt.date,
    holdout_end: dt.date,
    time_unit: TimeUnit,
    *,
    include_zero_value: bool = False,
) -> pl.DataFrame:
    """Calibration RFM summary plus what each calibration customer did in the holdout period.

    The RFM columns are ``rfm_summary(transactions, calibration_end, time_unit)``; customers first
    seen in the holdout are not included. Added columns:

    * ``holdout_frequency`` (Int64): purchase days (same rule as the calibration) in
      (calibration_end, holdout_end];
    * ``holdout_value`` (Float64): net value of all events in that period, refunds included;
    * ``holdout_monetary_value`` (Float64): mean net value of the holdout purchase days (0 if none);
    * ``holdout_duration`` (Float64): holdout_end − calibration_end in the time unit.
    """
    _check_transactions(transactions)
    if holdout_end <= calibration_end:
        raise ValueError(f"holdout_end {holdout_end} must be after calibration_end {calibration_end}")
    days_per_unit = unit_days(time_unit)
    frame, keys = _rfm_frame(transactions, calibration_end, time_unit, include_zero_value)
    hold = _Daily(transactions, calibration_end, holdout_end, include_zero_value)
    h_first, _, _, h_days, h_purchase, _ = _per_user_purchases(hold)
    h_keys = hold.user[h_first]
    h_total_keys = hold.user[hold.user_starts]
    h_total = np.add.reduceat(hold.micros, hold.user_starts) if len(hold.user) else np.zeros(0, dtype=np.int64)
    freq = np.zeros(len(keys), dtype=np.int64)
    purchase = np.zeros(len(keys), dtype=np.int64)
    total = np.zeros(len(keys), dtype=np.int64)
    pos = np.searchsorted(keys, h_keys)
    found = (pos < len(keys)) & (keys[np.minimum(pos, max(len(keys) - 1, 0))] == h_keys) if len(keys) else np.zeros(len(h_keys), bool)
    freq[pos[found]] = h_days[found]
    purchase[pos[found]] = h_purchase[found]
    pos_t = np.searchsorted(keys, h_total_keys)
    found_t = (pos_t < len(keys)) & (keys[np.minimum(pos_t, max(len(keys) - 1, 0))] == h_total_keys) if len(keys) else np.zeros(len(h_total_keys), bool)
    total[pos_t[found_t]] = h_total[found_t]
    with np.errstate(invalid="ignore", divide="ignore"):
        h_monetary = np.where(freq > 0, purchase / MICROS / np.maximum(freq, 1), 0.0)
    duration = (holdout_end - calibration_end).days / days_per_unit
    return frame.with_columns(
        holdout_frequency=pl.Series(freq, dtype=pl.Int64),
        holdout_value=pl.Series(total / MICROS, dtype=pl.Float64),
        holdout_monetary_value=pl.Series(h_monetary, dtype=pl.Float64),
        holdout_duration=pl.lit(duration, dtype=pl.Float64),
    ).sort("user_id")


def repeat_purchase_curve(
    transactions: pl.DataFrame,
    calibration_end: dt.date,
    holdout_end: dt.date,
    *,
    include_zero_value: bool = False,
) -> np.ndarray:
    """Cumulative repeat purchases of the calibration customers over the holdout, day by day.

    Element d−1 (d = 1 … holdout_end − calibration_end) is the number of purchase days (same rule
    as ``rfm_summary``) in (calibration_end, calibration_end + d] of the customers whose first
    purchase day is on or before calibration_end — the "cumulative repeat transactions" curve of
    Fader, Hardie & Lee (2005), holdout part. Int64, non-decreasing.
    """
    _check_transactions(transactions)
    if holdout_end <= calibration_end:
        raise ValueError(f"holdout_end {holdout_end} must be after calibration_end {calibration_end}")
    calibration = _Daily(transactions, None, calibration_end, include_zero_value)
    born = np.unique(calibration.user[calibration.purchase])
    hold = _Daily(transactions, calibration_end, holdout_end, include_zero_value)
    keep = hold.purchase & np.isin(hold.user, born)
    offsets = hold.day[keep] - (calibration_end - _EPOCH).days  # 1 … length
    length = (holdout_end - calibration_end).days
    return np.cumsum(np.bincount(offsets - 1, minlength=length)[:length]).astype(np.int64)
