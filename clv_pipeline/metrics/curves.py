"""Curves pooled over all cohorts of a group (app × media source): the payer-conversion curve
and the retention curve by day index, and the formula CLV built from them (PRODUCT.md §1, §5).

- Payer curve: Kaplan–Meier estimate of S(n) = P(no purchase by day index n), where each user's
  time is their first purchase day index, censored at their age (observation end − install date).
  Beyond the oldest observed age no more conversions are assumed (a stated, conservative choice).
- Retention curve: r(n) = users active on day n ÷ users whose cohort is mature for day n.
- Formula CLV per install = average net value per purchase × purchases per active user-day ×
  expected active days per install over the horizon (Σ r(n), n < horizon; beyond the observed days
  r(n) follows a power law c·n^−k fitted to the observed days n ≥ 1).
Pure Polars / numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

GROUP_KEYS: tuple[str, ...] = ("app_id", "media_source")


def user_ages(members: pl.DataFrame, observation_end: date) -> pl.Expr:
    return (pl.lit(observation_end) - pl.col("cohort_date")).dt.total_days()


def payer_survival(
    members: pl.DataFrame, first_payment: pl.DataFrame, observation_end: date, group_keys: Sequence[str] = GROUP_KEYS
) -> pl.DataFrame:
    """Kaplan–Meier S(n) per group for n = 0..max age: columns group keys, `day`, `survival`.

    `first_payment`: (app_id, user_id, first_pay_day) for users who paid."""
    users = members.select(*dict.fromkeys([*group_keys, "app_id", "user_id"]), age=user_ages(members, observation_end)).join(
        first_payment.select("app_id", "user_id", "first_pay_day"), on=["app_id", "user_id"], how="left"
    )
    users = users.with_columns(
        duration=pl.coalesce(pl.min_horizontal("first_pay_day", "age"), "age"),
        converted=pl.col("first_pay_day").is_not_null() & (pl.col("first_pay_day") <= pl.col("age")),
    )
    counts = users.group_by(*group_keys, "duration").agg(
        pl.len().alias("leaving"), pl.col("converted").sum().alias("conversions")
    )
    out: list[pl.DataFrame] = []
    for key, group in counts.group_by(list(group_keys), maintain_order=True):
        group = group.sort("duration")
        max_day = int(group["duration"].max())
        leaving = np.zeros(max_day + 1)
        conversions = np.zeros(max_day + 1)
        leaving[group["duration"].to_numpy()] = group["leaving"].to_numpy()
        conversions[group["duration"].to_numpy()] = group["conversions"].to_numpy()
        at_risk = leaving[::-1].cumsum()[::-1]
        hazard = np.divide(conversions, at_risk, out=np.zeros_like(conversions), where=at_risk > 0)
        survival = np.cumprod(1.0 - hazard)
        out.append(
            pl.DataFrame({"day": np.arange(max_day + 1, dtype=np.int64), "survival": survival}).with_columns(
                [pl.lit(v).alias(k) for k, v in zip(group_keys, key)]
            )
        )
    if not out:
        return pl.DataFrame(schema={**{k: pl.String for k in group_keys}, "day": pl.Int64, "survival": pl.Float64})
    return pl.concat(out).select(*group_keys, "day", "survival")


@dataclass(frozen=True)
class Conversion:
    probability: float  # P(first purchase in (age, age + horizon] | none by age)
    expected_delay_days: float  # E[days from now to that purchase | it happens in the window]


def conversion_within(survival: np.ndarray, age: int, horizon_days: int) -> Conversion:
    """From a survival curve S(0..m): probability of converting in (age, age+horizon] given no
    conversion by `age`, and the expected delay. S is held flat beyond m."""
    m = len(survival) - 1

    def s(n: int) -> float:
        return float(survival[min(max(n, 0), m)]) if m >= 0 else 1.0

    start = s(age)
    if start <= 0:
        return Conversion(0.0, 0.0)
    days = np.arange(age + 1, min(age + horizon_days, m) + 1)
    if len(days) == 0:
        return Conversion(0.0, 0.0)
    s_prev = np.array([s(d - 1) for d in days])
    s_now = np.array([s(d) for d in days])
    mass = s_prev - s_now
    total = mass.sum()
    if total <= 0:
        return Conversion(0.0, 0.0)
    return Conversion(float(total / start), float(((days - age) * mass).sum() / total))


def retention_curve(
    members: pl.DataFrame, user_days: pl.DataFrame, observation_end: date, group_keys: Sequence[str] = GROUP_KEYS
) -> pl.DataFrame:
    """r(n) per group for every observed n: `day`, `active_users`, `mature_users`, `retention`.

    `user_days`: distinct (app_id, user_id, day_index) of activity of cohort members."""
    ages = members.select(*dict.fromkeys([*group_keys, "app_id", "user_id"]), age=user_ages(members, observation_end))
    mature_counts = ages.group_by(*group_keys, "age").agg(pl.len().alias("n")).sort("age", descending=True)
    active = (
        user_days.join(ages, on=["app_id", "user_id"], how="inner")
        .filter(pl.col("day_index") <= pl.col("age"))
        .group_by(*group_keys, pl.col("day_index").alias("day"))
        .agg(pl.len().alias("active_users"))
    )
    out: list[pl.DataFrame] = []
    for key, group in mature_counts.group_by(list(group_keys), maintain_order=True):
        max_age = int(group["age"].max())
        n_at_age = np.zeros(max_age + 1)
        n_at_age[group["age"].to_numpy()] = group["n"].to_numpy()
        mature = n_at_age[::-1].cumsum()[::-1]  # users with age >= day
        out.append(
            pl.DataFrame({"day": np.arange(max_age + 1, dtype=np.int64), "mature_users": mature.astype(np.int64)}).with_columns(
                [pl.lit(v).alias(k) for k, v in zip(group_keys, key)]
            )
        )
    if not out:
        return pl.DataFrame(
            schema={**{k: pl.String for k in group_keys}, "day": pl.Int64, "mature_users": pl.Int64, "active_users": pl.Int64, "retention": pl.Float64}
        )
    curve = pl.concat(out).join(active, on=[*group_keys, "day"], how="left", nulls_equal=True)
    return curve.with_columns(pl.col("active_users").fill_null(0).cast(pl.Int64)).with_columns(
        retention=pl.col("active_users") / pl.col("mature_users")
    ).select(*group_keys, "day", "active_users", "mature_users", "retention").sort(*group_keys, "day")


def expected_active_days(days: np.ndarray, retention: np.ndarray, horizon_days: int) -> float:
    """Σ_{n < horizon} r(n): observed r where available, a power law fitted on observed n ≥ 1 with
    r > 0 beyond (nothing beyond when fewer than 3 such points)."""
    observed = dict(zip(days.tolist(), retention.tolist()))
    fit_mask = (days >= 1) & (retention > 0)
    power = None
    if fit_mask.sum() >= 3:
        slope, intercept = np.polyfit(np.log(days[fit_mask]), np.log(retention[fit_mask]), 1)
        power = (float(np.exp(intercept)), float(slope))
    total = 0.0
    for n in range(horizon_days):
        if n in observed:
            total += observed[n]
        elif power is not None and n >= 1:
            total += min(1.0, power[0] * n ** power[1])
    return total


def formula_clv(
    members: pl.DataFrame,
    purchases: pl.DataFrame,
    user_days: pl.DataFrame,
    retention: pl.DataFrame,
    observation_end: date,
    horizon_days: int,
    group_keys: Sequence[str] = GROUP_KEYS,
) -> pl.DataFrame:
    """Textbook CLV per install and group (PRODUCT.md §1): average net value per purchase ×
    purchases per active user-day × expected active days per install over the horizon.

    `purchases`: payer events (iap/subscription, positive revenue) of members up to the
    observation end; `user_days`: distinct (app_id, user_id, day_index) of activity; `retention`:
    `retention_curve` output. Ad revenue is not part of this formula."""
    keys = list(group_keys)
    member_groups = members.select(*dict.fromkeys([*keys, "app_id", "user_id"]))
    value = (
        purchases.join(member_groups, on=["app_id", "user_id"], how="inner")
        .group_by(keys)
        .agg(
            (pl.col("revenue_net_usd").sum().cast(pl.Float64) / pl.len()).alias("avg_net_value_per_purchase"),
            pl.len().alias("purchases"),
        )
    )
    active_days = user_days.join(member_groups, on=["app_id", "user_id"], how="inner").group_by(keys).agg(
        pl.len().alias("active_user_days")
    )
    lifetimes = [
        {**dict(zip(keys, key)), "expected_active_days": expected_active_days(g["day"].to_numpy(), g["retention"].to_numpy(), horizon_days)}
        for key, g in retention.group_by(keys, maintain_order=True)
    ]
    lifetime = pl.DataFrame(lifetimes, schema={**{k: pl.String for k in keys}, "expected_active_days": pl.Float64}, orient="row")
    return (
        member_groups.select(keys)
        .unique()
        .join(value, on=keys, how="left")
        .join(active_days, on=keys, how="left")
        .join(lifetime, on=keys, how="left")
        .with_columns(
            purchases_per_active_day=pl.when(pl.col("active_user_days") > 0)
            .then(pl.col("purchases").fill_null(0) / pl.col("active_user_days"))
            .otherwise(0.0)
        )
        .with_columns(
            formula_clv=pl.col("avg_net_value_per_purchase").fill_null(0.0)
            * pl.col("purchases_per_active_day")
            * pl.col("expected_active_days").fill_null(0.0)
        )
        .select(*keys, "avg_net_value_per_purchase", "purchases_per_active_day", "expected_active_days", "formula_clv")
        .sort(keys)
    )
