"""NannyML's CBPE on the benchmark's data; run by bench_estimate.py inside its own venv.

Usage: ``<venv with nannyml>/bin/python nannyml_cbpe.py IN.npz OUT.json``. IN holds, per
model name in ``models``: ``<name>_ref_p``, ``<name>_win_p`` (scores), and the shared
``ref_y``, ``win_y`` labels and ``window_rows``. OUT: per model the estimated accuracy and
its sampling error per window (chunks of ``window_rows``), and whether CBPE calibrated.
Kept apart from the project because NannyML pins its own pandas/scikit-learn stack.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pandas as pd
from nannyml.performance_estimation import CBPE


def main(src: str, dst: str) -> None:
    warnings.filterwarnings("ignore", message="The resulting number of chunks is too low")
    data = np.load(src)
    rows = int(data["window_rows"])
    out = {}
    for name in [str(m) for m in data["models"]]:
        ref_p, win_p = data[f"{name}_ref_p"], data[f"{name}_win_p"]
        ref = pd.DataFrame({"p": ref_p, "pred": (ref_p >= 0.5).astype(int), "y": data["ref_y"]})
        win = pd.DataFrame({"p": win_p, "pred": (win_p >= 0.5).astype(int)})
        est = CBPE(y_pred_proba="p", y_pred="pred", y_true="y", metrics=["accuracy"],
                   problem_type="classification_binary", chunk_size=rows)
        est.fit(ref)
        res = est.estimate(win).filter(period="analysis").to_df()
        out[name] = {
            "accuracy": res[("accuracy", "value")].tolist(),
            "sampling_error": res[("accuracy", "sampling_error")].tolist(),
            "calibrated": bool(est.needs_calibration),
        }
    with open(dst, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
