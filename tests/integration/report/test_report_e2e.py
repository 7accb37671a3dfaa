"""``tidewatch report`` on a real store, opened in a real headless Chromium.

The store is filled by ``tidewatch backfill`` (drift, performance, estimates, segments,
fairness) plus alert state changes; the page must load offline (no network: every script is
inline), raise no script error, and draw every figure: its own check writes ``ok <n>`` into
``#tw-status``, which ``chromium --dump-dom`` returns after the page ran. A screenshot is kept
beside the report under the test's ``tmp_path``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stream.cli import main
from stream.store.embedded import EmbeddedStore

from ..store.rows import alert
from ..test_backfill_e2e import METRICS, write
from ..test_topology_e2e import T0, events
from ..workers import make_settings

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium is missing: `make test` installs it (apt-get install chromium)"
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=20000",
                           "--host-resolver-rules=MAP * ~NOTFOUND", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_report_renders_every_plot_without_script_errors(tmp_path: Path) -> None:
    reference = write(tmp_path / "reference.jsonl", events(400, seed=99)[0])
    settings, config = make_settings(
        "127.0.0.1:1", tmp_path,
        metrics={**METRICS, "models": {"m": {"reference_path": str(reference),
                                             "protected_attribute": "country"}}})
    preds, labels = events(1_500, seed=7)
    assert main(["backfill", "--config", str(config),
                 "--predictions", str(write(tmp_path / "p.jsonl", preds)),
                 "--labels", str(write(tmp_path / "l.jsonl", labels))]) == 0
    with EmbeddedStore(settings.store) as store:
        store.write_alerts([
            alert(id="a1", model_id="m", window_start=T0, window_end=T0 + 300_000,
                  time=T0 + 300_000),
            alert(id="a2", model_id="m", state="resolved", window_start=T0 + 300_000,
                  window_end=T0 + 600_000, time=T0 + 600_000, message="accuracy back"),
            alert(id="other", model_id="not-m", window_start=T0, window_end=T0 + 300_000),
        ])
    out = tmp_path / "report" / "m.html"
    assert main(["report", "--config", str(config), "--model", "m", "--from", str(T0 - 1),
                 "-o", str(out)]) == 0
    page = out.read_text()
    # Self-contained: no script or stylesheet fetched from anywhere (and Chromium runs with
    # every host name unresolvable, below).
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)
    plots = page.count('class="plotly-graph-div"')
    # Drift of x, c and the prediction; their 3 references; 6 labelled metrics (accuracy,
    # f1, log_loss, precision, recall, roc_auc); segments; fairness; alerts.
    assert plots == 3 + 3 + 6 + 1 + 1 + 1, plots
    assert "accuracy back" in page and "not-m" not in page
    # The reference figures are the latest window's shares beside the reference's, on the
    # reference's bins (the distribution rows the backfill wrote), for x, c and the output.
    beside = re.findall(r"(\w+): latest window beside the reference", page)
    assert sorted(beside) == ["__prediction__", "c", "x"], beside
    for empty_note in ("no fairness rows", "no alert state change", "no reference profile"):
        assert empty_note not in page

    dom = chromium("--dump-dom", out.as_uri())
    status = re.search(r'id="tw-status"[^>]*>([^<]*)<', dom.stdout)
    assert status is not None, dom.stderr[-2000:]
    assert status.group(1) == f"ok {plots}", status.group(1)
    # Every figure has an SVG with at least one trace drawn in it.
    assert dom.stdout.count('class="main-svg"') >= plots
    # Both bar series (reference, window) of each of the 3 distribution figures drew bars.
    assert len(re.findall(r'class="trace bars"', dom.stdout)) >= 2 * 3, dom.stdout.count(
        "bars")
    assert len(re.findall(r'class="point"', dom.stdout)) >= 2 * (10 + 3 + 10)

    shot = tmp_path / "report" / "m.png"
    chromium("--hide-scrollbars", "--window-size=1280,5000", f"--screenshot={shot}",
             out.as_uri())
    assert shot.stat().st_size > 50_000  # a page of plots, not a blank one


def test_report_of_an_unknown_model_is_a_page_that_says_so(tmp_path: Path) -> None:
    settings, config = make_settings("127.0.0.1:1", tmp_path)
    with EmbeddedStore(settings.store) as store:
        store.migrate()
    out = tmp_path / "r.html"
    assert main(["report", "--config", str(config), "--model", "nope", "-o", str(out)]) == 0
    dom = chromium("--dump-dom", out.as_uri())
    assert 'data-plots="0">ok 0<' in dom.stdout
    assert "no drift rows" in dom.stdout
