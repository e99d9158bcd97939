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
#: they do not depend on the order of the terms (a Polars group_by fixes no summation order, and
#: float sums would differ in the last bits from run to run), and a purchase refunded the same
#: day nets to exactly 0 (9.99 − 9.99 in floats need not).
MICROS = 1_000_000


def _micros(expr: pl.Expr) -> pl.Expr:
    return (expr.cast(pl.Float64) * MICROS).round().cast(pl.Int64)


def _from_micros(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64) / MICROS


def _daily(transactions: pl.DataFrame, start: dt.date | None, end: dt.date, include_zero_value: bool) -> pl.LazyFrame:
    """Net value per (user, day), in micros (``day_micros``, Int64), for events with
    start < event_date <= end, and the purchase flag ``is_purchase``: net day value > 0, or
    (``include_zero_value`` and every event of the day has value 0, i.e. free purchases only).
    """
    cond = pl.col("event_date") <= end
    if start is not None:
        cond = cond & (pl.col("event_date") > start)
    daily = (
        transactions.lazy()
        .select("user_id", "event_date", _micros(pl.col("value")).alias("micros"))
        .filter(cond)
        .group_by("user_id", "event_date")
    )
    day_micros = pl.col("micros").sum().alias("day_micros")
    if include_zero_value:
        return daily.agg(day_micros, (pl.col("micros") == 0).all().alias("_all_zero")).with_columns(
            ((pl.col("day_micros") > 0) | pl.col("_all_zero")).alias("is_purchase")
        )
    return daily.agg(day_micros).with_columns((pl.col("day_micros") > 0).alias("is_purchase"))


def _rfm_lazy(
    transactions: pl.DataFrame, observation_end: dt.date, time_unit: TimeUnit, include_zero_value: bool
) -> pl.LazyFrame:
    days_per_unit = unit_days(time_unit)
    purchase = pl.col("is_purchase")
    p_dates = pl.col("event_date").filter(purchase)
    first_day = purchase & (pl.col("event_date") == p_dates.min())
    per_user = (
        _daily(transactions, None, observation_end, include_zero_value)
        .group_by("user_id")
        .agg(
            p_dates.min().alias("first_purchase_date"),
            p_dates.max().alias("last_purchase_date"),
            purchase.sum().cast(pl.Int64).alias("n_purchase_days"),
            pl.col("day_micros").filter(purchase).sum().alias("_purchase_micros"),
            pl.col("day_micros").filter(first_day).sum().alias("_first_micros"),
            pl.col("day_micros").sum().alias("_total_micros"),
        )
        .filter(pl.col("n_purchase_days") > 0)
    )
    frequency = pl.col("n_purchase_days") - 1
    return per_user.select(
        "user_id",
        "first_purchase_date",
        "last_purchase_date",
        frequency.alias("frequency"),
        (
            (pl.col("last_purchase_date") - pl.col("first_purchase_date")).dt.total_days().cast(pl.Float64)
            / days_per_unit
        ).alias("recency"),
        (
            (pl.lit(observation_end) - pl.col("first_purchase_date")).dt.total_days().cast(pl.Float64) / days_per_unit
        ).alias("t"),
        pl.when(frequency > 0)
        .then(_from_micros(pl.col("_purchase_micros") - pl.col("_first_micros")) / frequency)
        .otherwise(0.0)
        .alias("monetary_value"),
        _from_micros(pl.col("_first_micros")).alias("first_purchase_value"),
        _from_micros(pl.col("_total_micros")).alias("total_value"),
    )


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
    One lazy Polars query: group by (user, day), then by user.
    """
    _check_transactions(transactions)
    unit_days(time_unit)
    return _rfm_lazy(transactions, observation_end, time_unit, include_zero_value).sort("user_id").collect()


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
    purchase = pl.col("is_purchase")
    holdout = (
        _daily(transactions, calibration_end, holdout_end, include_zero_value)
        .group_by("user_id")
        .agg(
            purchase.sum().cast(pl.Int64).alias("holdout_frequency"),
            pl.col("day_micros").sum().alias("_holdout_micros"),
            pl.col("day_micros").filter(purchase).sum().alias("_holdout_purchase_micros"),
        )
        .select(
            "user_id",
            "holdout_frequency",
            _from_micros(pl.col("_holdout_micros")).alias("holdout_value"),
            pl.when(pl.col("holdout_frequency") > 0)
            .then(_from_micros(pl.col("_holdout_purchase_micros")) / pl.col("holdout_frequency"))
            .otherwise(0.0)
            .alias("holdout_monetary_value"),
        )
    )
    duration = (holdout_end - calibration_end).days / days_per_unit
    return (
        _rfm_lazy(transactions, calibration_end, time_unit, include_zero_value)
        .join(holdout, on="user_id", how="left")
        .with_columns(
            pl.col("holdout_frequency").fill_null(0),
            pl.col("holdout_value").fill_null(0.0),
            pl.col("holdout_monetary_value").fill_null(0.0),
            pl.lit(duration, dtype=pl.Float64).alias("holdout_duration"),
        )
        .sort("user_id")
        .collect()
    )
