"""The floor under the worker: a Faust agent that only decodes the same messages.

Run under a broker: ``.venv/bin/python tools/kafka/local_kafka.py run -- .venv/bin/python
load_tests/bench_faust_floor.py [--events 150000] [--batch 100]``

The worker is a Faust app; part of its CPU per event is Faust's and aiokafka's per-message
path (fetch, the stream's iteration, acks), which no change of ours removes. This measures it:
``make bench``'s stream (:func:`bench_stage.messages`) is produced to fresh topics, then a Faust
worker with the worker's consumer settings and one agent over both topics, doing nothing but
``orjson.loads`` per message, consumes it; its CPU per event is the floor. Printed: events per
CPU-second of that agent for the batch size asked, to set beside ``make bench``'s worker figure
(same stream, same machine, so the ratio is what to read).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def produce(bootstrap: str, tag: str, events: int, batch: int) -> int:
    """The stream to ``fpred-<tag>`` and ``flabels-<tag>`` (4 partitions); events sent."""
    from bench_stage import messages
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = {"prediction": f"fpred-{tag}", "label": f"flabels-{tag}"}
    for future in admin.create_topics([NewTopic(n, 4, 1) for n in names.values()]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent = 0
    for kind, partition, raw in messages(events, batch, 4):
        producer.produce(names[kind], raw, partition=partition)
        sent += raw.count(b'"request_id"')
        producer.poll(0)
    producer.flush(60)
    return sent


def agent_main(bootstrap: str, tag: str, expected: int) -> None:
    """The Faust worker: one agent, both topics, orjson.loads per message; exits once it has
    seen ``expected`` events, printing its CPU seconds."""
    import faust
    import orjson

    # Faust's data directory defaults to ./{app id}-data: a temporary one, not the checkout.
    app = faust.App(f"floor-{tag}", broker=f"kafka://{bootstrap}", store="memory://",
                    datadir=tempfile.mkdtemp(prefix="floor-"),
                    web_enabled=False, consumer_auto_offset_reset="earliest",
                    consumer_max_fetch_size=1024 * 1024, stream_buffer_maxsize=64,
                    topic_partitions=4)
    inputs = app.topic(f"fpred-{tag}", f"flabels-{tag}", key_serializer="raw",
                       value_serializer="raw")
    seen = [0, 0.0]

    @app.agent(inputs)
    async def floor(stream):  # type: ignore[no-untyped-def]
        async for value in stream:
            doc = orjson.loads(value)
            seen[0] += len(doc) if type(doc) is list else 1
            if not seen[1]:
                seen[1] = cpu_s()
            if seen[0] >= expected:
                print(f"FLOOR {seen[0]} {cpu_s() - seen[1]:.3f}", flush=True)
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000, help="predictions")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--agent", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.agent:
        agent_main(args.agent[0], args.agent[1], int(args.agent[2]))
        return
    bootstrap = os.environ["TIDEWATCH_KAFKA__BOOTSTRAP"]
    tag = uuid.uuid4().hex[:8]
    sent = produce(bootstrap, tag, args.events, args.batch)
    started = time.time()
    out = subprocess.run([sys.executable, __file__, "--agent", bootstrap, tag, str(sent)],
                         capture_output=True, text=True, timeout=900)
    # Faust sends the agent's stdout to its log (stderr).
    line = next((x[x.index("FLOOR"):] for x in (out.stdout + out.stderr).splitlines()
                 if "FLOOR " in x), None)
    if line is None:
        print(out.stdout[-2000:], out.stderr[-4000:])
        raise SystemExit("the Faust agent did not finish")
    _, seen, cpu = line.split()
    print(f"Faust agent (decode only), {int(seen):,} events in {args.batch}-event messages: "
          f"{int(seen) / float(cpu):,.0f} events per CPU-second "
          f"({float(cpu):.2f} CPU-s from its first message; {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
