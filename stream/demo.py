"""Synthetic traffic and the ``make demo`` run.

The traffic is a binary classifier (``demo-fraud``) with numeric and categorical features and
two segment keys. Halfway through, the ``amount`` feature shifts and the model degrades for one
country, so that drift and performance alerts have something to find. Labels arrive for most
predictions, some before their prediction, most after, some never.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Producer

from stream.client import MonitorClient
from stream.config import Settings, load_settings
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

    def __str__(self) -> str:
        return (f"produced {self.predictions} predictions, {self.labels} labels and "
                f"{self.malformed} malformed messages for model {DEMO_MODEL!r}")


def make_events(
    count: int, seed: int, start_ms: int, span_ms: int, label_share: float = 0.8
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Deterministic predictions and labels; the second half drifts (see module docstring)."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(start_ms, start_ms + span_ms, size=count))
    late = ts >= start_ms + span_ms // 2
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


def produce_demo_traffic(
    settings: Settings, events: int = 20_000, seed: int = 7, malformed: int = 20,
    start_ms: int | None = None, span_ms: int = 30 * 60_000,
) -> DemoSummary:
    """Produce the synthetic stream with the SDK, plus raw malformed messages."""
    ensure_topics(settings)
    start = start_ms if start_ms is not None else (int(time.time() * 1000) - span_ms)
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
    return DemoSummary(len(predictions), len(labels), malformed, start, start + span_ms)


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


def run_demo(settings: Settings, events: int = 20_000) -> int:
    """The ``make demo`` job: worker in a child process, traffic, then what it consumed."""
    env = dict(os.environ)
    workdir = Path(".data/demo")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "worker.log"
    print(f"[demo] broker at {settings.kafka.bootstrap}; starting the worker (log: {log_path})")
    ensure_topics(settings)
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "stream.cli", "worker"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        summary = produce_demo_traffic(settings, events=events)
        print(f"[demo] {summary} in {time.monotonic() - t0:.1f} s")
        stats = wait_for_stats(settings.worker.web_port,
                               {"prediction": summary.predictions, "label": summary.labels,
                                "rejected": summary.malformed}, timeout=120, worker=worker)
        print(f"[demo] worker consumed: {json.dumps(stats.get('valid', {}))}")
        print(f"[demo] dead-lettered by reason: {json.dumps(stats.get('rejected', {}))}")
        ok = (stats.get("valid", {}).get("prediction") == summary.predictions
              and stats.get("valid", {}).get("label") == summary.labels)
        print(f"[demo] {'all events consumed' if ok else 'NOT all events consumed'} "
              f"in {time.monotonic() - t0:.1f} s")
        return 0 if ok else 1
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


if __name__ == "__main__":
    sys.exit(run_demo(load_settings()))
