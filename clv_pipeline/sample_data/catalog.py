"""The fictional business the sample generator simulates: apps, channels, countries, currencies,
SKUs, and the true model parameters. Pure data, no logic beyond small lookups.

Numbers are chosen to look like a mid-sized free-to-play portfolio in 2026: about 1000 installs a
day, 2–5 % payers, D1/D7/D30 retention near 35/12/5 %, CPIs from $0.2 (India) to $4 (US iOS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from clv_pipeline.ingestion.sources import ORGANIC

DEFAULT_END_DATE = date(2026, 11, 30)

# ----------------------------------------------------------------------------------------------
# apps


@dataclass(frozen=True)
class App:
    app_id: str
    short_name: str  # used in campaign names and SKUs
    install_share: float
    earns_ad_revenue: bool


APPS: tuple[App, ...] = (
    App("com.clvdemo.runner", "runner", 0.6, True),
    App("com.clvdemo.puzzle", "puzzle", 0.4, False),
)

PLATFORMS: tuple[str, ...] = ("ios", "android")

# ----------------------------------------------------------------------------------------------
# media sources (channels)


@dataclass(frozen=True)
class MediaSource:
    name: str
    install_weight: float  # share of installs before the platform restriction
    engagement_quality: float  # multiplies the daily activity probability
    payer_multiplier: float  # multiplies the chance to become a payer
    cpi_multiplier: float  # multiplies the country CPI
    campaigns: tuple[str, ...]  # suffixes; campaign = f"{app short name}_{suffix}"
    ios_only: bool = False


MEDIA_SOURCES: tuple[MediaSource, ...] = (
    MediaSource(ORGANIC, 0.30, 1.15, 1.00, 0.0, ()),
    MediaSource("googleadwords_int", 0.18, 1.00, 1.10, 1.00,
                ("uac_installs_t1", "uac_installs_row", "uac_purchase_tcpa")),
    MediaSource("facebook_ads", 0.15, 0.95, 1.15, 1.10, ("aaa_broad", "aeo_purchase", "lookalike_payers_1pct")),
    MediaSource("tiktok_int", 0.09, 0.80, 0.75, 0.80, ("spark_ads_broad", "vbo_purchase")),
    MediaSource("applovin_int", 0.09, 0.85, 1.00, 0.90, ("axon_roas_d7", "axon_cpi_global", "playable_tier1")),
    MediaSource("unityads_int", 0.07, 0.75, 0.80, 0.70, ("cpi_global", "roas_d7_tier1")),
    MediaSource("apple_search_ads", 0.06, 1.20, 1.40, 1.40, ("brand_exact", "category_broad", "competitor_exact"),
                ios_only=True),
    MediaSource("ironsource_int", 0.06, 0.80, 0.80, 0.75, ("rewarded_cpi", "interstitial_roas")),
)

#: This network reports its spend in EUR instead of USD.
EUR_REPORTING_MEDIA_SOURCE = "unityads_int"
#: This network reports spend without a country breakdown (country empty = all countries).
COUNTRYLESS_MEDIA_SOURCE = "ironsource_int"

# ----------------------------------------------------------------------------------------------
# currencies


@dataclass(frozen=True)
class Currency:
    code: str
    usd_per_unit: float  # level on the first day
    daily_volatility: float  # standard deviation of the daily log change
    minor_units: int  # decimals of the currency (ISO-4217)


CURRENCIES: tuple[Currency, ...] = (
    Currency("USD", 1.0, 0.0, 2),
    Currency("EUR", 1.085, 0.004, 2),
    Currency("GBP", 1.27, 0.004, 2),
    Currency("JPY", 0.0066, 0.006, 0),
    Currency("KRW", 0.00073, 0.005, 0),
    Currency("BRL", 0.18, 0.009, 2),
    Currency("MXN", 0.055, 0.008, 2),
    Currency("INR", 0.0118, 0.003, 2),
    Currency("CAD", 0.73, 0.003, 2),
    Currency("AUD", 0.66, 0.005, 2),
    Currency("SEK", 0.095, 0.006, 2),
    Currency("PLN", 0.25, 0.005, 2),
    Currency("TRY", 0.029, 0.007, 2),
)

# ----------------------------------------------------------------------------------------------
# countries


@dataclass(frozen=True)
class Country:
    iso2: str
    install_weight: float
    ios_share: float
    payer_multiplier: float
    cpi_usd: float  # Android CPI of an average network; iOS costs IOS_CPI_MULTIPLIER more
    currency: str
    tier: int  # 1 = rich markets (more search/social), 3 = emerging (more ad networks)


COUNTRIES: tuple[Country, ...] = (
    Country("US", 0.20, 0.55, 1.50, 3.20, "USD", 1),
    Country("GB", 0.05, 0.50, 1.25, 2.60, "GBP", 1),
    Country("DE", 0.05, 0.35, 1.15, 2.30, "EUR", 1),
    Country("FR", 0.04, 0.35, 1.00, 1.90, "EUR", 1),
    Country("ES", 0.03, 0.25, 0.85, 1.30, "EUR", 2),
    Country("IT", 0.03, 0.28, 0.85, 1.30, "EUR", 2),
    Country("NL", 0.02, 0.40, 1.10, 2.00, "EUR", 1),
    Country("SE", 0.015, 0.45, 1.15, 2.20, "SEK", 1),
    Country("PL", 0.02, 0.15, 0.70, 0.80, "PLN", 2),
    Country("TR", 0.04, 0.15, 0.50, 0.50, "TRY", 3),
    Country("JP", 0.06, 0.65, 1.60, 3.00, "JPY", 1),
    Country("KR", 0.035, 0.25, 1.40, 2.40, "KRW", 1),
    Country("AU", 0.025, 0.55, 1.25, 2.70, "AUD", 1),
    Country("CA", 0.035, 0.50, 1.20, 2.60, "CAD", 1),
    Country("BR", 0.08, 0.12, 0.60, 0.45, "BRL", 3),
    Country("MX", 0.05, 0.20, 0.60, 0.60, "MXN", 3),
    Country("IN", 0.11, 0.05, 0.35, 0.18, "INR", 3),
    Country("ID", 0.06, 0.08, 0.40, 0.25, "USD", 3),
    Country("PH", 0.04, 0.12, 0.40, 0.30, "USD", 3),
)

IOS_CPI_MULTIPLIER = 1.3

#: Per tier, how the install mix of each media source is tilted (multiplies install_weight).
TIER_CHANNEL_TILT: dict[int, dict[str, float]] = {
    1: {"apple_search_ads": 1.4, "facebook_ads": 1.2, "googleadwords_int": 1.1, "unityads_int": 0.7,
        "ironsource_int": 0.7},
    2: {},
    3: {"apple_search_ads": 0.5, "unityads_int": 1.4, "ironsource_int": 1.4, "applovin_int": 1.2,
        "tiktok_int": 1.3, "facebook_ads": 0.9},
}

# ----------------------------------------------------------------------------------------------
# behaviour

#: Relative install volume Monday..Sunday (weekend lift); normalised to mean 1 when used.
WEEKDAY_INSTALL_FACTOR: tuple[float, ...] = (0.94, 0.92, 0.93, 0.96, 1.03, 1.13, 1.09)

#: P(active on day n ≥ 1) = min(1, engagement × channel quality × RETENTION_SCALE × n^-RETENTION_EXPONENT
#: × exp(-n / RETENTION_TAPER_DAYS)): a power law with a slow exponential taper, which gives about
#: D1 34 %, D7 12 %, D30 4.5 %, D90 1.2 %.
RETENTION_SCALE = 0.35
RETENTION_EXPONENT = 0.5
RETENTION_TAPER_DAYS = 80.0
#: Per-user engagement multiplier ~ Gamma(shape, scale = 1/shape) (mean 1).
ENGAGEMENT_SHAPE = 1.5
#: Sessions on an active day = 1 + Poisson(EXTRA_SESSIONS_MEAN × engagement^0.5).
EXTRA_SESSIONS_MEAN = 0.6

#: Chance that an install becomes a payer before the channel/country/engagement multipliers.
BASE_PAYER_PROBABILITY = 0.034
MAX_PAYER_PROBABILITY = 0.5
#: First purchase: on day 0 with this probability, else 1 + floor(lognormal(ln median, sigma)) days.
FIRST_PURCHASE_DAY0_SHARE = 0.45
FIRST_PURCHASE_DELAY_MEDIAN_DAYS = 2.5
FIRST_PURCHASE_DELAY_SIGMA = 1.1

#: True BG/NBD parameters of the repeat purchase days (time unit: days; clock starts at the first
#: purchase). λ ~ Gamma(r, rate α): mean 0.025 purchase days a day; p ~ Beta(a, b): mean 0.24.
TRUE_BG_NBD = {"r": 0.25, "alpha": 10.0, "a": 0.8, "b": 2.5}
#: True Gamma-Gamma parameters of the gross USD value of a purchase day (before store fee, refunds,
#: rounding to the local currency). Mean value p·γ/(q−1) = $20.
TRUE_GAMMA_GAMMA = {"p": 4.0, "q": 3.0, "gamma": 10.0}

#: Share of IAP purchases refunded, and the refund delay range in days (inclusive).
REFUND_SHARE = 0.01
REFUND_DELAY_DAYS = (2, 5)

#: Ad revenue (apps with earns_ad_revenue): chance that a session shows a paid ad, and the USD value.
AD_EVENT_SESSION_SHARE = 0.25
AD_REVENUE_MEDIAN_USD = 0.03
AD_REVENUE_SIGMA = 0.5
AD_PRODUCTS: tuple[str, ...] = ("ad_interstitial", "ad_rewarded_video", "ad_banner")

#: IAP SKUs per app: (item name, USD price tier). product_id = f"{app short}.{item}_{tier}".
SKU_PRICE_TIERS_USD: tuple[float, ...] = (0.99, 1.99, 4.99, 9.99, 19.99, 49.99, 99.99)
SKU_ITEMS: dict[str, tuple[str, ...]] = {
    "runner": ("coins", "boost_pack", "season_pass"),
    "puzzle": ("gems", "lives_refill", "no_ads_bundle"),
}

# ----------------------------------------------------------------------------------------------
# dirt (counts are exact; shares are per-row probabilities)

EXACT_DUPLICATES = {"purchases": 12, "sessions": 20}
NULL_USER_ID_ROWS = {"installs": 4, "purchases": 6}
#: Share of purchase rows written with an empty event_id (the pipeline hashes one).
EMPTY_EVENT_ID_SHARE = 0.05
#: Two event days whose purchases/sessions partly arrive LATE_DELAY_DAYS after the normal drop.
LATE_DELIVERY_SHARE = 0.3
LATE_DELAY_DAYS = 3
#: Every RESTATEMENT_EVERY-th cost delivery re-sends the spend of RESTATEMENT_LAG_DAYS earlier.
RESTATEMENT_EVERY = 7
RESTATEMENT_LAG_DAYS = 7
RESTATEMENT_SPEND_SIGMA = 0.1
#: Spend rows for cells that got no installs.
ZERO_INSTALL_SPEND_ROWS = 5
