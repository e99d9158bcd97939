"""Seeded generator of a realistic sample landing folder, with a ground truth to test against.

`generate_sample(landing_dir)` simulates a small mobile-game business (two apps on iOS and
Android, eight media sources including organic, nineteen countries, thirteen currencies) and writes
what an MMP and the ad networks would deliver, in the landing layout of PRODUCT.md §2:

    <landing>/<source>/<YYYY-MM-DD delivery date>/<file>

with sources `installs` (.csv), `purchases` (.csv.gz), `sessions` (.parquet), `ad_spend` (.csv,
one file per network) and `fx_rates` (.jsonl). Events of day D are delivered in folder D+1.

What is simulated (constants in `clv_pipeline.sample_data.catalog`):

- installs: ~1000·scale a day with a weekly pattern (weekend lift), a country mix, an iOS share by
  country, and a media-source mix that depends on platform and country tier;
- activity: day 0 is always active (first session = install time); day n ≥ 1 is active with
  probability min(1, engagement × channel quality × 0.35·n^-0.5·exp(-n/80)), engagement ~
  Gamma(mean 1);
  1 + Poisson sessions per active day;
- payers: 2–5 % of installs (by channel, country and engagement) make a first purchase, mostly on
  days 0–7 after install with a long tail; from that first purchase on (the BTYD clock, PRODUCT.md
  §5) their purchase days follow BG/NBD with known parameters (time unit days) and the gross USD
  value of each purchase day follows Gamma-Gamma with known parameters
  (`clv_pipeline.models.simulate.simulate_transactions`). Same-day purchases are merged into one
  purchase day whose value is the first draw, so per-day values stay Gamma-Gamma distributed.
  Observation ends at end_date;
- each purchase day is one IAP event in the local currency of the user's country
  (USD / usd_per_unit of that day, rounded to the currency's minor units), at a time inside a
  session of that day (a session is added when the user had none); ~1 % are refunded 2–5 days
  later (negative event, same product and currency); the runner app also earns small USD `ad`
  revenue events in a quarter of its sessions;
- fx_rates: a daily random walk per currency from realistic levels (USD = 1);
- ad_spend: per (date, app, paid source, campaign, country, platform) spend = installs × CPI
  (channel × country × platform) × lognormal noise, with impressions/clicks/installs; one network
  reports in EUR, one without country (empty = all countries), and a few rows have spend but no
  installs.

Dirt, each counted exactly in the ground truth: exact duplicate rows (same file) in purchases and
sessions, rows with an empty user_id in installs and purchases, late deliveries (for two event days
30 % of purchases and sessions arrive 3 folders later), restated spend (every 7th cost delivery
re-sends the spend of 7 days earlier with changed amounts — the later delivery is the truth), and
purchases without event_id (the pipeline then hashes one).

The ground truth (`<landing>/ground_truth.json`, also returned) holds the true model parameters,
per-source row counts (`rows_written`, `exact_duplicate_rows`, `null_user_id_rows`, `late_rows`,
`restated_keys`, `expected_clean_rows`), totals (installs, payers, revenue and spend in USD), the
generator's own classic retention at D1/D7/D30 and the lists of apps, channels, countries and
currencies. The same seed and arguments give byte-identical files.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from clv_pipeline.ingestion.sources import ORGANIC, SOURCES
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.gamma_gamma import GammaGammaParams
from clv_pipeline.models.simulate import simulate_transactions
from clv_pipeline.sample_data import catalog as cat
from clv_pipeline.sample_data.catalog import DEFAULT_END_DATE

__all__ = ["DEFAULT_END_DATE", "GENERATED_SOURCES", "GROUND_TRUTH_FILE", "generate_sample"]

GROUND_TRUTH_FILE = "ground_truth.json"
GENERATED_SOURCES: tuple[str, ...] = ("installs", "purchases", "ad_spend", "sessions", "fx_rates")
SECONDS_PER_DAY = 86_400
LAST_SECOND_OF_DAY = SECONDS_PER_DAY - 1
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
RETENTION_DAYS = (1, 7, 30)
MIN_DAYS = 14

_APP_IDS = [a.app_id for a in cat.APPS]
_SOURCE_NAMES = [s.name for s in cat.MEDIA_SOURCES]
_COUNTRY_CODES = [c.iso2 for c in cat.COUNTRIES]
_CURRENCY_CODES = [c.code for c in cat.CURRENCIES]
_ORGANIC_INDEX = _SOURCE_NAMES.index(ORGANIC)


# ==============================================================================================
# simulated tables (numpy arrays; day = day index from start_date, second = second of that day)


@dataclass
class _Calendar:
    start_date: date
    days: int

    @property
    def start_epoch_second(self) -> int:
        return (self.start_date - date(1970, 1, 1)).days * SECONDS_PER_DAY

    def day_date(self, day: int) -> date:
        return self.start_date + timedelta(days=int(day))

    def epoch_seconds(self, day: np.ndarray, second: np.ndarray) -> np.ndarray:
        return self.start_epoch_second + day.astype(np.int64) * SECONDS_PER_DAY + second.astype(np.int64)


@dataclass
class _Installs:
    user_id: pl.Series  # AppsFlyer-like ids "<install ms>-<19 digits>"
    day: np.ndarray
    second: np.ndarray
    app: np.ndarray  # index into cat.APPS
    country: np.ndarray  # index into cat.COUNTRIES
    platform: np.ndarray  # index into cat.PLATFORMS
    source: np.ndarray  # index into cat.MEDIA_SOURCES
    campaign: pl.Series  # campaign name, null for organic
    engagement: np.ndarray

    def __len__(self) -> int:
        return len(self.day)


@dataclass
class _Sessions:
    user: np.ndarray  # install index
    day: np.ndarray
    second: np.ndarray


@dataclass
class _RevenueEvents:
    """Purchases source rows before formatting. kind: 0 = iap, 1 = refund, 2 = ad."""

    user: np.ndarray
    day: np.ndarray
    second: np.ndarray
    minor_units: np.ndarray  # revenue in minor units of `currency` (negative for refunds)
    currency: np.ndarray  # index into cat.CURRENCIES
    product_id: pl.Series
    kind: np.ndarray


KIND_IAP, KIND_REFUND, KIND_AD = 0, 1, 2


# ==============================================================================================
# simulation steps


def _simulate_fx_rates(rng: np.random.Generator, days: int) -> np.ndarray:
    """usd_per_unit[currency, day]: a daily log random walk from the catalogue levels, rounded to
    6 significant digits (the written value is the one used for every conversion)."""
    levels = np.array([c.usd_per_unit for c in cat.CURRENCIES])
    volatility = np.array([c.daily_volatility for c in cat.CURRENCIES])
    steps = rng.normal(0.0, 1.0, (len(levels), days)) * volatility[:, None]
    steps[:, 0] = 0.0
    rates = levels[:, None] * np.exp(np.cumsum(steps, axis=1))
    magnitude = np.floor(np.log10(rates))
    factor = 10.0 ** (5 - magnitude)
    return np.round(rates * factor) / factor


def _campaign_names() -> tuple[list[str | None], np.ndarray]:
    """All campaign names and a lookup [app, source, campaign slot] → index into that list."""
    names: list[str | None] = [None]
    max_slots = max(len(s.campaigns) for s in cat.MEDIA_SOURCES)
    lookup = np.zeros((len(cat.APPS), len(cat.MEDIA_SOURCES), max(max_slots, 1)), dtype=np.int64)
    for a, app in enumerate(cat.APPS):
        for s, source in enumerate(cat.MEDIA_SOURCES):
            for k, suffix in enumerate(source.campaigns):
                lookup[a, s, k] = len(names)
                names.append(f"{app.short_name}_{suffix}")
    return names, lookup


def _source_probabilities() -> np.ndarray:
    """P(media source | country, platform) as an array [country, platform, source]."""
    base = np.array([s.install_weight for s in cat.MEDIA_SOURCES])
    probabilities = np.zeros((len(cat.COUNTRIES), len(cat.PLATFORMS), len(base)))
    for c, country in enumerate(cat.COUNTRIES):
        tilt = cat.TIER_CHANNEL_TILT.get(country.tier, {})
        for p, platform in enumerate(cat.PLATFORMS):
            weights = base * np.array([tilt.get(s.name, 1.0) for s in cat.MEDIA_SOURCES])
            if platform != "ios":
                weights *= np.array([0.0 if s.ios_only else 1.0 for s in cat.MEDIA_SOURCES])
            probabilities[c, p] = weights / weights.sum()
    return probabilities


def _draw_categorical(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One draw per row of a [n, k] probability matrix (vectorised inverse CDF)."""
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative[:, -1] = 1.0
    u = rng.random(len(probabilities))
    return (u[:, None] > cumulative).sum(axis=1)


def _simulate_installs(rng: np.random.Generator, calendar: _Calendar, scale: float) -> _Installs:
    """Daily install counts with a weekly pattern, then each install's attributes."""
    weekday_factor = np.array(cat.WEEKDAY_INSTALL_FACTOR)
    weekday_factor /= weekday_factor.mean()
    weekdays = np.array([calendar.day_date(d).weekday() for d in range(calendar.days)])
    expected = 1000.0 * scale * weekday_factor[weekdays] * rng.lognormal(0.0, 0.05, calendar.days)
    per_day = rng.poisson(expected)
    n = int(per_day.sum())
    day = np.repeat(np.arange(calendar.days), per_day)
    second = rng.integers(0, SECONDS_PER_DAY, n)
    order = np.lexsort((second, day))
    day, second = day[order], second[order]

    country_weights = np.array([c.install_weight for c in cat.COUNTRIES])
    country = rng.choice(len(cat.COUNTRIES), n, p=country_weights / country_weights.sum())
    ios_share = np.array([c.ios_share for c in cat.COUNTRIES])
    platform = np.where(rng.random(n) < ios_share[country], 0, 1)  # 0 = ios, 1 = android
    app_share = np.array([a.install_share for a in cat.APPS])
    app = rng.choice(len(cat.APPS), n, p=app_share / app_share.sum())
    source = _draw_categorical(rng, _source_probabilities()[country, platform])

    campaign_names, campaign_lookup = _campaign_names()
    slots = np.array([max(len(s.campaigns), 1) for s in cat.MEDIA_SOURCES])
    # campaigns of a network get unequal shares: slot k has weight 1/(k+1)
    slot = np.floor(slots[source] * rng.random(n) ** 1.6).astype(np.int64)
    campaign_index = np.where(source == _ORGANIC_INDEX, 0, campaign_lookup[app, source, slot])
    campaign = pl.Series("campaign", campaign_names, dtype=pl.String).gather(campaign_index)

    engagement = rng.gamma(cat.ENGAGEMENT_SHAPE, 1.0 / cat.ENGAGEMENT_SHAPE, n)
    install_ms = calendar.epoch_seconds(day, second) * 1000 + rng.integers(0, 1000, n)
    random_part = rng.integers(10**18, 9 * 10**18, n)
    user_id = pl.Series(install_ms).cast(pl.String) + "-" + pl.Series(random_part).cast(pl.String)
    if user_id.n_unique() != n:  # astronomically unlikely; keeps the data valid regardless
        raise RuntimeError("generated user ids collide; use another seed")
    return _Installs(user_id.alias("user_id"), day, second, app, country, platform, source, campaign, engagement)


USER_DAYS_PER_CHUNK = 4_000_000


def _active_days_after_install(
    rng: np.random.Generator, activity: np.ndarray, remaining: np.ndarray, day_curve: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(user, day number n ≥ 1) of every active day: one Bernoulli draw per observable user-day
    with P = min(1, activity[user] × day_curve[n-1]). Users are processed in chunks of about
    USER_DAYS_PER_CHUNK user-days so memory stays bounded for long or large samples."""
    users: list[np.ndarray] = []
    day_numbers: list[np.ndarray] = []
    cumulative = np.cumsum(remaining)
    start = 0
    while start < len(remaining):
        done_before = cumulative[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cumulative, done_before + USER_DAYS_PER_CHUNK, side="right")))
        chunk_remaining = remaining[start:stop]
        total = int(chunk_remaining.sum())
        owner = np.repeat(np.arange(start, stop, dtype=np.int64), chunk_remaining)
        first_row = np.repeat(np.cumsum(chunk_remaining) - chunk_remaining, chunk_remaining)
        day_n = np.arange(total, dtype=np.int64) - first_row + 1
        probability = np.minimum(np.float32(1.0), activity[owner] * day_curve[day_n - 1])
        active = rng.random(total, dtype=np.float32) < probability
        users.append(owner[active])
        day_numbers.append(day_n[active])
        start = stop
    if not users:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(users), np.concatenate(day_numbers)


def _simulate_sessions(rng: np.random.Generator, installs: _Installs, days: int) -> _Sessions:
    """Active days (day 0 always; day n with the decaying probability) and 1+ sessions on each."""
    n_users = len(installs)
    quality = np.array([s.engagement_quality for s in cat.MEDIA_SOURCES])[installs.source]
    activity = (installs.engagement * quality * cat.RETENTION_SCALE).astype(np.float32)
    day_numbers = np.arange(1, days + 1, dtype=np.float64)
    day_curve = (day_numbers ** -cat.RETENTION_EXPONENT
                 * np.exp(-day_numbers / cat.RETENTION_TAPER_DAYS)).astype(np.float32)
    remaining = (days - 1 - installs.day).astype(np.int64)  # observable days after the install day
    later_user, later_n = _active_days_after_install(rng, activity, remaining, day_curve)
    active_user = np.concatenate((np.arange(n_users, dtype=np.int64), later_user))
    active_n = np.concatenate((np.zeros(n_users, dtype=np.int64), later_n))
    extra = rng.poisson(cat.EXTRA_SESSIONS_MEAN * np.sqrt(installs.engagement[active_user]))
    per_day = 1 + extra
    user = np.repeat(active_user, per_day)
    n = np.repeat(active_n, per_day)
    rank = np.arange(len(user)) - np.repeat(np.cumsum(per_day) - per_day, per_day)
    install_second = installs.second[user]
    earliest = np.where(n == 0, install_second, 0)
    second = earliest + np.floor(rng.random(len(user)) * (SECONDS_PER_DAY - earliest)).astype(np.int64)
    second = np.where((n == 0) & (rank == 0), install_second, second)  # first session = install
    return _Sessions(user=user.astype(np.int64), day=(installs.day[user] + n).astype(np.int64), second=second)


def _simulate_first_purchase_days(rng: np.random.Generator, installs: _Installs, days: int) -> np.ndarray:
    """Day index of each user's first purchase, or -1 for non-payers and for first purchases that
    would fall after end_date (observation ends there)."""
    n = len(installs)
    source_multiplier = np.array([s.payer_multiplier for s in cat.MEDIA_SOURCES])[installs.source]
    country_multiplier = np.array([c.payer_multiplier for c in cat.COUNTRIES])[installs.country]
    engagement_multiplier = 0.4 + 0.6 * installs.engagement
    probability = np.minimum(
        cat.MAX_PAYER_PROBABILITY,
        cat.BASE_PAYER_PROBABILITY * source_multiplier * country_multiplier * engagement_multiplier,
    )
    becomes_payer = rng.random(n) < probability
    later = rng.random(n) >= cat.FIRST_PURCHASE_DAY0_SHARE
    tail = rng.lognormal(np.log(cat.FIRST_PURCHASE_DELAY_MEDIAN_DAYS), cat.FIRST_PURCHASE_DELAY_SIGMA, n)
    delay = np.where(later, 1 + np.floor(tail), 0).astype(np.int64)
    first_day = installs.day + delay
    return np.where(becomes_payer & (first_day <= days - 1), first_day, -1)


def _simulate_purchase_days(
    rng: np.random.Generator, calendar: _Calendar, first_day: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, day, gross USD value) of every purchase day of the payers, from BG/NBD + Gamma-Gamma.

    Same-day transactions are merged into one purchase day valued at the first draw."""
    payers = np.flatnonzero(first_day >= 0)
    if len(payers) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    width = len(str(len(first_day)))
    births = pl.Series("birth", first_day[payers].astype(np.int64) + (calendar.start_date - date(1970, 1, 1)).days)
    transactions = simulate_transactions(
        BetaGeoParams(**cat.TRUE_BG_NBD),
        GammaGammaParams(**cat.TRUE_GAMMA_GAMMA),
        births.cast(pl.Int32).cast(pl.Date),
        calendar.day_date(calendar.days - 1),
        rng,
        user_ids=[f"{u:0{width}d}" for u in payers],
    )
    purchase_days = (
        transactions.with_row_index("order")
        .sort("user_id", "event_date", "order")
        .unique(["user_id", "event_date"], keep="first", maintain_order=True)
    )
    user = purchase_days["user_id"].cast(pl.Int64).to_numpy()
    day = (purchase_days["event_date"].cast(pl.Int32).to_numpy().astype(np.int64)
           - (calendar.start_date - date(1970, 1, 1)).days)
    return user, day, purchase_days["value"].to_numpy().astype(np.float64)


def _place_in_sessions(
    rng: np.random.Generator, installs: _Installs, sessions: _Sessions, user: np.ndarray, day: np.ndarray
) -> tuple[np.ndarray, _Sessions]:
    """Second of day for purchases (user, day): a few minutes after the user's first session that
    day; when the user had no session that day a session is added. Returns (seconds, sessions)."""
    first_session = (
        pl.DataFrame({"user": sessions.user, "day": sessions.day, "second": sessions.second})
        .group_by("user", "day")
        .agg(pl.col("second").min())
    )
    wanted = pl.DataFrame({"user": user, "day": day}).with_row_index("row")
    joined = wanted.join(first_session, on=["user", "day"], how="left").sort("row")
    session_second = joined["second"].to_numpy()
    missing = joined["second"].is_null().to_numpy()
    earliest = np.where(day == installs.day[user], installs.second[user], 0)
    new_second = earliest + np.floor(rng.random(len(user)) * (SECONDS_PER_DAY - 60 - earliest).clip(1)).astype(np.int64)
    session_second = np.where(missing, new_second, np.nan_to_num(session_second, nan=0)).astype(np.int64)
    delay = rng.integers(20, 1200, len(user))
    event_second = np.minimum(session_second + delay, LAST_SECOND_OF_DAY)
    added = _Sessions(user=user[missing], day=day[missing], second=session_second[missing])
    combined = _Sessions(
        user=np.concatenate((sessions.user, added.user)),
        day=np.concatenate((sessions.day, added.day)),
        second=np.concatenate((sessions.second, added.second)),
    )
    return event_second, combined


def _sku_names(installs: _Installs, user: np.ndarray, usd: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """product_id of the SKU whose price tier is nearest (in log) to the purchase value."""
    tiers = np.array(cat.SKU_PRICE_TIERS_USD)
    tier = np.abs(np.log(usd[:, None]) - np.log(tiers[None, :])).argmin(axis=1)
    items_per_app = np.array([len(cat.SKU_ITEMS[app.short_name]) for app in cat.APPS])
    names: list[str] = []
    lookup = np.zeros((len(cat.APPS), int(items_per_app.max()), len(tiers)), dtype=np.int64)
    for a, app in enumerate(cat.APPS):
        for i, item in enumerate(cat.SKU_ITEMS[app.short_name]):
            for t, price in enumerate(tiers):
                lookup[a, i, t] = len(names)
                names.append(f"{app.short_name}.{item}_{int(round(price * 100))}")
    app = installs.app[user]
    item = np.floor(rng.random(len(user)) * items_per_app[app]).astype(np.int64)
    return pl.Series("product_id", names, dtype=pl.String).gather(lookup[app, item, tier])


def _simulate_revenue_events(
    rng: np.random.Generator, calendar: _Calendar, installs: _Installs, sessions: _Sessions, fx: np.ndarray
) -> tuple[_RevenueEvents, _Sessions]:
    """IAP purchase days (+ refunds) and ad revenue events. Returns the events and the sessions
    including the ones added so that every purchase falls in a session."""
    days = calendar.days
    first_day = _simulate_first_purchase_days(rng, installs, days)
    iap_user, iap_day, iap_usd = _simulate_purchase_days(rng, calendar, first_day)
    iap_second, sessions = _place_in_sessions(rng, installs, sessions, iap_user, iap_day)

    currency_of_country = np.array([_CURRENCY_CODES.index(c.currency) for c in cat.COUNTRIES])
    minor_units = np.array([c.minor_units for c in cat.CURRENCIES])
    iap_currency = currency_of_country[installs.country[iap_user]]
    iap_units = np.maximum(1, np.round(iap_usd / fx[iap_currency, iap_day] * 10.0 ** minor_units[iap_currency]))
    iap_units = iap_units.astype(np.int64)
    iap_product = _sku_names(installs, iap_user, iap_usd, rng)

    refunded = rng.random(len(iap_user)) < cat.REFUND_SHARE
    refund_day = iap_day + rng.integers(cat.REFUND_DELAY_DAYS[0], cat.REFUND_DELAY_DAYS[1] + 1, len(iap_user))
    refunded &= refund_day <= days - 1
    refund_second = rng.integers(0, SECONDS_PER_DAY, len(iap_user))

    ad_apps = np.array([a.earns_ad_revenue for a in cat.APPS])
    shows_ad = ad_apps[installs.app[sessions.user]] & (rng.random(len(sessions.user)) < cat.AD_EVENT_SESSION_SHARE)
    ad_user, ad_day = sessions.user[shows_ad], sessions.day[shows_ad]
    ad_second = np.minimum(sessions.second[shows_ad] + rng.integers(5, 900, len(ad_user)), LAST_SECOND_OF_DAY)
    ad_cents = np.maximum(1, np.round(rng.lognormal(np.log(cat.AD_REVENUE_MEDIAN_USD * 100), cat.AD_REVENUE_SIGMA,
                                                    len(ad_user)))).astype(np.int64)
    ad_product = pl.Series("product_id", list(cat.AD_PRODUCTS), dtype=pl.String).gather(
        rng.integers(0, len(cat.AD_PRODUCTS), len(ad_user)))

    usd_index = _CURRENCY_CODES.index("USD")
    events = _RevenueEvents(
        user=np.concatenate((iap_user, iap_user[refunded], ad_user)),
        day=np.concatenate((iap_day, refund_day[refunded], ad_day)),
        second=np.concatenate((iap_second, refund_second[refunded], ad_second)),
        minor_units=np.concatenate((iap_units, -iap_units[refunded], ad_cents)),
        currency=np.concatenate((iap_currency, iap_currency[refunded], np.full(len(ad_user), usd_index))),
        product_id=pl.concat([iap_product, iap_product.filter(pl.Series(refunded)), ad_product]),
        kind=np.concatenate((np.full(len(iap_user), KIND_IAP), np.full(int(refunded.sum()), KIND_REFUND),
                             np.full(len(ad_user), KIND_AD))),
    )
    return events, sessions


def _classic_retention(installs: _Installs, sessions: _Sessions, days: int) -> dict[str, float | None]:
    """Users active on day N ÷ cohort size, over cohorts mature for N (install day + N ≤ last day)."""
    day_n = sessions.day - installs.day[sessions.user]
    result: dict[str, float | None] = {}
    for n in RETENTION_DAYS:
        mature = installs.day + n <= days - 1
        if not mature.any():
            result[f"d{n}"] = None
            continue
        active_users = np.unique(sessions.user[(day_n == n) & mature[sessions.user]])
        result[f"d{n}"] = round(len(active_users) / int(mature.sum()), 6)
    return result


# ==============================================================================================
# formatting helpers


def _timestamps(calendar: _Calendar, day: np.ndarray, second: np.ndarray) -> pl.Series:
    """ISO-8601 UTC text like 2026-08-01T13:45:12Z."""
    return pl.from_epoch(pl.Series(calendar.epoch_seconds(day, second)), time_unit="s").dt.strftime(TIMESTAMP_FORMAT)


def _decimal_text(minor_units: np.ndarray, decimals: np.ndarray) -> pl.Series:
    """Exact decimal text of integer amounts in minor units ('-12.05', '1500', '0.03')."""
    units = np.asarray(minor_units, dtype=np.int64)
    decimals = np.asarray(decimals, dtype=np.int64)
    sign = pl.Series(np.where(units < 0, "-", ""))
    magnitude = np.abs(units)
    divisor = 10 ** decimals
    whole = pl.Series(magnitude // divisor).cast(pl.String)
    fraction = pl.Series(magnitude % divisor).cast(pl.String).str.zfill(2)
    with_fraction = sign + whole + "." + fraction
    without_fraction = sign + whole
    assert set(np.unique(decimals)) <= {0, 2}, "only currencies with 0 or 2 minor units are supported"
    return pl.select(pl.when(pl.Series(decimals == 0)).then(without_fraction).otherwise(with_fraction)).to_series()


def _hex_ids(rng: np.random.Generator, n: int, prefix: str) -> list[str]:
    """n distinct ids like 'evt_1f3a9c0d2b4e6f70'."""
    values = rng.integers(0, 2**63 - 1, n, dtype=np.int64)
    ids = [f"{prefix}{v:016x}" for v in values.tolist()]
    if len(set(ids)) != n:
        raise RuntimeError("generated event ids collide; use another seed")
    return ids


# ==============================================================================================
# building the delivered rows (with dirt)


def _late_delivery_days(days: int) -> list[int]:
    """Two event days whose late rows still arrive inside the delivery range."""
    last_possible = days - 2 - cat.LATE_DELAY_DAYS
    return sorted({min(last_possible, round(0.4 * (days - 1))), min(last_possible, round(0.7 * (days - 1)))})


def _apply_late_delivery(rng: np.random.Generator, frame: pl.DataFrame, late_days: list[int]) -> pl.DataFrame:
    """Move a share of the rows of the late days `LATE_DELAY_DAYS` folders later; mark them."""
    on_late_day = frame["day"].is_in(late_days).to_numpy()
    late = on_late_day & (rng.random(frame.height) < cat.LATE_DELIVERY_SHARE)
    return frame.with_columns(
        (pl.col("folder") + pl.Series(np.where(late, cat.LATE_DELAY_DAYS, 0))).alias("folder"),
        pl.Series("is_late", late),
    )


def _add_exact_duplicates(rng: np.random.Generator, frame: pl.DataFrame, count: int) -> pl.DataFrame:
    """Repeat `count` distinct on-time rows (same folder, so the same file); mark the copies."""
    candidates = np.flatnonzero(~frame["is_late"].to_numpy())
    count = min(count, len(candidates))
    chosen = np.sort(rng.choice(candidates, count, replace=False))
    copies = frame[chosen].with_columns(pl.lit(True).alias("is_duplicate"))
    return pl.concat([frame.with_columns(pl.lit(False).alias("is_duplicate")), copies])


def _build_installs_rows(rng: np.random.Generator, calendar: _Calendar, installs: _Installs) -> pl.DataFrame:
    rows = pl.DataFrame({
        "user_id": installs.user_id,
        "install_time": _timestamps(calendar, installs.day, installs.second),
        "app_id": pl.Series(_APP_IDS).gather(installs.app),
        "platform": pl.Series(list(cat.PLATFORMS)).gather(installs.platform),
        "media_source": pl.Series(_SOURCE_NAMES).gather(installs.source),
        "campaign": installs.campaign,
        "country": pl.Series(_COUNTRY_CODES).gather(installs.country),
        "day": installs.day,
        "folder": installs.day + 1,
        "sort_second": installs.second,
        "is_late": np.zeros(len(installs), dtype=bool),
        "is_duplicate": np.zeros(len(installs), dtype=bool),
        "is_null_user": np.zeros(len(installs), dtype=bool),
    }).with_row_index("seq")
    blanks = rows[np.sort(rng.choice(rows.height, min(cat.NULL_USER_ID_ROWS["installs"], rows.height), replace=False))]
    blanks = blanks.with_columns(pl.lit("").alias("user_id"), pl.lit(True).alias("is_null_user"))
    return pl.concat([rows, blanks])


def _build_purchase_rows(
    rng: np.random.Generator, calendar: _Calendar, installs: _Installs, events: _RevenueEvents, late_days: list[int]
) -> pl.DataFrame:
    """One row per revenue event plus the dirt: empty event ids, late rows, duplicates, blank users."""
    n = len(events.user)
    minor_units = np.array([c.minor_units for c in cat.CURRENCIES])
    rows = pl.DataFrame({
        "event_id": _hex_ids(rng, n, "evt_"),
        "user_id": installs.user_id.gather(events.user),
        "event_time": _timestamps(calendar, events.day, events.second),
        "revenue": _decimal_text(events.minor_units, minor_units[events.currency]),
        "currency": pl.Series(_CURRENCY_CODES).gather(events.currency),
        "product_id": events.product_id,
        "revenue_type": pl.Series(["iap", "iap", "ad"]).gather(events.kind),
        "app_id": pl.Series(_APP_IDS).gather(installs.app[events.user]),
        "day": events.day,
        "folder": events.day + 1,
        "sort_second": events.second,
        "kind": events.kind,
        "minor_units": events.minor_units,
        "currency_index": events.currency,
    })
    # empty event_id only where the hashed fields are unique, so hashing never merges two events
    hash_fields = ["user_id", "event_time", "product_id", "revenue", "currency"]
    unique_hash = ~rows.select(pl.struct(hash_fields).is_duplicated()).to_series().to_numpy()
    no_event_id = unique_hash & (rng.random(n) < cat.EMPTY_EVENT_ID_SHARE)
    rows = rows.with_columns(
        pl.when(pl.Series(no_event_id)).then(pl.lit("")).otherwise(pl.col("event_id")).alias("event_id")
    ).with_row_index("seq")
    rows = _apply_late_delivery(rng, rows, late_days)
    rows = _add_exact_duplicates(rng, rows, cat.EXACT_DUPLICATES["purchases"])
    iap_rows = np.flatnonzero((rows["kind"].to_numpy() == KIND_IAP) & ~rows["is_late"].to_numpy()
                              & ~rows["is_duplicate"].to_numpy())
    count = min(cat.NULL_USER_ID_ROWS["purchases"], len(iap_rows))
    blanks = rows[np.sort(rng.choice(iap_rows, count, replace=False))].with_columns(
        pl.Series("event_id", _hex_ids(rng, count, "evt_")),
        pl.lit("").alias("user_id"),
        pl.lit(False).alias("is_duplicate"),
    )
    return pl.concat([rows.with_columns(pl.lit(False).alias("is_null_user")),
                      blanks.with_columns(pl.lit(True).alias("is_null_user"))])


def _build_session_rows(
    rng: np.random.Generator, calendar: _Calendar, installs: _Installs, sessions: _Sessions, late_days: list[int]
) -> pl.DataFrame:
    """One row per session (session_id = user id + ordinal of the session) plus the dirt."""
    order = np.lexsort((sessions.second, sessions.day, sessions.user))
    user, day, second = sessions.user[order], sessions.day[order], sessions.second[order]
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    counts = np.diff(np.r_[starts, len(user)])
    ordinal = np.arange(len(user)) - np.repeat(starts, counts) + 1
    user_id = installs.user_id.gather(user)
    epoch = calendar.epoch_seconds(day, second)
    rows = pl.DataFrame({
        "user_id": user_id,
        "session_time": pl.from_epoch(pl.Series(epoch), time_unit="s").dt.replace_time_zone("UTC")
        .cast(pl.Datetime("us", "UTC")),
        "session_id": user_id + "-s" + pl.Series(ordinal).cast(pl.String).str.zfill(4),
        "app_id": pl.Series(_APP_IDS).gather(installs.app[user]),
        "day": day,
        "folder": day + 1,
        "sort_second": second,
    }).with_row_index("seq")
    rows = _apply_late_delivery(rng, rows, late_days)
    rows = _add_exact_duplicates(rng, rows, cat.EXACT_DUPLICATES["sessions"])
    return rows.with_columns(pl.lit(False).alias("is_null_user"))


def _simulate_ad_spend(
    rng: np.random.Generator, calendar: _Calendar, installs: _Installs, fx: np.ndarray
) -> pl.DataFrame:
    """Spend rows per network and day (with restatements and zero-install rows) and their USD value.

    Columns: the canonical ad_spend columns, plus day, folder, usd (spend in USD at the day's
    rate), is_restated (a superseded earlier copy exists), is_superseded (replaced later)."""
    paid = installs.source != _ORGANIC_INDEX
    cells = (
        pl.DataFrame({
            "day": installs.day[paid], "app": installs.app[paid], "source": installs.source[paid],
            "campaign": installs.campaign.filter(pl.Series(paid)), "country": installs.country[paid],
            "platform": installs.platform[paid],
        })
        .group_by("day", "app", "source", "campaign", "country", "platform")
        .agg(pl.len().alias("installs"))
        .sort("day", "app", "source", "campaign", "country", "platform")
    )
    # a few cells with spend but no installs: existing campaigns in countries they got none that day
    extra = cells[np.sort(rng.choice(cells.height, min(cat.ZERO_INSTALL_SPEND_ROWS * 4, cells.height), replace=False))]
    extra = extra.with_columns(
        pl.Series("country", rng.integers(0, len(cat.COUNTRIES), extra.height)),
        pl.lit(0, dtype=pl.UInt32).alias("installs"),
    ).join(cells.select("day", "app", "source", "campaign", "country", "platform"),
           on=["day", "app", "source", "campaign", "country", "platform"], how="anti")
    extra = extra.filter(pl.col("source") != _SOURCE_NAMES.index(cat.COUNTRYLESS_MEDIA_SOURCE))
    extra = extra.unique(["day", "app", "source", "campaign", "country", "platform"], keep="first",
                         maintain_order=True).head(cat.ZERO_INSTALL_SPEND_ROWS)
    cells = pl.concat([cells, extra]).sort("day", "app", "source", "campaign", "country", "platform")

    source = cells["source"].to_numpy()
    country = cells["country"].to_numpy()
    platform = cells["platform"].to_numpy()
    n_installs = cells["installs"].to_numpy().astype(np.int64)
    cpi = (np.array([c.cpi_usd for c in cat.COUNTRIES])[country]
           * np.array([s.cpi_multiplier for s in cat.MEDIA_SOURCES])[source]
           * np.where(platform == 0, cat.IOS_CPI_MULTIPLIER, 1.0)
           * rng.lognormal(0.0, 0.25, cells.height))
    spend_usd = np.where(n_installs > 0, n_installs * cpi, cpi * rng.uniform(0.2, 3.0, cells.height))
    clicks = np.round(np.maximum(n_installs, 1) / rng.uniform(0.15, 0.4, cells.height)).astype(np.int64)
    impressions = np.round(clicks / rng.uniform(0.008, 0.03, cells.height)).astype(np.int64)
    cells = cells.with_columns(pl.Series("spend_usd", spend_usd), pl.Series("clicks", clicks),
                               pl.Series("impressions", impressions))

    # the country-less network: one row per (day, app, campaign, platform)
    countryless = _SOURCE_NAMES.index(cat.COUNTRYLESS_MEDIA_SOURCE)
    keys = ["day", "app", "source", "campaign", "country", "platform"]
    cells = pl.concat([
        cells.filter(pl.col("source") != countryless).with_columns(pl.col("country").cast(pl.Int64)),
        cells.filter(pl.col("source") == countryless)
        .group_by("day", "app", "source", "campaign", "platform")
        .agg(pl.col("installs").sum(), pl.col("spend_usd").sum(), pl.col("clicks").sum(), pl.col("impressions").sum())
        .with_columns(pl.lit(None, dtype=pl.Int64).alias("country")),
    ], how="diagonal").sort(keys, nulls_last=True)

    # restatements: every RESTATEMENT_EVERY-th delivery (folder) re-sends the day LAG days earlier
    restated_days = [d - cat.RESTATEMENT_LAG_DAYS for d in range(calendar.days)
                     if d % cat.RESTATEMENT_EVERY == cat.RESTATEMENT_EVERY - 1 and d - cat.RESTATEMENT_LAG_DAYS >= 0]
    original = cells.with_columns((pl.col("day") + 1).alias("folder"), pl.lit(False).alias("is_restatement"))
    restated = original.filter(pl.col("day").is_in(restated_days))
    restated = restated.with_columns(
        (pl.col("spend_usd") * pl.Series(rng.lognormal(0.0, cat.RESTATEMENT_SPEND_SIGMA, restated.height))),
        (pl.col("day") + 1 + cat.RESTATEMENT_LAG_DAYS).alias("folder"),
        pl.lit(True).alias("is_restatement"),
    )
    rows = pl.concat([original, restated]).with_columns(
        pl.col("day").is_in(restated_days).alias("is_restated_key"),
    ).with_columns(
        (pl.col("is_restated_key") & ~pl.col("is_restatement")).alias("is_superseded"),
    )

    eur = _CURRENCY_CODES.index("EUR")
    usd = _CURRENCY_CODES.index("USD")
    reports_eur = rows["source"].to_numpy() == _SOURCE_NAMES.index(cat.EUR_REPORTING_MEDIA_SOURCE)
    currency = np.where(reports_eur, eur, usd)
    day = rows["day"].to_numpy()
    cents = np.round(rows["spend_usd"].to_numpy() / fx[currency, day] * 100).astype(np.int64)
    return pl.DataFrame({
        "date": pl.Series([calendar.day_date(d) for d in range(calendar.days)]).gather(day),
        "media_source": pl.Series(_SOURCE_NAMES).gather(rows["source"]),
        "campaign": rows["campaign"],
        "country": rows.select(pl.col("country").replace_strict(
            dict(enumerate(_COUNTRY_CODES)), default=None, return_dtype=pl.String)).to_series(),
        "platform": pl.Series(list(cat.PLATFORMS)).gather(rows["platform"]),
        "app_id": pl.Series(_APP_IDS).gather(rows["app"]),
        "spend": _decimal_text(cents, np.full(len(cents), 2)),
        "currency": pl.Series(_CURRENCY_CODES).gather(currency),
        "impressions": rows["impressions"],
        "clicks": rows["clicks"],
        "installs": rows["installs"].cast(pl.Int64),
        "day": day,
        "folder": rows["folder"],
        "usd": cents / 100.0 * fx[currency, day],
        "is_restatement": rows["is_restatement"],
        "is_superseded": rows["is_superseded"],
    })


# ==============================================================================================
# writing


def _folder(landing_dir: Path, source: str, calendar: _Calendar, folder: int) -> Path:
    path = landing_dir / source / calendar.day_date(folder).isoformat()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _csv_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_csv(buffer, line_terminator="\n", null_value="")
    return buffer.getvalue()


def _file_order(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in a file: by event day and second, original order for ties (duplicates stay adjacent)."""
    return frame.sort("folder", "day", "sort_second", "seq", maintain_order=True)


def _write_partitioned(frame: pl.DataFrame, landing_dir: Path, source: str, calendar: _Calendar, file_name: str,
                       writer) -> int:
    columns = SOURCES[source].column_names
    files = 0
    for (folder,), part in frame.group_by("folder", maintain_order=True):
        path = _folder(landing_dir, source, calendar, folder) / file_name
        writer(part.select([c for c in columns if c in part.columns]), path)
        files += 1
    return files


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    path.write_bytes(_csv_bytes(frame))


def _write_csv_gz(frame: pl.DataFrame, path: Path) -> None:
    path.write_bytes(gzip.compress(_csv_bytes(frame), compresslevel=6, mtime=0))


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path, compression="zstd", statistics=True)


def _write_fx_rates(landing_dir: Path, calendar: _Calendar, fx: np.ndarray) -> int:
    """One JSON line per (currency, day) in folder day + 1."""
    for day in range(calendar.days):
        lines = [
            json.dumps({"date": calendar.day_date(day).isoformat(), "currency": code,
                        "usd_per_unit": float(fx[c, day])})
            for c, code in enumerate(_CURRENCY_CODES)
        ]
        (_folder(landing_dir, "fx_rates", calendar, day + 1) / "fx_rates.jsonl").write_text(
            "\n".join(lines) + "\n", encoding="utf-8")
    return calendar.days


def _prepare_landing_dir(landing_dir: Path) -> None:
    """Create the folder; refuse a non-empty one without ground truth; clear a generated one."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    if not any(landing_dir.iterdir()):
        return
    if not (landing_dir / GROUND_TRUTH_FILE).is_file():
        raise ValueError(
            f"{landing_dir} is not empty and has no {GROUND_TRUTH_FILE}: refusing to write sample data "
            "into what may be real data; use an empty or previously generated folder")
    for source in GENERATED_SOURCES:
        shutil.rmtree(landing_dir / source, ignore_errors=True)
    (landing_dir / GROUND_TRUTH_FILE).unlink()


# ==============================================================================================
# ground truth


def _source_counts(rows: pl.DataFrame, *, restated_keys: int = 0, files: int) -> dict[str, int]:
    written = rows.height
    duplicates = int(rows["is_duplicate"].sum()) if "is_duplicate" in rows.columns else 0
    null_users = int(rows["is_null_user"].sum()) if "is_null_user" in rows.columns else 0
    late = int(rows["is_late"].sum()) if "is_late" in rows.columns else 0
    return {
        "rows_written": written,
        "files": files,
        "exact_duplicate_rows": duplicates,
        "null_user_id_rows": null_users,
        "late_rows": late,
        "restated_keys": restated_keys,
        "expected_clean_rows": written - duplicates - null_users - restated_keys,
    }


def _cents(value: float) -> float:
    return round(float(value), 2)


def generate_sample(
    landing_dir: Path,
    *,
    days: int = 120,
    seed: int = 7,
    end_date: date = DEFAULT_END_DATE,
    scale: float = 1.0,
) -> dict:
    """Write a seeded sample landing folder (see module docstring) and return its ground truth.

    Args:
        landing_dir: target folder; must be empty, missing, or a folder this function generated
            before (it has `ground_truth.json`; its source folders are then replaced).
        days: number of event days, ending at `end_date` (at least 14).
        seed: random seed; the same seed and arguments give byte-identical files.
        end_date: last event day (observation end); the last delivery folder is end_date + 1.
        scale: install volume multiplier (~1000·scale installs a day).

    Returns:
        The ground truth, also written as pretty JSON with sorted keys to
        `<landing_dir>/ground_truth.json`.

    Raises:
        ValueError: bad arguments, or a non-empty landing folder without ground truth.
    """
    if int(days) != days or days < MIN_DAYS:
        raise ValueError(f"days must be an integer >= {MIN_DAYS}, got {days!r}")
    if not (scale > 0):
        raise ValueError(f"scale must be > 0, got {scale!r}")
    landing_dir = Path(landing_dir)
    days = int(days)
    _prepare_landing_dir(landing_dir)

    calendar = _Calendar(start_date=end_date - timedelta(days=days - 1), days=days)
    streams = np.random.SeedSequence(seed).spawn(8)
    rng_fx, rng_installs, rng_sessions, rng_revenue, rng_purchase_rows, rng_session_rows, rng_spend, rng_misc = (
        np.random.default_rng(s) for s in streams)

    fx = _simulate_fx_rates(rng_fx, days)
    installs = _simulate_installs(rng_installs, calendar, scale)
    sessions = _simulate_sessions(rng_sessions, installs, days)
    events, sessions = _simulate_revenue_events(rng_revenue, calendar, installs, sessions, fx)
    retention = _classic_retention(installs, sessions, days)

    late_days = _late_delivery_days(days)
    install_rows = _build_installs_rows(rng_misc, calendar, installs)
    purchase_rows = _build_purchase_rows(rng_purchase_rows, calendar, installs, events, late_days)
    session_rows = _build_session_rows(rng_session_rows, calendar, installs, sessions, late_days)
    spend_rows = _simulate_ad_spend(rng_spend, calendar, installs, fx)
    del sessions

    files = {
        "installs": _write_partitioned(_file_order(install_rows), landing_dir, "installs", calendar,
                                       "installs.csv", _write_csv),
        "purchases": _write_partitioned(_file_order(purchase_rows), landing_dir, "purchases", calendar,
                                        "purchases.csv.gz", _write_csv_gz),
        "sessions": _write_partitioned(_file_order(session_rows), landing_dir, "sessions", calendar,
                                       "sessions.parquet", _write_parquet),
        "fx_rates": _write_fx_rates(landing_dir, calendar, fx),
        "ad_spend": 0,
    }
    spend_sorted = spend_rows.with_row_index("seq").sort("folder", "media_source", "day", "seq", maintain_order=True)
    for (folder, media_source), part in spend_sorted.group_by("folder", "media_source", maintain_order=True):
        path = _folder(landing_dir, "ad_spend", calendar, folder) / f"{media_source}.csv"
        _write_csv(part.select(SOURCES["ad_spend"].column_names), path)
        files["ad_spend"] += 1

    # --- ground truth
    minor_units = np.array([c.minor_units for c in cat.CURRENCIES])
    kept = purchase_rows.filter(~pl.col("is_duplicate") & ~pl.col("is_null_user"))
    kept_usd = (kept["minor_units"].to_numpy() / 10.0 ** minor_units[kept["currency_index"].to_numpy()]
                * fx[kept["currency_index"].to_numpy(), kept["day"].to_numpy()])
    kind = kept["kind"].to_numpy()
    final_spend = spend_rows.filter(~pl.col("is_superseded"))
    spend_by_source = final_spend.group_by("media_source").agg(pl.col("usd").sum()).sort("media_source")
    payers = int(np.unique(events.user[events.kind == KIND_IAP]).size)
    restated_keys = int(spend_rows["is_superseded"].sum())

    ground_truth = {
        "seed": seed,
        "days": days,
        "scale": scale,
        "start_date": calendar.start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "observation_end": end_date.isoformat(),
        "first_delivery_date": calendar.day_date(1).isoformat(),
        "last_delivery_date": calendar.day_date(days).isoformat(),
        "apps": _APP_IDS,
        "platforms": list(cat.PLATFORMS),
        "media_sources": _SOURCE_NAMES,
        "paid_media_sources": [s for s in _SOURCE_NAMES if s != ORGANIC],
        "countries": _COUNTRY_CODES,
        "currencies": _CURRENCY_CODES,
        "bg_nbd": dict(cat.TRUE_BG_NBD),
        "gamma_gamma": dict(cat.TRUE_GAMMA_GAMMA),
        "model_conventions": {
            "bg_nbd_time_unit": "days",
            "clock": "starts at the first purchase day; purchase days = distinct UTC days with an IAP purchase",
            "gamma_gamma_value": "gross USD per purchase day, before store fee, refunds and rounding to "
                                 "the local currency (at a 30% store fee the net gamma is gamma * 0.7)",
        },
        "sources": {
            "installs": _source_counts(install_rows, files=files["installs"]),
            "purchases": _source_counts(purchase_rows, files=files["purchases"]),
            "sessions": _source_counts(session_rows, files=files["sessions"]),
            "ad_spend": _source_counts(spend_rows, restated_keys=restated_keys, files=files["ad_spend"]),
            "fx_rates": _source_counts(pl.DataFrame({"currency": _CURRENCY_CODES * days}),
                                       files=files["fx_rates"]),
        },
        "totals": {
            "installs": len(installs),
            "installs_by_media_source": {
                name: int((installs.source == i).sum()) for i, name in enumerate(_SOURCE_NAMES)},
            "payers": payers,
            "payer_share": round(payers / len(installs), 6),
            "iap_purchase_events": int((kind == KIND_IAP).sum()),
            "refund_events": int((kind == KIND_REFUND).sum()),
            "ad_revenue_events": int((kind == KIND_AD).sum()),
            "revenue_usd": {
                "iap_gross": _cents(kept_usd[kind == KIND_IAP].sum()),
                "refunds": _cents(kept_usd[kind == KIND_REFUND].sum()),
                "ad": _cents(kept_usd[kind == KIND_AD].sum()),
                "all_events": _cents(kept_usd.sum()),
                "conversion": "revenue as written * usd_per_unit of the event date, summed over kept "
                              "events (no duplicates, no blank user ids), then rounded to cents",
            },
            "spend_usd": _cents(final_spend["usd"].sum()),
            "spend_usd_by_media_source": {
                row["media_source"]: _cents(row["usd"]) for row in spend_by_source.iter_rows(named=True)},
        },
        "retention": {**retention, "definition": "classic: users with a session on day N / cohort size, "
                                                 "cohorts with install date + N <= end_date"},
        "dirt": {
            "empty_event_id_rows": int((purchase_rows["event_id"] == "").sum()),
            "empty_event_id_share": cat.EMPTY_EVENT_ID_SHARE,
            "late_event_dates": [calendar.day_date(d).isoformat() for d in late_days],
            "late_delay_days": cat.LATE_DELAY_DAYS,
            "late_share": cat.LATE_DELIVERY_SHARE,
            "restated_spend_dates": sorted({d.isoformat() for d in
                                            spend_rows.filter(pl.col("is_restatement"))["date"].to_list()}),
            "restatement_rule": f"every {cat.RESTATEMENT_EVERY}th cost delivery re-sends the spend of "
                                f"{cat.RESTATEMENT_LAG_DAYS} days earlier; the later delivery is the truth",
            "eur_reporting_media_source": cat.EUR_REPORTING_MEDIA_SOURCE,
            "countryless_media_source": cat.COUNTRYLESS_MEDIA_SOURCE,
            "zero_install_spend_rows": int(spend_rows.filter(~pl.col("is_restatement") & (pl.col("installs") == 0))
                                           .height),
        },
    }
    (landing_dir / GROUND_TRUTH_FILE).write_text(
        json.dumps(ground_truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return ground_truth
