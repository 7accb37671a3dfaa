"""The ``tidewatch`` command line: the worker, demo traffic, and the store commands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from stream.config import load_settings
from stream.errors import StreamError
from stream.events import MAX_EPOCH_MS
from stream.store.commands import add_store_commands


def _timestamp_arg(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _worker(args: argparse.Namespace) -> int:
    from stream.runtime.worker import run_worker

    return run_worker(load_settings(args.config), loglevel=args.loglevel)


def _demo_produce(args: argparse.Namespace) -> int:
    from stream.demo import produce_demo_traffic

    summary = produce_demo_traffic(
        load_settings(args.config), events=args.events, seed=args.seed, malformed=args.malformed,
        reference=not args.no_reference,
    )
    print(summary)
    return 0


def _reference_set(args: argparse.Namespace) -> int:
    from stream.merge.references import publish_reference
    from stream.metrics.reference import ReferenceProfile, segment_options
    from stream.topics import ensure_topics

    settings = load_settings(args.config)
    ensure_topics(settings)
    profile = ReferenceProfile.from_file(args.file, settings.metrics.model(args.model),
                                         **segment_options(settings.metrics))
    size = publish_reference(settings, args.model, profile)
    print(f"reference for {args.model}: {profile.rows} rows, {len(profile.columns)} columns, "
          f"{size} bytes, published; every worker uses it from now on")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from stream.demo import run_demo

    return run_demo(load_settings(args.config), events=args.events)


def _alerts_tail(args: argparse.Namespace) -> int:
    from stream.alerts.tail import tail_alerts

    tail_alerts(load_settings(args.config), from_beginning=args.from_beginning,
                as_json=args.json, limit=args.limit, timeout_s=args.timeout)
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from stream.backfill.run import backfill
    from stream.merge.references import FileReferences, TopicReferences
    from stream.store import open_store

    settings = load_settings(args.config)
    references = (TopicReferences(settings) if args.references == "topic"
                  else FileReferences(settings))
    references.start()
    try:
        with open_store(settings) as store:
            summary = backfill(settings, store, args.predictions, args.labels, references,
                               args.format)
    finally:
        references.stop()
    print("\n".join(summary.lines()))
    return 0


def _report(args: argparse.Namespace) -> int:
    from stream.events import parse_timestamp
    from stream.merge.references import FileReferences
    from stream.report.data import load_report_data
    from stream.report.page import write_report
    from stream.store import open_store

    settings = load_settings(args.config)
    start = parse_timestamp(args.start) if args.start is not None else 0
    end = parse_timestamp(args.end) if args.end is not None else MAX_EPOCH_MS
    with open_store(settings) as store:
        data = load_report_data(store, args.model, start, end)
    references = FileReferences(settings)  # the configured file; not the references topic
    reference = references.get(args.model, "")
    path = write_report(args.output or f"tidewatch-report-{args.model}.html", data, reference)
    note = " (no rows in the range)" if data.empty else ""
    print(f"report for {args.model}: {path.resolve()}{note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tidewatch", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)

    worker = subparsers.add_parser("worker", help="run the stream worker (Faust)")
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warn", "error"])
    worker.add_argument("--config", help="settings YAML (default: $TIDEWATCH_CONFIG)")
    worker.set_defaults(func=_worker)

    produce = subparsers.add_parser("demo-produce", help="produce synthetic predictions and labels")
    produce.add_argument("--events", type=int, default=20_000)
    produce.add_argument("--seed", type=int, default=7)
    produce.add_argument(
        "--malformed",
        type=int,
        default=20,
        help="malformed messages to mix in (they go to the dead-letter topic)",
    )
    produce.add_argument("--no-reference", action="store_true",
                         help="do not publish the demo model's reference profile first")
    produce.add_argument("--config", help="settings YAML (default: $TIDEWATCH_CONFIG)")
    produce.set_defaults(func=_demo_produce)

    demo = subparsers.add_parser("demo", help="worker + synthetic traffic + summary (make demo)")
    demo.add_argument("--events", type=int, default=20_000)
    demo.add_argument("--config", help="settings YAML (default: $TIDEWATCH_CONFIG)")
    demo.set_defaults(func=_demo)

    reference = subparsers.add_parser(
        "reference", help="set a model's reference profile from a JSON Lines or CSV file")
    reference.add_argument("action", choices=["set"])
    reference.add_argument("--model", required=True)
    reference.add_argument("--file", required=True, help=".jsonl/.ndjson/.json or .csv events")
    reference.add_argument("--config", help="settings YAML (default: $TIDEWATCH_CONFIG)")
    reference.set_defaults(func=_reference_set)

    alerts = subparsers.add_parser("alerts", help="alert state changes on the alert topic")
    alerts.add_argument("action", choices=["tail"])
    alerts.add_argument("--from-beginning", action="store_true",
                        help="start at the oldest alert kept on the topic (default: new ones)")
    alerts.add_argument("--json", action="store_true", help="one JSON message per line")
    alerts.add_argument("--limit", type=int, help="stop after this many alerts")
    alerts.add_argument("--timeout", type=float, help="stop after this many seconds")
    alerts.add_argument("--config", help="settings YAML (default: $TIDEWATCH_CONFIG)")
    alerts.set_defaults(func=_alerts_tail)

    back = subparsers.add_parser(
        "backfill", help="compute the stream's windows from files and write them to the store",
        description="Read prediction and label events from files, validate them as the stream "
        "does (rejects are counted, not fatal), compute every window's rows with the stream's "
        "code and write them to the configured store (docs/backfill.md).")
    back.add_argument("--predictions", nargs="+", required=True, metavar="FILE")
    back.add_argument("--labels", nargs="*", default=[], metavar="FILE")
    back.add_argument("--format", choices=["auto", "jsonl", "csv", "parquet"], default="auto",
                      help="file format (default: from each file's suffix)")
    back.add_argument("--references", choices=["files", "topic"], default="files",
                      help="reference profiles from the configured reference_path files, or "
                      "from the references topic (needs the broker)")
    back.add_argument("--config", help="settings YAML (default: $TIDEWATCH_CONFIG)")
    back.set_defaults(func=_backfill)

    report = subparsers.add_parser(
        "report", help="one self-contained HTML page of a model's results (opens offline)")
    report.add_argument("--model", required=True)
    report.add_argument("--from", dest="start", type=_timestamp_arg,
                        help="first window start: RFC 3339 or epoch ms (default: all)")
    report.add_argument("--to", dest="end", type=_timestamp_arg,
                        help="windows starting before this: RFC 3339 or epoch ms")
    report.add_argument("-o", "--output", help="file (default: tidewatch-report-<model>.html)")
    report.add_argument("--config", help="settings YAML (default: $TIDEWATCH_CONFIG)")
    report.set_defaults(func=_report)

    add_store_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tidewatch`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.func(args))
    except StreamError as exc:
        print(f"tidewatch {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
