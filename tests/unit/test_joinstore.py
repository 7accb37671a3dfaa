"""The join state as packs: one table record per input message, exactly the live entries."""

from __future__ import annotations

import orjson

from stream.join import Entry
from stream.joinstore import JoinStore, pack_key
from stream.windows import WindowId

W = WindowId(60_000, "m", "v1")


def prediction(request_id: str, pos: int) -> Entry:
    return Entry(0, request_id, pos, W, 61_000, {"prediction": 1}, {})


def test_a_message_is_one_record_and_a_restart_restores_every_entry() -> None:
    table: dict[bytes, bytes] = {}
    store = JoinStore(0, table)
    pred_pack, label_pack = pack_key(0, "p", 5), pack_key(0, "l", 9)
    for i in range(3):
        store.put(f"r{i}".encode(), prediction(f"r{i}", i), pred_pack, "p")
    store.write([pred_pack])
    entry = store.get(b"r1")
    assert entry is not None
    entry.label, entry.lpos, entry.lts = 0, 77, 62_000
    store.put(b"r1", entry, label_pack, "l")
    store.write([label_pack])
    assert set(table) == {pred_pack, label_pack}
    assert [d["r"] for d in orjson.loads(table[label_pack])] == ["r1"]
    assert "lpos" not in orjson.loads(table[pred_pack])[1]  # each side in its own pack

    restored = JoinStore(0, table)
    loaded = dict(restored.restore())
    assert set(loaded) == {b"r0", b"r1", b"r2"}
    assert loaded[b"r1"].to_doc() == entry.to_doc()  # both sides merged again
    assert (loaded[b"r1"].pred_pack, loaded[b"r1"].label_pack) == (pred_pack, label_pack)


def test_expiry_rewrites_a_pack_smaller_then_deletes_it() -> None:
    table: dict[bytes, bytes] = {}
    store = JoinStore(0, table)
    pack = pack_key(0, "p", 1)
    for i in range(3):
        store.put(f"r{i}".encode(), prediction(f"r{i}", i), pack, "p")
    store.write([pack])
    store.write(store.drop(b"r0"))
    assert [d["r"] for d in orjson.loads(table[pack])] == ["r1", "r2"]
    store.write(store.drop(b"r1") + store.drop(b"r2"))
    assert table == {} and store.members == {} and len(store) == 0


def test_a_label_outlives_its_pack_mates_while_joined() -> None:
    """Two labels in one message: one expires early (no prediction came), the other joined
    its prediction: the pack keeps the joined one only."""
    table: dict[bytes, bytes] = {}
    store = JoinStore(0, table)
    labels = pack_key(0, "l", 4)
    for rid in ("a", "b"):
        early = Entry(0, rid, label=1, lpos=ord(rid), lts=10)
        store.put(rid.encode(), early, labels, "l")
    store.write([labels])
    joined = prediction("b", 3)
    old = store.get(b"b")
    assert old is not None
    joined.label, joined.lpos, joined.lts, joined.label_pack = old.label, old.lpos, old.lts, labels
    store.put(b"b", joined, pack_key(0, "p", 2), "p")
    store.write([pack_key(0, "p", 2)])
    store.write(store.drop(b"a"))
    assert [d["r"] for d in orjson.loads(table[labels])] == ["b"]
    restored = dict(JoinStore(0, table).restore())
    assert restored[b"b"].has_label and restored[b"b"].window == W


def test_records_of_the_previous_format_are_read_as_packs_of_one() -> None:
    old = prediction("r9", 4)
    old.label, old.lpos, old.lts = 1, 8, 63_000
    other_partition = Entry(1, "x", 1, W, 61_000, {}, {})
    table = {b"r9": old.encode(), b"x": other_partition.encode()}
    store = JoinStore(0, table)
    [(request_id, entry)] = store.restore()
    assert request_id == b"r9" and entry.to_doc() == old.to_doc()
    store.write(store.drop(b"r9"))  # expiry deletes the old key
    assert set(table) == {b"x"}
