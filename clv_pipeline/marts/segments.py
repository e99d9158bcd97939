"""`user_segments` and `segment_summary` (PRODUCT.md §1 segmentation, §6). Pure Polars.

- value_tier: among payers (users with a purchase of positive revenue), ranked by lifetime value
  (revenue to date when no prediction exists), ties broken by app and user id: the top
  `whale_share` (default 1 %) are `whale`, the next `dolphin_share` (9 %) `dolphin`, the rest
  `minnow`; everyone else `non_payer`. Tier sizes are ceil(share × payers).
- rfm_segment: recency (days since last purchase; fewer = better), frequency (purchase days) and
  monetary (net revenue to date) scored 1–5 by quintile of their rank among payers (ties share a
  score), then named from the recency and frequency scores: champions, loyal, potential_loyalist,
  new, promising, need_attention, at_risk, cannot_lose, hibernating, lost; non-payers `non_payer`.
"""

from __future__ import annotations

import math

import polars as pl

from clv_pipeline.metrics.cohorts import is_payer_event
from clv_pipeline.metrics.numeric import exact_mean

TIERS = ("whale", "dolphin", "minnow", "non_payer")


def _score(column: str, descending: bool = False) -> pl.Expr:
    """1–5 quintile score of a column's average rank (ties share a score); 5 is best."""
    rank = pl.col(column).rank("average", descending=descending)
    return (((rank - 0.5) / pl.len()) * 5).floor().clip(0, 4).cast(pl.Int8) + 1


def rfm_segment_name(r: pl.Expr, f: pl.Expr) -> pl.Expr:
    return (
        pl.when((r >= 4) & (f >= 4)).then(pl.lit("champions"))
        .when((r >= 3) & (f >= 3)).then(pl.lit("loyal"))
        .when((r == 5) & (f == 1)).then(pl.lit("new"))
        .when((r >= 4) & (f <= 3)).then(pl.lit("potential_loyalist"))
        .when((r == 3) & (f <= 2)).then(pl.lit("need_attention"))
        .when((r <= 2) & (f == 5)).then(pl.lit("cannot_lose"))
        .when((r <= 2) & (f >= 3)).then(pl.lit("at_risk"))
        .when((r == 2) & (f <= 2)).then(pl.lit("hibernating"))
        .when(r == 1).then(pl.lit("lost"))
        .otherwise(pl.lit("promising"))
    )


def user_segments(user_clv: pl.DataFrame, purchases: pl.DataFrame, whale_share: float, dolphin_share: float) -> pl.DataFrame:
    """One row per user: user_id, app_id, value_tier, rfm_segment and the scores behind them."""
    payer_keys = purchases.filter(is_payer_event()).select("app_id", "user_id").unique()
    users = user_clv.join(payer_keys.with_columns(is_payer=pl.lit(True)), on=["app_id", "user_id"], how="left").with_columns(
        pl.col("is_payer").fill_null(False),
        _value=pl.coalesce(pl.col("lifetime_value"), pl.col("revenue_net_to_date").cast(pl.Float64)),
    )
    payers = users.filter(pl.col("is_payer")).sort(["_value", "app_id", "user_id"], descending=[True, False, False])
    n = payers.height
    n_whale = math.ceil(n * whale_share) if n else 0
    n_dolphin = math.ceil(n * (whale_share + dolphin_share)) - n_whale if n else 0
    payers = payers.with_row_index("_rank").with_columns(
        value_tier=pl.when(pl.col("_rank") < n_whale)
        .then(pl.lit("whale"))
        .when(pl.col("_rank") < n_whale + n_dolphin)
        .then(pl.lit("dolphin"))
        .otherwise(pl.lit("minnow"))
    )
    payers = payers.with_columns(
        _purchase_days=pl.col("frequency").fill_null(0) + 1,
        _monetary=pl.col("revenue_net_to_date").cast(pl.Float64),
    ).with_columns(
        r_score=_score("days_since_last_purchase", descending=True),
        f_score=_score("_purchase_days"),
        m_score=_score("_monetary"),
    )
    payers = payers.with_columns(rfm_segment=rfm_segment_name(pl.col("r_score"), pl.col("f_score")))
    non_payers = users.filter(~pl.col("is_payer")).with_columns(
        value_tier=pl.lit("non_payer"),
        rfm_segment=pl.lit("non_payer"),
        r_score=pl.lit(None, dtype=pl.Int8),
        f_score=pl.lit(None, dtype=pl.Int8),
        m_score=pl.lit(None, dtype=pl.Int8),
    )
    columns = ["user_id", "app_id", "value_tier", "rfm_segment", "r_score", "f_score", "m_score", "media_source"]
    return pl.concat([payers.select(columns), non_payers.select(columns)]).sort("app_id", "user_id")


def segment_summary(segments: pl.DataFrame, user_clv: pl.DataFrame, purchases: pl.DataFrame, top_n: int = 3) -> pl.DataFrame:
    """value_tier × media_source: users, net revenue to date and its share of all net revenue,
    mean lifetime value, mean P(alive) (payers only; null for non-payers), and the products with
    the most net revenue in the group (`top_products`, 'sku (share of the group's product revenue)')."""
    users = segments.select("app_id", "user_id", "value_tier", "media_source").join(
        user_clv.select("app_id", "user_id", "revenue_net_to_date", "lifetime_value", "p_alive"), on=["app_id", "user_id"]
    )
    total = float(users["revenue_net_to_date"].sum() or 0)
    summary = users.group_by("value_tier", "media_source").agg(
        pl.len().cast(pl.Int64).alias("users"),
        pl.col("revenue_net_to_date").sum().alias("revenue_net"),
        exact_mean(pl.col("lifetime_value")).alias("mean_lifetime_value"),
        exact_mean(pl.col("p_alive")).alias("mean_p_alive"),
    )
    summary = summary.with_columns(
        revenue_share=pl.when(pl.lit(total) != 0).then(pl.col("revenue_net").cast(pl.Float64) / pl.lit(total)).otherwise(None)
    )
    product_revenue = (
        group_product_revenue(purchases, users)
        .with_columns(share=_share(pl.col("net"), pl.col("net").sum().over("value_tier", "media_source")))
        .sort(["value_tier", "media_source", "net", "product_id"], descending=[False, False, True, False])
        .group_by("value_tier", "media_source", maintain_order=True)
        .head(top_n)
        .group_by("value_tier", "media_source", maintain_order=True)
        .agg(
            pl.format("{} ({}%)", pl.col("product_id"), (pl.col("share") * 100).round(1)).str.join(", ").alias("top_products")
        )
    )
    tier_order = pl.col("value_tier").replace_strict({t: i for i, t in enumerate(TIERS)}, return_dtype=pl.Int8)
    return (
        summary.join(product_revenue, on=["value_tier", "media_source"], how="left")
        .join(distinguishing_products(purchases, users, top_n), on=["value_tier", "media_source"], how="left")
        .sort(tier_order, "media_source")
        .select(
            "value_tier",
            "media_source",
            "users",
            "revenue_net",
            pl.col("revenue_share").round(6),
            pl.col("mean_lifetime_value").round(6),
            pl.col("mean_p_alive").round(6),
            "top_products",
            "distinguishing_products",
        )
    )


MIN_GROUP_SHARE = 0.05


def group_product_revenue(purchases: pl.DataFrame, users: pl.DataFrame) -> pl.DataFrame:
    """Net revenue per value tier × media source × product (products with positive net only).
    `net` stays an exact decimal: float sums would depend on row order, and so would shares,
    their rounding and the ranking of ties."""
    return (
        purchases.filter(pl.col("product_id").is_not_null())
        .join(users.select("app_id", "user_id", "value_tier", "media_source"), on=["app_id", "user_id"], how="inner")
        .group_by("value_tier", "media_source", "product_id")
        .agg(pl.col("revenue_net_usd").sum().alias("net"))
        .filter(pl.col("net") > 0)
    )


def _share(amount: pl.Expr, total: pl.Expr) -> pl.Expr:
    """amount / total as a float, both summed exactly before the division."""
    return amount.cast(pl.Float64) / total.cast(pl.Float64)


def distinguishing_products(purchases: pl.DataFrame, users: pl.DataFrame, top_n: int = 3) -> pl.DataFrame:
    """The products that set a group apart: the highest ratio of a product's share of the group's
    net product revenue to its share of all users' net product revenue, among products with at
    least 5 % of the group's revenue. 'sku (41.2% here vs 12.0% overall)'."""
    revenue = group_product_revenue(purchases, users)
    overall = revenue.group_by("product_id").agg(pl.col("net").sum().alias("all_net"))
    overall = overall.with_columns(share_all=_share(pl.col("all_net"), pl.col("all_net").sum()))
    shares = (
        revenue.with_columns(share=_share(pl.col("net"), pl.col("net").sum().over("value_tier", "media_source")))
        .join(overall.select("product_id", "share_all"), on="product_id")
        .filter(pl.col("share") >= MIN_GROUP_SHARE)
        .with_columns(lift=pl.col("share") / pl.col("share_all"))
        .sort(["value_tier", "media_source", "lift", "product_id"], descending=[False, False, True, False])
        .group_by("value_tier", "media_source", maintain_order=True)
        .head(top_n)
    )
    return shares.group_by("value_tier", "media_source", maintain_order=True).agg(
        pl.format(
            "{} ({}% here vs {}% overall)", pl.col("product_id"), (pl.col("share") * 100).round(1), (pl.col("share_all") * 100).round(1)
        )
        .str.join(", ")
        .alias("distinguishing_products")
    )
