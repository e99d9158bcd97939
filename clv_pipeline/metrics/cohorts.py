"""Cohort retention and cumulative revenue (PRODUCT.md §4), in Polars.

Conventions, stated once:
- A cohort is the set of new installs (`is_new_install`) of one install date in the reporting
  time zone and one combination of the dims `app_id, media_source, campaign, country, platform`.
- Day index N of an event: `calendar` mode = calendar days between install date and event date
  (AppsFlyer); `24h` mode = whole 24-hour windows since the install time (Adjust). Events before
  the install (allowed up to the quarantine tolerance) count as day 0.
- Maturity: a cohort is mature for day N when install date + N ≤ observation end (`calendar`), or
  install date + N + 1 ≤ observation end (`24h`, so the whole window is observed). Immature values
  are null, never 0.
- Events after the observation end are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from clv_pipeline.ingestion.sources import PURCHASE_REVENUE_TYPES

DIMS: tuple[str, ...] = ("app_id", "media_source", "campaign", "country", "platform")
COHORT_KEYS: tuple[str, ...] = ("cohort_date", *DIMS)
USER_KEY: tuple[str, ...] = ("app_id", "user_id")
# A member's user key with their cohort keys (app_id appears once).
MEMBER_KEYS: tuple[str, ...] = ("user_id", *COHORT_KEYS)


def cohort_members(installs: pl.DataFrame, observation_end: date) -> pl.DataFrame:
    """New installs up to the observation end: user key, install time, cohort_date and dims."""
    return installs.filter(pl.col("is_new_install") & (pl.col("install_date") <= observation_end)).select(
        *USER_KEY,
        "install_time",
        pl.col("install_date").alias("cohort_date"),
        *[d for d in DIMS if d != "app_id"],
    )


def activity_events(sessions: pl.DataFrame, purchases: pl.DataFrame) -> pl.DataFrame:
    """Active = any session; for an app with no sessions delivered at all, any purchase (§4)."""
    session_events = sessions.select(*USER_KEY, pl.col("session_time").alias("event_time"), pl.col("session_date").alias("event_date"))
    apps_with_sessions = session_events.select("app_id").unique()
    purchase_events = purchases.join(apps_with_sessions, on="app_id", how="anti").select(
        *USER_KEY, "event_time", "event_date"
    )
    return pl.concat([session_events, purchase_events], how="vertical")


def with_day_index(events: pl.DataFrame, members: pl.DataFrame, mode: str) -> pl.DataFrame:
    """Events of cohort members with their cohort keys and `day_index` (see module docstring)."""
    joined = events.join(members, on=list(USER_KEY), how="inner")
    if mode == "calendar":
        index = (pl.col("event_date") - pl.col("cohort_date")).dt.total_days()
    elif mode == "24h":
        index = (pl.col("event_time") - pl.col("install_time")).dt.total_microseconds() // 86_400_000_000
    else:
        raise ValueError(f"unknown day index mode {mode!r} (calendar or 24h)")
    return joined.with_columns(day_index=pl.max_horizontal(index, pl.lit(0)).cast(pl.Int64))


def is_mature(day_n: pl.Expr, observation_end: date, mode: str) -> pl.Expr:
    extra = 1 if mode == "24h" else 0
    return pl.col("cohort_date") + pl.duration(days=day_n + extra) <= pl.lit(observation_end)


def cohort_cells(members: pl.DataFrame) -> pl.DataFrame:
    return members.group_by(COHORT_KEYS).agg(pl.len().cast(pl.Int64).alias("cohort_size"))


def _grid(cells: pl.DataFrame, days: Sequence[int]) -> pl.DataFrame:
    return cells.join(pl.DataFrame({"day_n": pl.Series(list(days), dtype=pl.Int64)}), how="cross")


def _join_cells(left: pl.DataFrame, right: pl.DataFrame, extra_keys: Sequence[str] = ("day_n",)) -> pl.DataFrame:
    return left.join(right, on=[*COHORT_KEYS, *extra_keys], how="left", nulls_equal=True)


def _cumulative(frame: pl.DataFrame, day_column: str, days: Sequence[int], *aggregations: pl.Expr, from_day_n: bool = False) -> pl.DataFrame:
    """Per cohort and day N in `days`: `aggregations` over the rows with `day_column` ≤ N (or ≥ N
    with `from_day_n`)."""
    day_frame = pl.DataFrame({"day_n": pl.Series(list(days), dtype=pl.Int64)})
    condition = pl.col(day_column) >= pl.col("day_n") if from_day_n else pl.col(day_column) <= pl.col("day_n")
    return frame.join(day_frame, how="cross").filter(condition).group_by(*COHORT_KEYS, "day_n").agg(*aggregations)


def cohort_retention(
    members: pl.DataFrame,
    activity: pl.DataFrame,
    days: Sequence[int],
    observation_end: date,
    mode: str = "calendar",
) -> pl.DataFrame:
    """Classic retention Dn = users active on day N ÷ cohort size; rolling retention Dn = users
    active on day N or later ÷ cohort size. Null when the cohort is immature for N."""
    events = with_day_index(activity.filter(pl.col("event_date") <= observation_end), members, mode)
    user_days = events.select(*MEMBER_KEYS, "day_index").unique()
    day_frame = pl.DataFrame({"day_n": pl.Series(list(days), dtype=pl.Int64)})
    classic = (
        user_days.join(day_frame, left_on="day_index", right_on="day_n", how="semi")
        .group_by(*COHORT_KEYS, pl.col("day_index").alias("day_n"))
        .agg(pl.len().cast(pl.Int64).alias("active_users"))
    )
    last_day = user_days.group_by(MEMBER_KEYS).agg(pl.col("day_index").max().alias("last_day"))
    rolling = _cumulative(last_day, "last_day", days, pl.len().cast(pl.Int64).alias("rolling_active_users"), from_day_n=True)
    grid = _join_cells(_join_cells(_grid(cohort_cells(members), days), classic), rolling)
    mature = is_mature(pl.col("day_n"), observation_end, mode)
    counts = [pl.when(mature).then(pl.col(c).fill_null(0)).otherwise(None).alias(c) for c in ("active_users", "rolling_active_users")]
    return (
        grid.with_columns(counts)
        .with_columns(
            retention=pl.col("active_users") / pl.col("cohort_size"),
            rolling_retention=pl.col("rolling_active_users") / pl.col("cohort_size"),
        )
        .select(*COHORT_KEYS, "day_n", "cohort_size", "active_users", "retention", "rolling_active_users", "rolling_retention")
        .sort(*COHORT_KEYS, "day_n", nulls_last=True)
    )


def is_payer_event() -> pl.Expr:
    """A purchase that makes a payer: an iap or subscription event with positive revenue (ad
    revenue is revenue, not a purchase)."""
    return pl.col("revenue_type").is_in(PURCHASE_REVENUE_TYPES) & (pl.col("revenue_gross_usd") > 0)


def first_payment_days(members: pl.DataFrame, purchases: pl.DataFrame, observation_end: date, mode: str = "calendar") -> pl.DataFrame:
    """Each paying member's first payer-event day index: user key, cohort keys, `first_pay_day`."""
    events = with_day_index(purchases.filter(is_payer_event() & (pl.col("event_date") <= observation_end)), members, mode)
    return events.group_by(MEMBER_KEYS).agg(pl.col("day_index").min().alias("first_pay_day"))


def cohort_revenue(
    members: pl.DataFrame,
    purchases: pl.DataFrame,
    days: Sequence[int],
    observation_end: date,
    mode: str = "calendar",
) -> pl.DataFrame:
    """Per cohort and day N: payers (users with a purchase in days 0..N), cumulative gross and net
    revenue of days 0..N (refunds included, all revenue types), null when immature."""
    events = with_day_index(purchases.filter(pl.col("event_date") <= observation_end), members, mode)
    daily = events.group_by(*COHORT_KEYS, "day_index").agg(
        pl.col("revenue_gross_usd").sum().alias("gross"), pl.col("revenue_net_usd").sum().alias("net")
    )
    first_pay = first_payment_days(members, purchases, observation_end, mode)
    revenue = _cumulative(daily, "day_index", days, pl.col("gross").sum().alias("revenue_gross"), pl.col("net").sum().alias("revenue_net"))
    payers = _cumulative(first_pay, "first_pay_day", days, pl.len().cast(pl.Int64).alias("payers"))
    grid = _join_cells(_join_cells(_grid(cohort_cells(members), days), revenue), payers)
    money = revenue.schema["revenue_gross"]
    mature = is_mature(pl.col("day_n"), observation_end, mode)
    return grid.with_columns(
        pl.when(mature).then(pl.col("payers").fill_null(0)).otherwise(None).alias("payers"),
        *[
            pl.when(mature).then(pl.col(c).fill_null(pl.lit(0).cast(money))).otherwise(None).alias(c)
            for c in ("revenue_gross", "revenue_net")
        ],
    ).sort(*COHORT_KEYS, "day_n", nulls_last=True)


def cohort_ltv(
    members: pl.DataFrame,
    purchases: pl.DataFrame,
    days: Sequence[int],
    observation_end: date,
    mode: str = "calendar",
) -> pl.DataFrame:
    """Cumulative LTV_N per install = revenue of days 0..N ÷ cohort size (gross and net);
    payer_rate_N = payers ÷ cohort size; ARPPU_N = net revenue ÷ payers."""
    revenue = cohort_revenue(members, purchases, days, observation_end, mode)
    size = pl.col("cohort_size")
    return revenue.with_columns(
        ltv_gross=pl.col("revenue_gross").cast(pl.Float64) / size,
        ltv_net=pl.col("revenue_net").cast(pl.Float64) / size,
        payer_rate=pl.col("payers") / size,
        arppu_net=pl.when(pl.col("payers") > 0).then(pl.col("revenue_net").cast(pl.Float64) / pl.col("payers")),
    ).select(
        *COHORT_KEYS,
        "day_n",
        "cohort_size",
        "payers",
        "revenue_gross",
        "revenue_net",
        "ltv_gross",
        "ltv_net",
        "payer_rate",
        "arppu_net",
    )


PERIODS: tuple[str, ...] = ("week", "month")
_TRUNCATE = {"week": "1w", "month": "1mo"}


def roll_up_cohorts(daily: pl.DataFrame, counts: Sequence[str], period: str, observation_end: date, mode: str = "calendar") -> pl.DataFrame:
    """Daily cohorts rolled up to ISO weeks (Monday start) or calendar months: the count columns
    are summed (each user belongs to one daily cohort, so counts and money add up). A period's
    value for day N is null unless every daily cohort of the period is mature for N — i.e. the
    last day of the period + N is observed — so a period never mixes mature and immature days.
    Returns cohort_period, cohort_start, dims, day_n, cohort_size and the summed `counts`."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, got {period!r}")
    start = pl.col("cohort_date").dt.truncate(_TRUNCATE[period])
    end = (start.dt.offset_by(_TRUNCATE[period]) - pl.duration(days=1)) if period == "week" else start.dt.month_end()
    keyed = daily.with_columns(cohort_start=start, _period_end=end)
    grouped = keyed.group_by("cohort_start", *DIMS, "day_n").agg(
        pl.col("_period_end").first(),
        pl.col("cohort_size").sum(),
        *[pl.col(c).sum().alias(c) for c in counts],
    )
    extra = 1 if mode == "24h" else 0
    mature = pl.col("_period_end") + pl.duration(days=pl.col("day_n") + extra) <= pl.lit(observation_end)
    return (
        grouped.with_columns([pl.when(mature).then(pl.col(c)).otherwise(None).alias(c) for c in counts])
        .with_columns(cohort_period=pl.lit(period))
        .select("cohort_period", "cohort_start", *DIMS, "day_n", "cohort_size", *counts)
        .sort("cohort_start", *DIMS, "day_n", nulls_last=True)
    )


def retention_by_period(retention: pl.DataFrame, observation_end: date, mode: str = "calendar") -> pl.DataFrame:
    """`cohort_retention` rolled up to weeks and months (see `roll_up_cohorts`)."""
    counts = ["active_users", "rolling_active_users"]
    frames = [roll_up_cohorts(retention, counts, p, observation_end, mode) for p in PERIODS]
    return pl.concat(frames).with_columns(
        retention=pl.col("active_users") / pl.col("cohort_size"),
        rolling_retention=pl.col("rolling_active_users") / pl.col("cohort_size"),
    ).select("cohort_period", "cohort_start", *DIMS, "day_n", "cohort_size", "active_users", "retention", "rolling_active_users", "rolling_retention")


def ltv_by_period(ltv: pl.DataFrame, observation_end: date, mode: str = "calendar") -> pl.DataFrame:
    """`cohort_ltv` rolled up to weeks and months (see `roll_up_cohorts`)."""
    counts = ["payers", "revenue_gross", "revenue_net"]
    frames = [roll_up_cohorts(ltv, counts, p, observation_end, mode) for p in PERIODS]
    size = pl.col("cohort_size")
    return pl.concat(frames).with_columns(
        ltv_gross=pl.col("revenue_gross").cast(pl.Float64) / size,
        ltv_net=pl.col("revenue_net").cast(pl.Float64) / size,
        payer_rate=pl.col("payers") / size,
        arppu_net=pl.when(pl.col("payers") > 0).then(pl.col("revenue_net").cast(pl.Float64) / pl.col("payers")),
    )
