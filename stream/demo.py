"""Synthetic traffic and the ``make demo`` run.

The traffic is a binary classifier (``demo-fraud``) with numeric and categorical features and
two segment keys. From 3/8 to 6/8 of the span, the ``amount`` feature shifts and the model
degrades for one country, so that drift and performance alerts have something to find, and
then recovers, so that they resolve. Labels arrive for most
predictions, some before their prediction, most after, some never.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml
from confluent_kafka import Producer

from stream.config import Settings, load_settings
from stream.sdk.client import MonitorClient
from stream.topics import confluent_config, ensure_topics

DEMO_MODEL = "demo-fraud"
COUNTRIES = ("DE", "FR", "US", "BR")
DEVICES = ("ios", "android", "web")
MALFORMED_SAMPLES: tuple[bytes, ...] = (
    b'{"request_id": "x1", "model_id": "demo-fraud", "timestamp": 1',  # truncated
    b'{"request_id": "x2", "model_id": "demo-fraud", "timestamp": "yesterday", '
    b'"features": {}, "prediction": 1}',  # bad timestamp
    b'{"model_id": "demo-fraud", "timestamp": 0, "features": {}, "prediction": 1}',  # no id
    b'{"request_id": "x4", "model_id": "demo-fraud", "timestamp": 0, "features": [], '
    b'"prediction": 1}',  # wrong type
    b"\xff\xfe not utf-8",
    b'{"request_id": "x6", "model_id": "demo-fraud", "timestamp": 0, "features": '
    b'{"a": NaN}, "prediction": 1}',  # NaN is not JSON
)


@dataclass(frozen=True)
class DemoSummary:
    predictions: int
    labels: int
    malformed: int
    start_ms: int
    end_ms: int
    #: Rows of the reference profile published on the references topic (0: none).
    reference_rows: int = 0

    def __str__(self) -> str:
        reference = (f" (reference of {self.reference_rows} rows published first)"
                     if self.reference_rows else "")
        return (f"produced {self.predictions} predictions, {self.labels} labels and "
                f"{self.malformed} malformed messages for model {DEMO_MODEL!r}{reference}")


def make_events(
    count: int, seed: int, start_ms: int, span_ms: int, label_share: float = 0.8,
    drift: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Deterministic predictions and labels; the middle drifts (see module docstring)."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(start_ms, start_ms + span_ms, size=count))
    late = (ts >= start_ms + span_ms * 3 // 8) & (ts < start_ms + span_ms * 6 // 8) & drift
    country = rng.choice(len(COUNTRIES), size=count, p=[0.4, 0.3, 0.2, 0.1])
    device = rng.choice(len(DEVICES), size=count)
    amount = rng.lognormal(3.0, 1.0, size=count) * np.where(late, 1.8, 1.0)
    age = rng.normal(40, 12, size=count).round()
    score = 1 / (1 + np.exp(-(0.02 * amount - 2.5 + rng.normal(0, 1, size=count))))
    truth = rng.random(count) < score
    # The model gets worse for Brazil in the second half: labels flip with probability 0.4.
    flip = late & (country == 3) & (rng.random(count) < 0.4)
    truth = np.where(flip, ~truth, truth)
    labelled = rng.random(count) < label_share
    predictions, labels = [], []
    for i in range(count):
        rid = f"demo-{seed}-{i}"
        predictions.append({
            "request_id": rid, "model_id": DEMO_MODEL, "model_version": "v1",
            "timestamp": int(ts[i]),
            "features": {"amount": round(float(amount[i]), 2), "age": float(age[i]),
                         "device": DEVICES[device[i]],
                         "is_new_user": bool(rng.random() < 0.2),
                         "coupon": None if rng.random() < 0.7 else "SPRING"},
            "prediction": int(score[i] >= 0.5), "probability": round(float(score[i]), 6),
            "segments": {"country": COUNTRIES[country[i]], "device": DEVICES[device[i]]},
            "latency_ms": round(float(rng.gamma(2.0, 6.0)), 2),
        })
        if labelled[i]:
            labels.append({"request_id": rid, "model_id": DEMO_MODEL,
                           "timestamp": int(ts[i]) + int(rng.integers(1_000, 3_600_000)),
                           "label": int(truth[i])})
    return predictions, labels


def demo_reference(start_ms: int, span_ms: int) -> list[dict[str, Any]]:
    """The reference: the same traffic without the drift, the span before ``start_ms``,
    labelled (the reference accuracy the performance alerts test against)."""
    reference, labels = make_events(5_000, seed=3, start_ms=start_ms - span_ms,
                                    span_ms=span_ms, drift=False)
    truth = {label["request_id"]: label["label"] for label in labels}
    return [{**e, "label": truth[e["request_id"]]} if e["request_id"] in truth else e
            for e in reference]


def produce_demo_traffic(
    settings: Settings, events: int = 20_000, seed: int = 7, malformed: int = 20,
    start_ms: int | None = None, span_ms: int = 30 * 60_000, reference: bool = True,
) -> DemoSummary:
    """Produce the synthetic stream with the SDK, plus raw malformed messages.

    With ``reference``, first publish the model's reference profile on the references
    topic (what ``tidewatch reference set`` does), so that a worker configured with no
    reference file (docker-compose) has drift rows from the first window."""
    ensure_topics(settings)
    start = start_ms if start_ms is not None else (int(time.time() * 1000) - span_ms)
    reference_rows = 0
    if reference:
        from stream.merge.references import publish_reference
        from stream.metrics.reference import ReferenceProfile, segment_options

        profile = ReferenceProfile.from_events(demo_reference(start, span_ms),
                                               settings.metrics.model(DEMO_MODEL),
                                               **segment_options(settings.metrics))
        publish_reference(settings, DEMO_MODEL, profile)
        reference_rows = profile.rows
    predictions, labels = make_events(events, seed, start, span_ms)
    with MonitorClient.from_settings(settings) as client:
        early = labels[: len(labels) // 10]  # a tenth of the labels go out before predictions
        for label in early:
            client.log_label(label)
        for prediction in predictions:
            client.log_prediction(prediction)
        for label in labels[len(early):]:
            client.log_label(label)
    if malformed:
        raw = Producer(confluent_config(settings.kafka))
        for i in range(malformed):
            raw.produce(settings.topics.predictions, key=f"bad-{i}".encode(),
                        value=MALFORMED_SAMPLES[i % len(MALFORMED_SAMPLES)])
        raw.flush(30)
    return DemoSummary(len(predictions), len(labels), malformed, start, start + span_ms,
                       reference_rows)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_for_stats(
    port: int, expect: dict[str, int], timeout: float,
    worker: subprocess.Popen[bytes] | None = None,
) -> dict[str, Any]:
    """Poll the worker's ``/stats`` until the counters reach ``expect`` (or time runs out)."""
    deadline = time.monotonic() + timeout
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}")
        try:
            stats = _get_json(f"http://127.0.0.1:{port}/stats")
        except OSError:
            time.sleep(0.5)
            continue
        valid = stats.get("valid", {})
        rejected = sum(stats.get("rejected", {}).values())
        if (valid.get("prediction", 0) >= expect["prediction"]
                and valid.get("label", 0) >= expect["label"]
                and rejected >= expect["rejected"]):
            return stats
        time.sleep(0.5)
    return stats


DEMO_DIR = Path(".data/demo")
WINDOW_S = 300
SPAN_MS = 40 * 60_000


def demo_settings(settings: Settings) -> tuple[Settings, Path]:
    """The demo's settings: the broker of ``settings``, everything else in .data/demo."""
    reference = DEMO_DIR / "reference.jsonl"
    doc: dict[str, Any] = {
        "kafka": settings.kafka.model_dump(mode="json"),
        "topics": {"partitions": 4},
        "worker": {"data_dir": str(DEMO_DIR / "worker"), "web_port": _free_port()},
        "windows": {"size_s": WINDOW_S, "allowed_lateness_s": 10, "idle_partition_timeout_s": 5,
                    "revision_interval_s": 1, "tick_interval_s": 0.5},
        "metrics": {"segments": ["country", "device"], "min_sample_size": 50,
                    "models": {DEMO_MODEL: {"reference_path": str(reference.resolve()),
                                            "protected_attribute": "country"}}},
        "store": {"kind": "embedded", "path": str((DEMO_DIR / "chdb").resolve()),
                  "flush_interval_s": 0.5},
    }
    path = DEMO_DIR / "tidewatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_settings(path), path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sql(settings: Settings, sql: str, **params: str) -> list[dict[str, Any]]:
    from stream.store.commands import run_sql

    rows: list[dict[str, Any]] = orjson.loads(run_sql(settings, sql, "json", params))
    return rows


def _show(title: str, settings: Settings, sql: str, **params: str) -> None:
    from stream.store.commands import run_sql

    print(f"\n[demo] {title}")
    print(run_sql(settings, sql, "table", params or None), end="")


def run_demo(base: Settings, events: int = 20_000) -> int:
    """The ``make demo`` job: worker in a child process, traffic, then what it found."""
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    now = int(time.time() * 1000)
    start = now - now % (WINDOW_S * 1000) - SPAN_MS
    reference = demo_reference(start, SPAN_MS)
    (DEMO_DIR / "reference.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in reference))
    settings, config = demo_settings(base)
    log_path = DEMO_DIR / "worker.log"
    print(f"[demo] broker at {settings.kafka.bootstrap}; results in {settings.store.path}")
    print(f"[demo] starting the worker (settings {config}, log {log_path})")
    ensure_topics(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEWATCH_")}
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker", "--config", str(config)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        summary = produce_demo_traffic(settings, events=events, start_ms=start, span_ms=SPAN_MS)
        print(f"[demo] {summary} in {time.monotonic() - t0:.1f} s "
              f"(event time: the last {SPAN_MS // 60_000} minutes, {WINDOW_S // 60}-minute "
              "windows; from 3/8 to 6/8 of it the inputs drift and Brazil's labels go "
              "bad)")
        stats = wait_for_stats(settings.worker.web_port,
                               {"prediction": summary.predictions, "label": summary.labels,
                                "rejected": summary.malformed}, timeout=120, worker=worker)
        print(f"[demo] worker consumed: {json.dumps(stats.get('valid', {}))}")
        print(f"[demo] dead-lettered by reason: {json.dumps(stats.get('rejected', {}))}")
        windows = SPAN_MS // (WINDOW_S * 1000)
        done = _wait_for_windows(settings, windows, summary.labels, worker, timeout=120)
        print(f"[demo] {'all' if done else 'NOT all'} {windows} windows evaluated, every label "
              f"joined, in {time.monotonic() - t0:.1f} s")
        _wait_for_alert_evaluator(settings, windows, worker)
        _show_results(settings)
        return 0 if done else 1
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        print(f"\n[demo] worker stopped. Query the results yourself, e.g.:\n"
              f"  .venv/bin/tidewatch sql --config {config} "
              "\"SELECT * FROM window_metrics_latest LIMIT 10\"")
        _write_report(settings, config)


def _write_report(settings: Settings, config: Path) -> Path | None:
    """The HTML report of the run, written once the worker has let go of the embedded store
    (it holds the folder while it runs); says where, or why not."""
    from stream.errors import StreamError
    from stream.events import MAX_EPOCH_MS
    from stream.merge.references import FileReferences
    from stream.report.data import load_report_data
    from stream.report.page import write_report
    from stream.store import open_store

    try:
        with open_store(settings) as store:
            data = load_report_data(store, DEMO_MODEL, 0, MAX_EPOCH_MS)
        reference = FileReferences(settings).get(DEMO_MODEL, "")
        path = write_report(DEMO_DIR / "report.html", data, reference).resolve()
    except (StreamError, OSError) as exc:
        print(f"[demo] no report: {exc}")
        return None
    print(f"[demo] report: {path} (open it in a browser; again with .venv/bin/tidewatch "
          f"report --config {config} --model {DEMO_MODEL})")
    return path


def _wait_for_windows(settings: Settings, windows: int, labels: int,
                      worker: subprocess.Popen[bytes], timeout: float) -> bool:
    sql = ("SELECT count() AS windows, sum(labelled_count) AS labelled FROM window_metrics_latest"
           " WHERE model_id = {model:String} AND segment = 'all' AND family = 'performance'"
           " AND metric = 'accuracy'")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}")
        row = _sql(settings, sql, model=DEMO_MODEL)[0]
        if int(row["windows"]) >= windows and int(row["labelled"] or 0) >= labels:
            return True
        time.sleep(1)
    return False


def _wait_for_alert_evaluator(settings: Settings, windows: int,
                              worker: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """The alert evaluator runs after the store agent: let it see every window."""
    url = f"http://127.0.0.1:{settings.worker.web_port}/stats"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        if int(_get_json(url).get("alerts", {}).get("windows", 0)) >= windows:
            time.sleep(2)  # and the revisions right behind them
            return
        time.sleep(1)


def _show_results(settings: Settings) -> None:
    queries = Path(__file__).resolve().parent.parent / "clickhouse" / "queries"
    _show("per window: volume, latency, realised accuracy (with coverage) and the label-free "
          "estimate", settings, """
        SELECT window_start,
               anyIf(value, metric = 'count') AS predictions,
               round(anyIf(value, metric = 'latency_p90'), 1) AS latency_p90_ms,
               round(anyIf(value, metric = 'accuracy'), 3) AS accuracy,
               round(anyIf(value, metric = 'expected_accuracy'), 3) AS estimated_accuracy,
               round(anyIf(coverage, metric = 'accuracy'), 3) AS coverage,
               anyIf(value, metric = 'late_events') AS late
        FROM window_metrics_latest
        WHERE model_id = {model:String} AND segment = 'all'
        GROUP BY window_start ORDER BY window_start""", model=DEMO_MODEL)
    _show("latest drift per feature (clickhouse/queries/latest_drift_per_feature.sql)",
          settings, (queries / "latest_drift_per_feature.sql").read_text(),
          model_id=DEMO_MODEL)
    _show("drifted features in the last day (drifted_features_last_day.sql)", settings,
          (queries / "drifted_features_last_day.sql").read_text())
    _show("segments ranked by drift (segments_ranked_by_drift.sql)", settings,
          (queries / "segments_ranked_by_drift.sql").read_text(), model_id=DEMO_MODEL)
    _show("accuracy per country in the last window: the segment that got worse", settings, """
        SELECT segment, round(value, 3) AS accuracy, labelled_count
        FROM window_metrics_latest
        WHERE model_id = {model:String} AND metric = 'accuracy' AND segment LIKE 'country=%'
          AND window_start = (SELECT max(window_start) FROM window_metrics_latest
                              WHERE model_id = {model:String})
        ORDER BY accuracy""", model=DEMO_MODEL)
    _show("alerts that fired and resolved (docs/alerts.md; live: tidewatch alerts tail)",
          settings, """
        SELECT window_start, rule, state, segment, feature, round(value, 4) AS value,
               op, threshold,
               arrayStringConcat(arrayMap(c -> JSONExtractString(c, 'name'),
                                          JSONExtractArrayRaw(contributors)), ', ') AS look_at
        FROM alerts FINAL
        WHERE model_id = {model:String}
        ORDER BY time, rule""", model=DEMO_MODEL)
    _show("fairness between countries, per window", settings, """
        SELECT window_start, metric, round(value, 3) AS value
        FROM window_metrics_latest
        WHERE model_id = {model:String} AND family = 'fairness'
        ORDER BY window_start, metric""", model=DEMO_MODEL)


if __name__ == "__main__":
    sys.exit(run_demo(load_settings()))
