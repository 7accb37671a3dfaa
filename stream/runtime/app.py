"""The Faust app: wires topics, tables, agents and web views; the logic lives elsewhere.

::

  predictions ─┐                        partials (key: window)          results (key: row)
  ground_truth ┼─> stage1 agent ──────> stage2 agent ──────────────────> store agent
  ticks ───────┘   ingest, join,        merge partitions, evaluate,     ClickHouse
                   windows (per input   revise (per window)
                   partition)

All four topics and the tables have the same partition count. The input topics and ticks are
co-partitioned, so partition *p* of each lands on one worker and the join stays local; the
tables are written from the partition being processed, as Faust requires. Agent concurrency
stays at 1 (Faust can commit past an in-flight message with more); parallelism comes from
partitions and workers. Acks are manual (``noack``): see :mod:`stream.windows.partition` for why a
message is acked only when what it fed is safely downstream.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any, cast

import faust
import mode
import orjson
from faust.types import TP
from faust.web import Request, Response, View

from stream.alerts.evaluator import window_model_key
from stream.config import Settings
from stream.ingest.dead_letters import DeadLetter, Ingest, Source
from stream.join.index import join_index
from stream.merge.sink import decode_results, encode_results
from stream.merge.stage import REVISE_AFTER, MergePlan, MergeStage, References
from stream.runtime import faust_fixes
from stream.runtime.acks import InOrderAcks
from stream.runtime.contiguity import BrokerReader, Contiguity, RefetchedEvent
from stream.runtime.durable import AckAfterDelivery, WriteLog, tracked_table
from stream.runtime.flow import InputFlow
from stream.runtime.groups import PlanQueue, more_waiting
from stream.runtime.telemetry import CONTENT_TYPE, Sources, Telemetry
from stream.store import Store
from stream.topics import PARTIALS_MAX_BYTES, internal_topics
from stream.windows.eventtime import CatchUp
from stream.windows.partition import PartitionStage
from stream.windows.plan import Plan, merge_plans

log = logging.getLogger(__name__)

# An agent that raises stops the whole worker (non-zero exit) instead of being restarted in
# place, as Faust does by default. A restarted agent would start with fresh in-order ack
# bookkeeping while the message it failed on stays unacked: acking the messages after it lets
# Faust commit past it (see stream.runtime.acks), and it would be lost. A worker that exits is
# restarted by its supervisor (systemd, Kubernetes, compose) and reads again everything
# unacked. The error says why in the log.
CRASH = mode.CrashingSupervisor


def _broker_credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if not kafka.security_protocol.startswith("SASL"):
        return ssl.create_default_context() if kafka.security_protocol == "SSL" else None
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
    return faust.SASLCredentials(
        username=kafka.sasl_username or "",
        password=password,
        mechanism=kafka.sasl_mechanism or "PLAIN",
        ssl_context=ssl.create_default_context()
        if kafka.security_protocol == "SASL_SSL" else None,
    )


def _raw_topic(app: faust.App, name: str, partitions: int, **kw: Any) -> faust.TopicT:
    return app.topic(name, partitions=partitions, key_serializer="raw",
                     value_serializer="raw", **kw)


def create_app(
    settings: Settings, sources: int, references: References, reader: BrokerReader,
    store: Store | None = None,
) -> faust.App:
    """Build the worker's Faust app; ``sources`` is the input topics' partition count.

    ``reader`` reads what Faust did not hand over (see :mod:`stream.runtime.contiguity`); the caller
    owns it and closes it when the app has stopped."""
    faust_fixes.apply()
    worker = settings.worker
    topics = settings.topics
    app = faust.App(
        worker.app_id,
        broker=f"kafka://{settings.kafka.bootstrap}",
        broker_credentials=_broker_credentials(settings),
        store=worker.table_store,
        table_standby_replicas=worker.standby_replicas,
        # Per app: a RocksDB table folder belongs to one app's changelogs (Faust keeps the
        # changelog offset it has applied inside it).
        datadir=str(worker.data_dir / worker.app_id),
        topic_partitions=sources,
        topic_replication_factor=topics.replication_factor,
        web_enabled=worker.web_enabled,
        web_port=worker.web_port,
        web_bind="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        # Per partition and fetch: a larger frame still comes (KIP-74); larger fetches let
        # one input run further ahead of the other before a pause takes effect (flow).
        consumer_max_fetch_size=1024 * 1024,
        producer_max_request_size=PARTIALS_MAX_BYTES,
        stream_buffer_maxsize=64,
        stream_wait_empty=False,  # messages wait for their windows; never block a rebalance
    )
    names = internal_topics(settings)
    inputs = app.topic(topics.predictions, topics.labels, names["ticks"],
                       key_serializer="raw", value_serializer="raw")
    ticks = _raw_topic(app, names["ticks"], sources)
    partials = _raw_topic(app, names["partials"], sources)
    results = _raw_topic(app, names["results"], sources)
    reference_topic = _raw_topic(app, names["references"], 1)
    windows_topic = _raw_topic(app, names["windows"], sources)
    alerts_on = settings.alerts.enabled
    dead_letters = _raw_topic(app, topics.dead_letter, sources)

    # What each agent must see delivered before it acks (see stream.runtime.durable).
    writes1, writes2 = WriteLog(), WriteLog()

    store_options: dict[str, Any] = {}
    if worker.table_store.startswith("rocksdb"):
        budget = worker.rocksdb_memory_mb * 1024 * 1024
        store_options = {"write_buffer_size": budget // 4, "max_write_buffer_number": 2,
                         "block_cache_size": budget // 2}

    def table(name: str, writes: WriteLog, value_type: type = bytes) -> Any:
        return tracked_table(app, name, writes, partitions=sources, key_type=bytes,
                             value_type=value_type, options=dict(store_options) or None)

    # The join state and the models' closed-through marks share one table, so that one
    # changelog partition carries a checkpoint's entries before its marks
    # (stream.windows.partition).
    joins = table("joins", writes1)
    perf, finals = table("perf", writes2), table("finals", writes2)

    async def send_dead_letter(letter: DeadLetter) -> None:
        sent = await dead_letters.send(key=letter.key, value=letter.value,
                                       headers=letter.headers)
        writes1.add(cast("asyncio.Future[Any]", sent))  # acked with the message once delivered

    ingest = Ingest({topics.predictions: "prediction", topics.labels: "label"},
                    worker.max_message_bytes, send_dead_letter)
    stages: dict[int, PartitionStage] = {}
    merges: dict[int, MergeStage] = {}

    buffer_limit = 4 * worker.batch_size

    async def backpressure() -> None:
        """Table writes queue changelog messages that Faust sends in the background; wait
        for that queue to drain, or a backlog grows it (and memory) without bound."""
        buffer = app.producer.buffer
        while buffer.size > buffer_limit:
            await asyncio.sleep(0.005)

    #: Stage 1's plans of the current group of messages (stream.runtime.groups).
    group = PlanQueue()

    async def run_plans(acks: AckAfterDelivery) -> None:
        """Run the group's plans, per stage in the order they were made: send their frames
        (awaiting delivery), then one checkpoint and one round of acks and flow control per
        stage, and backpressure once."""
        for stage, plans in group.take():
            sent = []
            for plan in plans:
                sent.extend([await partials.send(key=key, value=value)
                             for key, value in plan.frames])
                for frame in plan.broadcast:
                    sent.extend([await partials.send(value=frame, partition=q)
                                 for q in range(sources)])
            for future in sent:
                await future  # delivered, before progress is recorded and offsets may move
            handles = stage.commit(merge_plans(plans))
            current = stages.get(stage.partition) is stage  # else revoked: replayed elsewhere
            await acks.after(writes1.take(), handles if current else [])  # once writes are in
            if current:
                flow.control(stage)
        await backpressure()

    #: Each agent's in-order acks, by agent name (revoked partitions are forgotten there).
    ack_orders: dict[str, InOrderAcks] = {}
    # Offsets Faust did not hand over are read beside it (see stream.runtime.contiguity).
    contiguity = Contiguity(reader, {topics.predictions, topics.labels,
                                     partials.get_topic_name(),
                                     windows_topic.get_topic_name()})

    catch_ups: dict[int, CatchUp] = {}
    flow = InputFlow(lambda: app.consumer, contiguity, topics.predictions, topics.labels)

    async def caught_up(partition: int) -> float | None:
        """This partition's caught-up time (see stream.windows.eventtime): the broker's end offset
        now, marked against the next offset the agent expects. Asked of the broker, not the
        fetcher, whose view is stale for a partition it stopped fetching (a full buffer, a
        rebalance): a window closed by mistake turns the rest late.

        Then the labels partition's end, asked after it: every label appended before the
        predictions up to that end is below it (see :class:`stream.runtime.flow.InputFlow`)."""
        tp = TP(topics.predictions, partition)
        asked_at = time.time()
        end = await asyncio.to_thread(reader.end_offset, topics.predictions, partition)
        labels = TP(topics.labels, partition)
        await contiguity.start(labels, topics.labels, partition)  # from the committed offset
        flow.ends(partition, end, await asyncio.to_thread(reader.end_offset, topics.labels,
                                                           partition))
        expected = contiguity.expected(tp)
        if expected is None:  # not known since the assignment: not proven caught up
            return None
        marks = catch_ups.setdefault(partition, CatchUp())
        marks.mark(asked_at, end, expected)
        return marks.caught_up

    def acker(stream: Any) -> Any:
        async def ack(event: Any) -> None:
            if not isinstance(event, RefetchedEvent):  # Faust never saw those
                await stream.ack(event)
        return ack

    def manual_acks(name: str, stream: Any) -> tuple[Any, InOrderAcks, AckAfterDelivery]:
        """An agent's stream with manual acks: acked in offset order, each once the table
        writes before it are delivered (stream.runtime.acks, stream.runtime.durable)."""
        manual = stream.noack()
        in_order = ack_orders[name] = InOrderAcks(acker(manual))
        return manual, in_order, AckAfterDelivery(in_order.done)

    async def contiguous(stream: Any, in_order: InOrderAcks) -> Any:
        """The stream's events, each partition's offsets without holes or repeats."""
        async for event in stream.events():
            before = await contiguity.admit(event.message)
            if before is None:
                continue
            for item in [*before, event]:
                in_order.register(item)
                yield item

    def stage_for(partition: int) -> PartitionStage:
        stage = stages.get(partition)
        if stage is None:
            stage = stages[partition] = PartitionStage(partition, settings, joins,
                                                       join_index(settings, partition))
        return stage

    async def process1(event: Any) -> None:
        """One prediction or label message (from Faust, or read beside it); its plan waits
        for the group's end (:func:`run_plans`)."""
        message = event.message
        stage = stage_for(message.partition)
        source = Source(message.topic, message.partition, message.offset)
        flow.processed(message)
        decoded = await ingest.handle(event.value, message.key, source)
        stage.on_rejected(decoded.rejected, ingest.kind_of(message.topic), message.offset)
        if not decoded.valid:  # acked at the checkpoint that stores its reject counts
            group.add(stage, Plan(acks=[event]))
        elif message.topic == topics.predictions:
            group.add(stage, stage.on_predictions(decoded.valid, message.offset, event))
        else:
            group.add(stage, stage.on_labels(decoded.valid, message.offset, event))

    last_tick: dict[int, float] = {}

    async def tick1(event: Any, in_order: InOrderAcks, acks: AckAfterDelivery) -> None:
        """A tick: first what Faust dropped at the end of this partition's inputs."""
        partition = event.message.partition
        last_tick[partition] = time.monotonic()
        for topic in (topics.predictions, topics.labels):
            tp = TP(topic, partition)
            if tp in flow.paused:  # held back on purpose (flow control)
                continue
            try:
                highwater = app.consumer.highwater(tp)
            except Exception:  # not assigned (any more)
                continue
            taken_to = faust_fixes.client_position(app.consumer, tp)
            while items := await contiguity.catch_up(tp, highwater, taken_to):
                for item in items:  # a long tail: max_read at a time, all in this tick
                    in_order.register(item)
                    await process1(item)
                    if group.full():
                        await run_plans(acks)
        stage = stage_for(partition)
        plan = stage.tick(await caught_up(partition))
        plan.acks.append(event)
        group.add(stage, plan, message=False)
        await run_plans(acks)

    @app.agent(inputs, name="stage1", concurrency=1, supervisor_strategy=CRASH)
    async def stage1_agent(stream: Any) -> None:
        manual, in_order, acks = manual_acks("stage1", stream)
        handed_over = manual.channel.queue  # what Faust's fetch loop gave the stream
        async for event in contiguous(manual, in_order):
            if event.message.topic not in (topics.predictions, topics.labels):
                await tick1(event, in_order, acks)  # ends the group
                continue
            await process1(event)
            if group.full() or not await more_waiting(handed_over):
                await run_plans(acks)

    async def run2(acks: AckAfterDelivery, partition: int, merge: MergeStage,
                   plan: MergePlan) -> None:
        """Send a stage 2 plan's rows (awaiting delivery), commit, ack."""
        sent = []
        for result in plan.results:
            for key, value in encode_results(result):  # one record per window
                sent.append(await results.send(key=key, value=value))
                model_key = window_model_key(result) if alerts_on else None
                if model_key is not None:  # the same rows, keyed by model (stream.alerts)
                    sent.append(await windows_topic.send(key=model_key, value=value))
        sent.extend([await reference_topic.send(key=model_id.encode(), value=profile.to_bytes())
                     for model_id, profile in plan.references])
        for future in sent:
            await future
        handles = merge.commit(plan)
        await acks.after(writes2.take(), handles if merges.get(partition) is merge else [])

    @app.agent(partials, name="stage2", concurrency=1, supervisor_strategy=CRASH)
    async def stage2_agent(stream: Any) -> None:
        manual, in_order, acks = manual_acks("stage2", stream)
        handed_over = manual.channel.queue
        unrevised: dict[int, int] = {}  # per partition, messages read while windows wait
        async for event in contiguous(manual, in_order):
            partition = event.message.partition
            merge = merges.get(partition)
            if merge is None:
                merge = merges[partition] = MergeStage(partition, settings, sources, perf,
                                                       finals, references)
            await run2(acks, partition, merge, merge.on_frame(event.value, event))
            if not merge.to_revise:
                continue
            # Revised while this partition's message is the current event: Faust's RocksDB
            # tables read and write the current event's partition.
            unrevised[partition] = unrevised.get(partition, 0) + 1
            if unrevised[partition] >= REVISE_AFTER or not await more_waiting(handed_over):
                unrevised[partition] = 0
                await run2(acks, partition, merge, merge.revise_pending())

    if store is not None:
        @app.agent(results, name="store", concurrency=1, supervisor_strategy=CRASH)
        async def store_agent(stream: Any) -> None:
            async for batch in stream.take(2_000, within=settings.store.flush_interval_s):
                rows = decode_results(batch)
                started = time.perf_counter()
                await store.write_async(rows)
                await asyncio.to_thread(store.flush)  # stored before these offsets commit
                telemetry.stored(len(batch), time.perf_counter() - started)

    alert_stats: dict[str, int] = {}
    buffer = getattr(store, "buffer", None)  # the server store's write buffer
    telemetry = Telemetry(Sources(
        ingest.stats, stages, merges, lambda: positions(), contiguity.counters, alert_stats,
        (lambda: int(buffer.pending_rows)) if buffer is not None else None))
    if alerts_on:
        from stream.alerts.agent import AlertPublisher

        writes3 = WriteLog()
        alert_state = table("alert_state", writes3)
        publisher = AlertPublisher(settings, references, alert_state, store,
                                   app.topic(topics.alerts, key_serializer="raw",
                                             value_serializer="raw"), results, alert_stats)

        @app.agent(windows_topic, name="alerts", concurrency=1, supervisor_strategy=CRASH)
        async def alerts_agent(stream: Any) -> None:
            manual, in_order, acks = manual_acks("alerts", stream)
            async for event in contiguous(manual, in_order):
                await publisher.handle(event.message.key, event.value)
                await acks.after(writes3.take(), [event])

    @app.timer(settings.windows.tick_interval_s)  # type: ignore[untyped-decorator]
    async def send_ticks() -> None:
        """A tick per assigned partition, through Kafka, so that closing and expiry run
        inside stream iteration (the only place Faust lets tables be written)."""
        for tp in app.assignor.assigned_actives():
            if tp.topic == topics.predictions:
                await ticks.send(value=b"tick", partition=tp.partition)

    @app.on_partitions_revoked.connect
    async def forget(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Revoked partitions are rebuilt by their next owner from the unacked messages."""
        revoked = set(args[0]) if args else set()
        flow.forget(revoked)
        contiguity.forget(revoked)
        for in_order in ack_orders.values():
            in_order.forget(revoked)
        for tp in revoked:
            if tp.topic == topics.predictions:
                stage = stages.pop(tp.partition, None)
                telemetry.retire(stage1=stage)
                if stage is not None:
                    stage.joins.close()
                catch_ups.pop(tp.partition, None)
            elif tp.topic == partials.get_topic_name():
                telemetry.retire(merge=merges.pop(tp.partition, None))

    def positions() -> dict[str, Any]:
        """Where each input partition stands, to diagnose a stuck one: the next offset the
        agent expects, seconds since it had a message, the partition's end, how far the
        Kafka client has handed records to Faust, and whether it is paused. Beside it,
        ``tick_age_s``: seconds since each partition's last tick reached stage 1."""
        out: dict[str, Any] = {}
        known = contiguity.positions()
        try:
            assignment = app.consumer.assignment()
        except Exception:  # the web server starts before the consumer
            assignment = set()
        assigned = {tp for tp in assignment if contiguity.guards(tp.topic)}
        for tp in sorted(assigned | set(known)):
            expected, quiet = known.get(tp, (None, None))
            try:
                highwater = app.consumer.highwater(tp)
            except Exception:  # not assigned (any more)
                highwater = None
            out[f"{tp.topic}[{tp.partition}]"] = {
                "next": expected, "quiet_s": quiet, "highwater": highwater,
                "client_position": faust_fixes.client_position(app.consumer, tp),
                "assigned": tp in assigned, "paused": tp in flow.paused}
        return out

    @app.page("/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            body = {
                **ingest.stats.as_dict(),
                "offsets": {**contiguity.counters, "positions": positions(),
                            "tick_age_s": {p: round(time.monotonic() - t, 1)
                                           for p, t in sorted(last_tick.items())}},
                "groups": dict(group.taken), "flow": dict(flow.switches),
                "partitions": {str(p): s.stats() for p, s in sorted(stages.items())},
                "merge": {str(q): m.stats() for q, m in sorted(merges.items())},
                "alerts": dict(alert_stats),
            }
            return self.bytes(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
                              content_type="application/json")

    @app.page("/metrics")
    class Metrics(View):
        """Prometheus exposition (docs/operations.md), read from the same state as /stats."""

        async def get(self, request: Request) -> Response:
            return self.bytes(telemetry.exposition(), content_type=CONTENT_TYPE)

    if store is not None:
        from stream.store.sqlapi import run_sql_request, start_sql_token

        sql_store, sql_token = store, start_sql_token(settings)

        @app.page("/sql")
        class Sql(View):
            async def post(self, request: Request) -> Response:
                headers = request.headers
                status, body = run_sql_request(
                    sql_store, await request.read(), token=sql_token,
                    content_type=headers.get("Content-Type"),
                    authorization=headers.get("Authorization"), origin=headers.get("Origin"))
                return self.bytes(body, status=status,
                                  content_type="text/plain")

    return app
