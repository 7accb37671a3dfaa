"""The parsing half of ``load_tests/profile_worker.py``: which samples count and how parts
are shared out (py-spy itself never runs in the test suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from load_tests.profile_worker import shares

STAGE1 = "create_app.<locals>.stage1_agent (stream/runtime/app.py:303)"
SEND = "Sender._send_produce_req (aiokafka/producer/sender.py:288)"


def test_waiting_and_import_samples_are_dropped_and_parts_overlap(tmp_path: Path) -> None:
    raw = tmp_path / "w.raw"
    raw.write_text("\n".join([
        f"thread (1);{STAGE1};decode_message (stream/events.py:318) 6",
        f"thread (1);{STAGE1};AIOKafkaProducer.send (aiokafka/producer/producer.py:1);{SEND} 2",
        f"thread (1);Handle._run (asyncio/events.py:80);{SEND} 2",
        "thread (1);BaseEventLoop._run_once (a.py:1);EpollSelector.select (selectors.py:468) 50",
        "thread (1);<module> (cli.py:1);_find_and_load (<frozen importlib._bootstrap>:1) 40",
    ]) + "\n")
    total, parts, top = shares(raw, 2)
    assert total == 10
    assert parts["stage 1 (ingest, join, windows, plans, acks)"] == pytest.approx(0.8)
    assert parts["aiokafka producer (all the worker sends)"] == pytest.approx(0.4)
    assert parts["stage 2 (merge, evaluate, revise)"] == 0
    assert top == [("decode_message (events.py", pytest.approx(0.6)),
                   ("Sender._send_produce_req (sender.py", pytest.approx(0.4))]


def test_a_profile_of_nothing_but_waiting_says_so(tmp_path: Path) -> None:
    raw = tmp_path / "idle.raw"
    raw.write_text("thread (1);EpollSelector.select (selectors.py:468) 9\n")
    with pytest.raises(SystemExit, match="no computing samples"):
        shares(raw, 3)
