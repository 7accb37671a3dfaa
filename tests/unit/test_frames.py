"""Frames of the partials topic: states decoded when first read, truncation refused."""

from __future__ import annotations

import pytest

from stream.errors import MetricsError
from stream.metrics.window import WindowState
from stream.windows.frames import WindowId, decode_frame, encode_frame


def states() -> dict[str, WindowState]:
    out = {}
    for seg, xs in (("all", [1.0, 2.0, 3.0]), ("country=DE", [2.0])):
        state = WindowState("binary", 1)
        state.add_predictions([{"request_id": f"r{x}", "features": {"x": x}, "prediction": 1}
                               for x in xs])
        out[seg] = state
    return out


def test_a_frame_decodes_its_states_when_first_read() -> None:
    value = encode_frame("perf", 3, {"wid": WindowId(60_000, "m", "v1").as_list()}, states())
    frame = decode_frame(value)
    assert (frame.kind, frame.source, frame.window) == ("perf", 3, WindowId(60_000, "m", "v1"))
    assert frame._states is None  # stage 2 files a perf frame by its header alone
    decoded = frame.states
    assert decoded.keys() == {"all", "country=DE"}
    assert decoded["all"].to_bytes() == states()["all"].to_bytes()
    assert frame.states is decoded  # once


def test_a_truncated_frame_is_refused_on_arrival() -> None:
    value = encode_frame("partial", 0, {"wid": [0, "m", ""], "n": 3}, states())
    with pytest.raises(MetricsError, match="header says"):
        decode_frame(value[:-1])
