"""Ingest-only throughput: decode + validate of batch messages, in-process (no Kafka).

Run: ``.venv/bin/python load_tests/bench_ingest.py [--events N] [--quick]``

For prediction and label messages of 1, 100 and 500 events (the SDK's batching: one JSON object
per message at batch size 1, a JSON array otherwise), measures events/s of
:func:`stream.events.decode_message` (what the worker runs on every message), against two
references measured in the same run on the same bytes, since the machine is shared and noisy:

- ``orjson.loads`` alone: the floor (parsing without validation); ``decode/orjson`` is the
  factor validation costs on top of parsing;
- ``orjson.loads`` + ``jsonschema`` (``Draft202012Validator`` with the schemas in
  ``schemas/``): what a generic validator would cost; ``speedup`` is why the hand-written
  validator exists.

Every time is the best of three repeats. Events look like the demo's (``stream.demo``):
5 features, 2 segments, probability and latency.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jsonschema
import orjson
from referencing import Registry, Resource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.events import SCHEMA_DIR, EventKind, decode_message, load_schema

MAX_BYTES = 4 * 1024 * 1024
T0 = 1_700_000_000_000


def make_event(kind: EventKind, i: int, rng: random.Random) -> dict[str, Any]:
    ts = T0 + i * 40
    if kind == "label":
        return {"request_id": f"r-{i}", "model_id": "bench", "timestamp": ts + 5_000,
                "label": int(rng.random() < 0.3)}
    p = rng.random()
    device = rng.choice(("ios", "android", "web"))
    return {
        "request_id": f"r-{i}", "model_id": "bench", "model_version": "v1", "timestamp": ts,
        "features": {"amount": round(rng.lognormvariate(3.0, 1.0), 2),
                     "age": float(rng.randint(18, 80)), "device": device,
                     "is_new_user": rng.random() < 0.2,
                     "coupon": None if rng.random() < 0.7 else "SPRING"},
        "prediction": int(p >= 0.5), "probability": round(p, 6),
        "segments": {"country": rng.choice(("DE", "FR", "US", "BR")), "device": device},
        "latency_ms": round(rng.gammavariate(2.0, 6.0), 2),
    }


def make_messages(kind: EventKind, events: int, batch: int) -> list[bytes]:
    """``events`` events packed as the SDK packs them (a bare object when batch == 1)."""
    rng = random.Random(7)
    docs = [make_event(kind, i, rng) for i in range(events)]
    if batch == 1:
        return [orjson.dumps(d) for d in docs]
    return [orjson.dumps(docs[s : s + batch]) for s in range(0, events, batch)]


def schema_validators() -> dict[EventKind, jsonschema.Draft202012Validator]:
    """The JSON Schemas as a generic validator would use them (label refs prediction)."""
    kinds: tuple[EventKind, ...] = ("prediction", "label")
    docs = {name: load_schema(name) for name in kinds}
    uris = {name: f"{SCHEMA_DIR.as_uri()}/{name}.v1.schema.json" for name in docs}
    registry: Registry[Any] = Registry().with_resources(
        (uris[name], Resource.from_contents(doc)) for name, doc in docs.items())
    return {name: jsonschema.Draft202012Validator(dict(doc, **{"$id": uris[name]}),
                                                  registry=registry)
            for name, doc in docs.items()}


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_decode(messages: list[bytes], kind: EventKind) -> int:
    valid = 0
    for message in messages:
        decoded = decode_message(message, kind, MAX_BYTES)
        if decoded.rejected:
            raise AssertionError(f"unexpected reject: {decoded.rejected[0]}")
        valid += len(decoded.valid)
    return valid


def run_orjson(messages: list[bytes]) -> None:
    for message in messages:
        orjson.loads(message)


def run_jsonschema(messages: list[bytes], validator: jsonschema.Draft202012Validator) -> None:
    for message in messages:
        doc = orjson.loads(message)
        for event in doc if type(doc) is list else [doc]:
            if not validator.is_valid(event):
                raise AssertionError("jsonschema rejected a valid event")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000, help="events per measurement")
    ap.add_argument("--quick", action="store_true", help="20k events")
    args = ap.parse_args()
    events = 20_000 if args.quick else args.events
    schema_events = max(events // 10, 1_000)  # jsonschema is slow: fewer events, same rate
    validators = schema_validators()
    print(f"python {sys.version.split()[0]}, orjson {orjson.__version__}; "
          f"{events:,} events per run ({schema_events:,} for jsonschema), best of 3\n")
    header = (f"{'kind':<10} {'batch':>5} {'msg bytes':>10} {'decode ev/s':>12} {'us/ev':>6} "
              f"{'orjson ev/s':>12} {'decode/orjson':>13} {'jsonschema ev/s':>16} "
              f"{'speedup':>8}")
    print(header)
    print("-" * len(header))
    kinds: tuple[EventKind, ...] = ("prediction", "label")
    for kind in kinds:
        for batch in (1, 100, 500):
            messages = make_messages(kind, events, batch)
            t_decode = best_of(partial(run_decode, messages, kind))
            t_orjson = best_of(partial(run_orjson, messages))
            few = make_messages(kind, schema_events, batch)
            t_schema = best_of(partial(run_jsonschema, few, validators[kind]))
            decode_rate, orjson_rate = events / t_decode, events / t_orjson
            schema_rate = schema_events / t_schema
            size = sum(map(len, messages)) / len(messages)
            print(f"{kind:<10} {batch:>5} {size:>10,.0f} {decode_rate:>12,.0f} "
                  f"{1e6 / decode_rate:>6.1f} {orjson_rate:>12,.0f} "
                  f"{t_decode / t_orjson:>12.1f}x {schema_rate:>16,.0f} "
                  f"{decode_rate / schema_rate:>7.1f}x")
    print("\ndecode/orjson: how many times slower than parsing alone the full decode+validate "
          "is;\nspeedup: decode_message events/s over orjson+jsonschema events/s.")


if __name__ == "__main__":
    main()
