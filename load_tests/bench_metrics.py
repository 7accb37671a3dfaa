"""Benchmark of the window metrics engine (not a pytest test).

Run: ``.venv/bin/python load_tests/bench_metrics.py [--quick]``

For 50 numeric + 10 categorical features and a 10k-row reference, at 1k, 10k and 100k events
per window: add_predictions throughput, merge of 4 partials, serialisation, one full
``evaluate_window`` (drift, quality, service, performance, estimate), and the state size.
The machine is shared and noisy, so every time is also given as a ratio to a baseline
measured in the same run: ``scipy.stats.ks_2samp`` (asymptotic p-value, so that its cost
does not switch algorithm with n) on the 50 raw numeric columns of the window against the
raw reference (what a naive, non-streaming implementation would do).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import ks_2samp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.config import MetricsSettings, ModelSettings
from stream.metrics.evaluate import evaluate_window
from stream.metrics.reference import ReferenceProfile
from stream.metrics.window import WindowState
from stream.results import WindowKey

N_NUM, N_CAT = 50, 10
CATS = [f"v{i}" for i in range(12)]


def make_events(n: int, seed: int, shift: float = 0.0) -> tuple[list[dict[str, Any]], np.ndarray]:
    rng = np.random.default_rng(seed)
    num = rng.normal(shift, 1.0, size=(n, N_NUM))
    cat = rng.integers(0, len(CATS), size=(n, N_CAT))
    prob = rng.random(n)
    lat = rng.exponential(20.0, n)
    num_names = [f"n{j}" for j in range(N_NUM)]
    cat_names = [f"c{j}" for j in range(N_CAT)]
    events = []
    for i in range(n):
        feats: dict[str, Any] = dict(zip(num_names, num[i].tolist(), strict=True))
        feats.update(zip(cat_names, [CATS[k] for k in cat[i]], strict=True))
        p = float(prob[i])
        events.append(
            {
                "request_id": f"{seed}-{i}",
                "model_id": "m",
                "features": feats,
                "probability": p,
                "prediction": int(p >= 0.5),
                "latency_ms": float(lat[i]),
            }
        )
    return events, num


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def fill(evs: list[dict[str, Any]], st: WindowState, batch: int = 500) -> WindowState:
    for s in range(0, len(evs), batch):
        st.add_predictions(evs[s : s + batch])
    return st


def run_size(
    n: int,
    reference: ReferenceProfile,
    ref_num: np.ndarray,
    settings: MetricsSettings,
    model: ModelSettings,
    key: WindowKey,
) -> None:
    events, num = make_events(n, seed=2, shift=0.05)
    labelled = [(e, int(i % 3 == 0)) for i, e in enumerate(events[: n // 2])]
    t_add = best_of(
        lambda: fill(events, WindowState.for_model(model, settings)), 1 if n >= 100_000 else 3
    )
    state = fill(events, WindowState.for_model(model, settings))
    state.add_labelled(labelled)
    quarters = [fill(events[i::4], WindowState.for_model(model, settings)) for i in range(4)]

    def merge4() -> WindowState:
        m = quarters[0]
        for q in quarters[1:]:
            m = m.merge(q)
        return m

    t_merge = best_of(merge4, 3)
    blob = state.to_bytes()
    t_ser = best_of(lambda: WindowState.from_bytes(state.to_bytes()), 3)
    t_eval = best_of(lambda: evaluate_window(state, reference, settings, model, key, 1, 0), 3)
    res = evaluate_window(state, reference, settings, model, key, 1, 0)
    t_base = best_of(
        lambda: [ks_2samp(ref_num[:, j], num[:, j], method="asymp") for j in range(N_NUM)], 3
    )
    print(
        f"{n:>8} {n / t_add:>10,.0f} {t_merge * 1e3:>10.1f} {t_ser * 1e3:>8.1f} "
        f"{t_eval * 1e3:>9.1f} {t_base * 1e3:>12.1f} {t_eval / t_base:>10.2f} "
        f"{len(blob) / 1024:>9.0f} {len(res.drift) + len(res.metrics):>6}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1k and 10k only")
    args = ap.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    settings = MetricsSettings()  # sample_capacity 5 000, correction bh
    model = ModelSettings()
    key = WindowKey("m", "v1", "all", 0, 300_000)

    ref_events, ref_num = make_events(10_000, seed=1)
    t0 = time.perf_counter()
    reference = ReferenceProfile.from_events(ref_events, model)
    t_ref = time.perf_counter() - t0
    print(
        f"reference: 10k rows x {N_NUM}+{N_CAT} features profiled in {t_ref:.2f}s, "
        f"{len(reference.to_bytes()) / 1e6:.2f} MB serialised"
    )
    print(
        f"sample_capacity={settings.sample_capacity}, python {sys.version.split()[0]}, "
        f"numpy {np.__version__}\n"
    )

    header = (
        f"{'events':>8} {'add ev/s':>10} {'merge4 ms':>10} {'ser ms':>8} {'eval ms':>9} "
        f"{'baseline ms':>12} {'eval/base':>10} {'state KB':>9} {'rows':>6}"
    )
    print(header)
    print("-" * len(header))
    for n in sizes:
        run_size(n, reference, ref_num, settings, model, key)

    print("\nstate size while one window grows (5 000-row sample capacity):")
    st = WindowState.for_model(model, settings)
    total = 0
    sizes_kb = []
    chunk, _ = make_events(2_500, seed=3)
    for step in range(1, 9):
        for e in chunk:
            e["request_id"] = f"s{step}-{e['request_id']}"
        st.add_predictions(chunk)
        total += len(chunk)
        sizes_kb.append(len(st.to_bytes()) / 1024)
        print(f"  {total:>7} events -> {sizes_kb[-1]:>7.0f} KB")
    growth = statistics.pstdev(sizes_kb[2:]) / statistics.mean(sizes_kb[2:])
    print(f"  relative spread past capacity: {growth:.4f} (flat)")


if __name__ == "__main__":
    main()
