"""The label-free estimate against realised accuracy and NannyML's CBPE (not a pytest test).

Run: ``.venv/bin/python load_tests/bench_estimate.py [--seed 0] [--seeds 1] [--rows 5000]
[--no-nannyml]``

Two binary models score the same rows (``stream.metrics.synthetic``): one calibrated, one
over-confident (logit x 2.5). A labelled reference of ``--reference`` rows, then six windows
of ``--rows`` rows whose first input drifts (covariate shift, no concept drift); labels are
drawn too, so the realised accuracy of every window is known. For each model it prints the
realised accuracy range, and the mean absolute error of: the scores at face value (the
estimate before calibration), our calibrated estimate (through ``WindowState`` and the
reference profile, as the stream computes it), and NannyML 0.13 CBPE on the same rows; and
how many windows each 3-sigma band covers. This regenerates the table in docs/metrics.md.

NannyML is not a dependency of the project (it pins its own pandas/scikit-learn): on the
first run the script makes a venv in ``.cache/bench-nannyml`` and pip-installs
``nannyml==0.13.1`` there (network to PyPI needed once), then runs ``nannyml_cbpe.py`` in it;
``TIDEWATCH_NANNYML_VENV`` points to another venv that has it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.metrics.estimate import estimate_rows
from stream.metrics.reference import ReferenceProfile
from stream.metrics.synthetic import SHIFTS, binary_sample
from stream.metrics.window import WindowState

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("calibrated", "overconfident")
VENV = Path(os.environ.get("TIDEWATCH_NANNYML_VENV", ROOT / ".cache" / "bench-nannyml"))


def _state(p: np.ndarray, y: np.ndarray | None, tag: str) -> WindowState:
    st = WindowState("binary", 1, sample_capacity=100_000)
    evs = [{"request_id": f"{tag}{i}", "probability": float(v)} for i, v in enumerate(p)]
    st.add_predictions(evs)
    if y is not None:
        st.add_labelled(list(zip(evs, y.tolist(), strict=True)))
    return st


def ours(ref_p: np.ndarray, ref_y: np.ndarray, windows: list[np.ndarray]) -> dict[str, Any]:
    profile = ReferenceProfile.from_bytes(
        ReferenceProfile.from_state(_state(ref_p, ref_y, "ref")).to_bytes())
    out: dict[str, list[float]] = {"est": [], "lo": [], "hi": [], "face": []}
    for k, p in enumerate(windows):
        st = _state(p, None, f"w{k}-")
        for cal, keys in ((profile.calibration, ("est", "lo", "hi")), (None, ("face",))):
            rows = {m: v for m, v, _ in estimate_rows("binary", st.scores, st.labelled_scores,
                                                      cal, {}, z=3.0, min_calibration_rows=500)}
            names = ("expected_accuracy", "expected_accuracy_lower", "expected_accuracy_upper")
            for key, name in zip(keys, names, strict=False):
                out[key].append(float(rows[name]))  # type: ignore[arg-type]
    return out


def nannyml(ref: dict[str, np.ndarray], win: dict[str, np.ndarray], ref_y: np.ndarray,
            win_y: np.ndarray, rows: int) -> dict[str, Any] | None:
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"installing nannyml into {VENV} (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "nannyml==0.13.1",
                        "statsmodels"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        arrays: dict[str, Any] = {"models": np.array(MODELS), "ref_y": ref_y, "win_y": win_y,
                                  "window_rows": np.array(rows)}
        for m in MODELS:
            arrays[f"{m}_ref_p"], arrays[f"{m}_win_p"] = ref[m], win[m]
        np.savez(src, **arrays)
        subprocess.run([str(py), str(ROOT / "load_tests" / "nannyml_cbpe.py"), str(src),
                        str(dst)], check=True)
        result: dict[str, Any] = json.loads(dst.read_text())
        return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="seeds from --seed on")
    ap.add_argument("--rows", type=int, default=5_000, help="rows per window")
    ap.add_argument("--reference", type=int, default=5_000, help="labelled reference rows")
    ap.add_argument("--no-nannyml", action="store_true")
    args = ap.parse_args()

    totals: dict[tuple[str, str], list[float]] = {}
    for seed in range(args.seed, args.seed + args.seeds):
        for key, mae in run(seed, args.rows, args.reference, not args.no_nannyml).items():
            totals.setdefault(key, []).append(mae)
    if args.seeds > 1:
        print(f"\nmean absolute error over {args.seeds} seeds (mean of the per-seed MAEs):")
        for m in MODELS:
            cells = [f"{name} {np.mean(totals[m, name]):.4f}"
                     for name in ("face", "ours", "NannyML") if (m, name) in totals]
            print(f"  {m:<14} " + "   ".join(cells))


def run(seed: int, rows: int, reference: int, with_nannyml: bool) -> dict[tuple[str, str], float]:
    """One seed's table; returns the MAEs by (model, method)."""
    rng = np.random.default_rng(seed)
    ref = binary_sample(rng, reference)
    windows = [binary_sample(rng, rows, shift) for shift in SHIFTS]
    win_y = np.concatenate([w.y for w in windows])
    nml = nannyml(
        ref.scores, {m: np.concatenate([w.scores[m] for w in windows]) for m in MODELS},
        ref.y, win_y, rows) if with_nannyml else None

    print(f"seed {seed}, reference {reference} labelled rows, "
          f"{len(SHIFTS)} windows of {rows} rows, x1 mean {SHIFTS}")
    head = (f"{'scores':<14} {'realised accuracy':>18} {'our estimate':>15} {'face MAE':>9} "
            f"{'our MAE':>8} {'our band':>9} {'NannyML MAE':>12} {'NannyML band':>13}")
    print(head)
    print("-" * len(head))
    out: dict[tuple[str, str], float] = {}
    for m in MODELS:
        real = np.array([np.mean((w.scores[m] >= 0.5) == (w.y == 1)) for w in windows])
        res = ours(ref.scores[m], ref.y, [w.scores[m] for w in windows])
        est, face = np.array(res["est"]), np.array(res["face"])
        inside = int(np.sum((np.array(res["lo"]) <= real) & (real <= np.array(res["hi"]))))
        out[m, "face"] = float(np.mean(np.abs(face - real)))
        out[m, "ours"] = float(np.mean(np.abs(est - real)))
        nml_mae, nml_band = "-", "-"
        if nml is not None:
            n_est = np.array(nml[m]["accuracy"])
            n_se = np.array(nml[m]["sampling_error"])
            out[m, "NannyML"] = float(np.mean(np.abs(n_est - real)))
            nml_mae = f"{out[m, 'NannyML']:.4f}"
            nml_band = f"{int(np.sum(np.abs(n_est - real) <= 3 * n_se))}/{len(real)}"
        print(f"{m:<14} {real.min():>8.3f} .. {real.max():.3f} {est.min():>6.3f} .. "
              f"{est.max():.3f} {out[m, 'face']:>9.4f} {out[m, 'ours']:>8.4f} "
              f"{inside:>7}/{len(real)} {nml_mae:>12} {nml_band:>13}")
        print(f"{'':<14} max |error| ours {np.max(np.abs(est - real)):.4f}")
    return out


if __name__ == "__main__":
    main()
