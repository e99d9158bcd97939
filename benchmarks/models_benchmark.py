"""Benchmark of the CLV model chain: RFM summary + BG/NBD + Gamma-Gamma + discounted CLV on
5 M transactions of 1 M customers (a script, not a test).

    .venv/bin/python benchmarks/models_benchmark.py [--customers 1000000] [--seed 1]
        [--lifetimes-python /tmp/lifetimes-venv/bin/python] [--no-lifetimes] [--repeat 3]

Data: customers born uniformly over 2024, transactions simulated from BG/NBD (daily parameters
r = 0.55, α = 12, a = 0.6, b = 4) and Gamma-Gamma spend (p = 4, q = 3, γ = 10) — about five
transactions per customer — with integer customer ids, written once to a Parquet file in the
temporary folder (not timed).

Each measured run is a fresh child process that reads that file and times, with
``time.perf_counter``: the RFM summary (days, observation end 2024-12-31), the BG/NBD fit, the
Gamma-Gamma fit on the repeat buyers, and the 365-day discounted CLV of every customer (10 % a
year, 12 mid-month periods). Peak memory is the child's peak RSS (``ru_maxrss``), which includes
the ~80 MB input frame; the RSS after loading the input is printed too. ``--repeat`` runs the child
several times and prints the fastest run (the machine is shared: the minimum is the least noisy).

When a Python with the archived ``lifetimes`` package is available (``--lifetimes-python``, by
default /tmp/lifetimes-venv/bin/python — create it with
``python3.11 -m venv /tmp/lifetimes-venv && /tmp/lifetimes-venv/bin/pip install "numpy<2"
"scipy<1.12" "pandas<2" "pyarrow<17" lifetimes==0.11.3``), the same chain runs there on the same
file (summary_data_from_transaction_data, BetaGeoFitter, GammaGammaFitter,
customer_lifetime_value with 12 monthly periods) and the script prints the time ratio and the
largest relative difference between the two sets of fitted parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OBSERVATION_END = "2024-12-31"

OURS = """
import datetime as dt, json, resource, sys, time
import numpy as np, polars as pl
from clv_pipeline.models import bg_nbd, clv, gamma_gamma, rfm
path = sys.argv[1]
tx = pl.read_parquet(path)
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
end = dt.date.fromisoformat(sys.argv[2])
times = {}
t0 = time.perf_counter()
summary = rfm.rfm_summary(tx, end, "days")
times["rfm"] = time.perf_counter() - t0
x, t_x, T, m = (summary[c].to_numpy() for c in ("frequency", "recency", "t", "monetary_value"))
t0 = time.perf_counter()
bg = bg_nbd.fit(x, t_x, T)
times["bg_nbd"] = time.perf_counter() - t0
t0 = time.perf_counter()
gg = gamma_gamma.fit(x, m)
times["gamma_gamma"] = time.perf_counter() - t0
t0 = time.perf_counter()
pred = clv.predicted_clv(bg.params, gg.params, x, t_x, T, m, 365, "days", 0.10, 1.0)
times["clv"] = time.perf_counter() - t0
print(json.dumps({
    "times": times,
    "customers": summary.height,
    "transactions": tx.height,
    "patterns": bg.n_patterns,
    "bg_nbd": bg.params.as_dict(),
    "bg_nbd_ll": bg.log_likelihood,
    "bg_nbd_message": bg.message,
    "gamma_gamma": gg.params.as_dict(),
    "gamma_gamma_n": gg.n_users,
    "clv_total": float(pred["predicted_clv"].sum()),
    "rss_loaded_mb": rss_loaded,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

LIFETIMES = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data
tx = pd.read_parquet(sys.argv[1])
times = {}
t0 = time.perf_counter()
summary = summary_data_from_transaction_data(tx, "user_id", "event_date", monetary_value_col="value",
                                             observation_period_end=sys.argv[2], freq="D")
times["rfm"] = time.perf_counter() - t0
t0 = time.perf_counter()
bgf = BetaGeoFitter(penalizer_coef=0.0)
bgf.fit(summary["frequency"], summary["recency"], summary["T"])
times["bg_nbd"] = time.perf_counter() - t0
repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
t0 = time.perf_counter()
ggf = GammaGammaFitter(penalizer_coef=0.0)
ggf.fit(repeat["frequency"], repeat["monetary_value"])
times["gamma_gamma"] = time.perf_counter() - t0
t0 = time.perf_counter()
value = ggf.customer_lifetime_value(bgf, summary["frequency"], summary["recency"], summary["T"],
                                    summary["monetary_value"], time=12, discount_rate=0.10 / 12, freq="D")
times["clv"] = time.perf_counter() - t0
p = bgf.params_
g = ggf.params_
print(json.dumps({
    "times": times,
    "customers": int(len(summary)),
    "bg_nbd": {"r": float(p["r"]), "alpha": float(p["alpha"]), "a": float(p["a"]), "b": float(p["b"])},
    "gamma_gamma": {"p": float(g["p"]), "q": float(g["q"]), "gamma": float(g["v"])},
    "clv_total": float(value.sum()),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def generate(path: Path, customers: int, seed: int) -> None:
    import datetime as dt

    import numpy as np
    import polars as pl

    from clv_pipeline.models import simulate
    from clv_pipeline.models.bg_nbd import BetaGeoParams
    from clv_pipeline.models.gamma_gamma import GammaGammaParams

    rng = np.random.default_rng(seed)
    births = (np.datetime64("2024-01-01") + rng.integers(0, 366, customers)).astype("datetime64[D]")
    tx = simulate.simulate_transactions(
        BetaGeoParams(0.55, 12.0, 0.6, 4.0),
        GammaGammaParams(4.0, 3.0, 10.0),
        pl.Series(births),
        dt.date.fromisoformat(OBSERVATION_END),
        rng,
        user_ids=np.arange(1, customers + 1),
    )
    tx.with_columns(pl.col("user_id").cast(pl.Int64)).write_parquet(path)


def run_child(python: str, code: str, path: Path, env: dict | None = None) -> dict:
    out = subprocess.run(
        [python, "-c", code, str(path), OBSERVATION_END], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(results: dict[str, dict]) -> None:
    names = list(results)
    print(f"{'step':<14}" + "".join(f"{n:>14}" for n in names))
    for step in ("rfm", "bg_nbd", "gamma_gamma", "clv"):
        print(f"{step:<14}" + "".join(f"{results[n]['times'][step]:>13.2f}s" for n in names))
    print(f"{'total':<14}" + "".join(f"{sum(results[n]['times'].values()):>13.2f}s" for n in names))
    print(f"{'peak RSS':<14}" + "".join(f"{results[n]['peak_rss_mb']:>11.0f} MB" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of our chain; the fastest is reported")
    parser.add_argument("--lifetimes-python", default="/tmp/lifetimes-venv/bin/python")
    parser.add_argument("--no-lifetimes", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.parquet"
        started = time.perf_counter()
        generate(path, args.customers, args.seed)
        print(f"generated in {time.perf_counter() - started:.1f} s (not timed below): {path.stat().st_size / 1e6:.0f} MB parquet")
        runs = [run_child(sys.executable, OURS, path, env) for _ in range(max(args.repeat, 1))]
        ours = min(runs, key=lambda r: sum(r["times"].values()))
        totals = ", ".join(f"{sum(r['times'].values()):.2f} s" for r in runs)
        print(
            f"\n{ours['transactions']:,} transactions, {ours['customers']:,} customers, {ours['patterns']:,} distinct "
            f"(x, t_x, T) patterns; fastest of {len(runs)} runs (totals: {totals})"
        )
        print(f"RSS after loading the input: {ours['rss_loaded_mb']:.0f} MB")
        results = {"clv_pipeline": ours}
        lifetimes_python = Path(args.lifetimes_python)
        if not args.no_lifetimes and lifetimes_python.exists():
            print(f"running lifetimes with {lifetimes_python} (this takes minutes) …", flush=True)
            results["lifetimes"] = run_child(str(lifetimes_python), LIFETIMES, path)
        elif not args.no_lifetimes:
            print(f"lifetimes not run: {lifetimes_python} not found (see the module docstring)")
        print()
        table(results)
        bg = ", ".join(f"{k}={v:.4f}" for k, v in ours["bg_nbd"].items())
        gg = ", ".join(f"{k}={v:.4f}" for k, v in ours["gamma_gamma"].items())
        print(f"\nBG/NBD      {bg}  (LL {ours['bg_nbd_ll']:.1f})")
        print(f"Gamma-Gamma {gg}  ({ours['gamma_gamma_n']:,} repeat buyers)")
        print(f"fit: {ours['bg_nbd_message']}")
        if "lifetimes" in results:
            lt = results["lifetimes"]
            ratio = sum(lt["times"].values()) / sum(ours["times"].values())
            diffs = {
                f"{model}.{k}": abs(ours[model][k] / lt[model][k] - 1)
                for model in ("bg_nbd", "gamma_gamma")
                for k in ours[model]
            }
            worst = max(diffs, key=diffs.get)
            lt_bg = ", ".join(f"{k}={v:.4f}" for k, v in lt["bg_nbd"].items())
            lt_gg = ", ".join(f"{k}={v:.4f}" for k, v in lt["gamma_gamma"].items())
            print(f"lifetimes   BG/NBD {lt_bg}; Gamma-Gamma {lt_gg}")
            per_step = ", ".join(f"{step} {lt['times'][step] / ours['times'][step]:.1f}x" for step in ours["times"])
            print(f"\nlifetimes / clv_pipeline time ratio: {ratio:.1f}x (per step: {per_step})")
            print(f"largest relative parameter difference: {worst} {diffs[worst]:.2e}")
            print(f"CLV totals (different discounting conventions): ours {ours['clv_total']:,.0f}, lifetimes {lt['clv_total']:,.0f}")


if __name__ == "__main__":
    main()
