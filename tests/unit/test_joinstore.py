"""The join state as packs: one table record per side and checkpoint, the live entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.config import load_settings
from stream.join.entries import Entry
from stream.join.index import join_index
from stream.join.store import JoinStore, pack_key
from stream.windows.frames import WindowId

W = WindowId(60_000, "m", "v1")


def prediction(request_id: str, pos: int) -> Entry:
    return Entry(0, request_id, pos, W, 61_000, {"prediction": 1}, {})


def ids(raw: bytes) -> list[str]:
    return [doc["r"] for doc in orjson.loads(raw)]


def test_a_checkpoint_is_one_record_per_side_and_a_restart_restores_every_entry() -> None:
    table: dict[bytes, bytes] = {}
    store = JoinStore(0, table)
    for i in range(3):  # three messages, offsets 5, 6, 7: one checkpoint
        store.put(f"r{i}".encode(), prediction(f"r{i}", i), "p", 5 + i)
    entry = store.get(b"r1")
    assert entry is not None
    entry.label, entry.lpos, entry.lts = 0, 77, 62_000
    store.put(b"r1", entry, "l", 9)
    assert table == {} and store.buffered == 4
    assert store.checkpoint() == 2
    pred_pack, label_pack = pack_key(0, "p", 5, W), pack_key(0, "l", 9, W)
    assert set(table) == {pred_pack, label_pack} and store.buffered == 0
    assert ids(table[pred_pack]) == ["r0", "r1", "r2"] and ids(table[label_pack]) == ["r1"]
    assert "lpos" not in orjson.loads(table[pred_pack])[1]  # each side in its own pack
    store.put(b"r3", prediction("r3", 3), "p", 8)  # the next checkpoint: a new pack
    store.checkpoint()
    assert ids(table[pack_key(0, "p", 8, W)]) == ["r3"]

    restored = JoinStore(0, table, {b"stale": b"{}"})  # an index from an earlier assignment
    loaded = dict(restored.restore())
    assert set(loaded) == {b"r0", b"r1", b"r2", b"r3"}
    assert loaded[b"r1"].to_doc() == entry.to_doc()  # both sides merged again
    assert (loaded[b"r1"].pred_pack, loaded[b"r1"].label_pack) == (pred_pack, label_pack)


def early(rid: str, lpos: int) -> dict[str, Any]:
    """An early label's entry document (its prediction has not come)."""
    return {"p": 0, "r": rid, "lab": 1, "lpos": lpos, "lts": 10_000}


TTL = 300_000


def test_an_early_labels_pack_is_rewritten_smaller_as_they_expire_then_deleted() -> None:
    table: dict[bytes, bytes] = {}
    store = JoinStore(0, table)
    for i in range(3):
        store.put_doc(f"r{i}".encode(), early(f"r{i}", i), "l", 1, None)
    store.checkpoint()
    pack, at = pack_key(0, "l", 1), 10_000 + 300_000
    assert store.expire_early([(at, b"r0")], TTL) == 1
    assert ids(table[pack]) == ["r0", "r1", "r2"]  # written at the next checkpoint only
    store.checkpoint()
    assert ids(table[pack]) == ["r1", "r2"]
    assert store.expire_early([(at, b"r1"), (at, b"r2")], TTL) == 2
    store.checkpoint()
    assert table == {} and len(store) == 0


def test_a_replay_writes_its_pack_again_with_the_same_content() -> None:
    table: dict[bytes, bytes] = {}
    store = JoinStore(0, table)
    store.put(b"r0", prediction("r0", 0), "p", 4)
    store.checkpoint()
    before = dict(table)
    again = JoinStore(0, table)
    [(_, entry)] = again.restore()
    again.touch(entry.pred_pack)
    assert again.checkpoint() == 1 and table == before


def test_a_joined_label_outlives_its_early_pack_mates() -> None:
    """Two labels in one checkpoint: one expires early (no prediction came), the other
    joined its prediction: the early labels' pack goes, the joined label stays (in its
    window's pack)."""
    table: dict[bytes, bytes] = {}
    store = JoinStore(0, table)
    for rid in ("a", "b"):
        store.put_doc(rid.encode(), early(rid, ord(rid)), "l", 4, None)
    store.checkpoint()
    doc = store.get_doc(b"b")
    assert doc is not None
    doc.update(prediction("b", 3).to_doc(label=False))
    store.put_doc(b"b", doc, "p", 2, W)
    store.expire_early([(10_000 + TTL, b"a")], TTL)
    store.checkpoint()
    assert set(table) == {pack_key(0, "p", 2, W), pack_key(0, "l", 2, W)}
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
    assert store.expire_window([W], [b"r9"]) == 0  # its window expires: the old key goes
    store.checkpoint()
    assert set(table) == {b"x"}


def test_the_rocksdb_index_keeps_entries_on_disk_and_is_rebuilt_on_assignment(
        tmp_path: Path) -> None:
    """With the rocksdb:// table store the index is RocksDB (the entries are not held in
    memory), emptied whenever a partition is assigned and rebuilt from the packs."""
    settings = load_settings(None, worker={"table_store": "rocksdb://", "data_dir": tmp_path})
    memory = load_settings(None, worker={"table_store": "memory://", "data_dir": tmp_path})
    assert isinstance(join_index(memory, 0), dict)
    table: dict[bytes, bytes] = {}
    index = join_index(settings, 3)
    assert not isinstance(index, dict)
    store = JoinStore(3, table, index)
    for i in range(3):
        store.put(f"r{i}".encode(), prediction(f"r{i}", i), "p", 5)
    store.checkpoint()
    store.expire_window([W], [b"r1"])  # not checkpointed: the packs still hold it
    store.close()
    again = JoinStore(3, table, join_index(settings, 3))  # reassigned: a fresh index
    assert len(again) == 0
    assert sorted(k for k, _ in again.restore()) == [b"r0", b"r1", b"r2"]  # from the packs
    entry = again.get(b"r2")
    assert entry is not None and entry.pred_pack == pack_key(3, "p", 5, W)
    again.close()


def test_expire_early_drops_the_early_labels_still_waiting_at_their_queued_time() -> None:
    """Two early labels queued for expiry: c still waits (it goes, and with it their pack:
    none waits any more), d found its prediction since (it stays, moved to its window's
    label pack); a prediction's entry queued by mistake is not the early queue's to drop."""
    table: dict[bytes, bytes] = {}
    store = JoinStore(0, table)
    store.put(b"b", prediction("b", 2), "p", 1)
    for rid, lpos in (("c", 6), ("d", 7)):
        store.put_doc(rid.encode(), early(rid, lpos), "l", 2, None)
    doc = store.get_doc(b"d")  # as the stage joins an early label
    assert doc is not None
    doc.update(prediction("d", 3).to_doc(label=False))
    store.put_doc(b"d", doc, "p", 3, W)
    store.checkpoint()
    at = 10_000 + TTL
    assert store.expire_early([(at, b"c"), (at, b"d"), (at, b"b"), (at + 1, b"x")], TTL) == 1
    assert store.get(b"c") is None and store.get(b"d") is not None and store.get(b"b")
    store.checkpoint()
    assert sorted(table) == [pack_key(0, "l", 3, W), pack_key(0, "p", 1, W)]
    assert ids(table[pack_key(0, "l", 3, W)]) == ["d"]


class CountingTable(dict[bytes, bytes]):
    """A table that counts reads: an expired window's pack must go without one."""

    reads = 0

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        self.reads += 1
        return super().get(key, default)


def test_a_window_expires_as_whole_packs_never_read_back() -> None:
    table = CountingTable()
    store = JoinStore(0, table)
    later = WindowId(120_000, "m", "v1")
    for i in range(4):  # one checkpoint, two windows: one pack each
        entry = prediction(f"r{i}", i)
        if i % 2:
            entry.window = later
        store.put(entry.request_id.encode(), entry, "p", 1)
    store.checkpoint()
    assert set(table) == {pack_key(0, "p", 1, W), pack_key(0, "p", 1, later)}
    reads = table.reads
    assert store.expire_window([W], [b"r0", b"r2"]) == 2  # neither had a label
    store.checkpoint()
    assert set(table) == {pack_key(0, "p", 1, later)} and table.reads == reads


def test_expire_window_deletes_its_packs_and_rewrites_an_early_labels_pack() -> None:
    """Window W: r0 (labelled on arrival), r1 (no label), r2 (its label came first: it moves
    to W's label pack and leaves a copy in the early labels' pack, where r9 still waits);
    window `later`: r3. W expires: its packs go unread, the early labels' pack is rewritten
    without r2 (it outlived the window), and the restart sees only r3 and r9."""
    table = CountingTable()
    store = JoinStore(0, table)
    later = WindowId(120_000, "m", "v1")
    store.put_doc(b"r2", {"p": 0, "r": "r2", "lab": 1, "lpos": 1, "lts": 50_000}, "l", 1,
                  None)
    store.put_doc(b"r9", {"p": 0, "r": "r9", "lab": 0, "lpos": 2, "lts": 50_000}, "l", 1,
                  None)  # an early label still waiting, in the same pack
    store.checkpoint()
    for i, window in ((0, W), (1, W), (2, W), (3, later)):
        rid = f"r{i}".encode()
        doc = store.get_doc(rid) or {}
        doc.update(prediction(f"r{i}", i).to_doc())
        doc["w"] = window.as_list()
        store.put_doc(rid, doc, "p", 5, window)
    doc = store.get_doc(b"r0")
    assert doc is not None
    doc.update(lab=0, lpos=9, lts=70_000)
    store.put_doc(b"r0", doc, "l", 6, W)
    store.checkpoint()
    early_pack = pack_key(0, "l", 1)
    # r2's label moved to W's label pack when its prediction came (offset 5), r0's joined it
    assert set(table) == {early_pack, pack_key(0, "p", 5, W), pack_key(0, "p", 5, later),
                          pack_key(0, "l", 5, W)}
    reads = table.reads
    restored = CountingTable(table)  # the same after a restart: the restore registers
    after_restart = JoinStore(0, restored)
    list(after_restart.restore())
    assert after_restart.expire_window([W], [b"r0", b"r1", b"r2"]) == 1
    after_restart.checkpoint()
    assert store.expire_window([W], [b"r0", b"r1", b"r2"]) == 1  # r1 had no label
    store.checkpoint()
    assert set(table) == {early_pack, pack_key(0, "p", 5, later)}
    assert ids(table[early_pack]) == ["r9"]
    assert table.reads == reads + 1  # the early labels' pack only
    assert store.get_doc(b"r2") is None and store.get_doc(b"r3") is not None
    assert dict(restored) == dict(table)
    again = JoinStore(0, dict(table))
    assert sorted(rid for rid, _ in again.restore()) == [b"r3", b"r9"]
    assert again.windows() == {later}


def test_early_labels_move_to_their_window_and_their_pack_goes_unread() -> None:
    table = CountingTable()
    store = JoinStore(0, table)
    for i, rid in enumerate(("e1", "e2")):
        store.put_doc(rid.encode(), {"p": 0, "r": rid, "lab": i, "lpos": i, "lts": 50_000},
                      "l", 1, None)
    store.checkpoint()
    assert set(table) == {pack_key(0, "l", 1)}
    reads = table.reads
    for i, rid in enumerate(("e1", "e2")):
        doc = store.get_doc(rid.encode())
        assert doc is not None
        doc.update(prediction(rid, 10 + i).to_doc(label=False))
        store.put_doc(rid.encode(), doc, "p", 4, W)
    store.checkpoint()
    assert set(table) == {pack_key(0, "p", 4, W), pack_key(0, "l", 4, W)}
    assert table.reads == reads and ids(table[pack_key(0, "l", 4, W)]) == ["e1", "e2"]
    restored = dict(JoinStore(0, dict(table)).restore())
    assert restored[b"e2"].label == 1 and restored[b"e2"].window == W
    assert restored[b"e2"].label_pack == pack_key(0, "l", 4, W)


def test_the_index_is_written_back_at_the_checkpoint_in_one_batch(tmp_path: Path) -> None:
    """Entries put or dropped since the last checkpoint are read from memory and reach the
    RocksDB index at the checkpoint; a label joining an entry of an earlier checkpoint reads
    it back from the index."""
    settings = load_settings(None, worker={"table_store": "rocksdb://", "data_dir": tmp_path})
    index = join_index(settings, 0)
    store = JoinStore(0, {}, index)
    for i in range(3):
        store.put(f"r{i}".encode(), prediction(f"r{i}", i), "p", 5)
    assert index.get(b"r0") is None  # not written yet ...
    first = store.get_doc(b"r0")
    assert first is not None and first["pos"] == 0  # ... but read
    store.checkpoint()
    assert not store.recent and orjson.loads(index[b"r0"])["pos"] == 0
    store.expire_window([W], [b"r1"])
    assert store.get_doc(b"r1") is None and index.get(b"r1") is not None  # dropped, not yet
    doc = store.get_doc(b"r2")
    assert doc is not None
    doc.update(lab=1, lpos=9, lts=62_000)
    store.put_doc(b"r2", doc, "l", 8, W)
    store.checkpoint()
    assert index.get(b"r1") is None
    joined = orjson.loads(index[b"r2"])
    assert joined["lab"] == 1 and joined["lp"] == pack_key(0, "l", 8, W).decode()
    store.close()


@pytest.mark.parametrize("kind", ["memory", "rocksdb"])
def test_a_batch_put_leaves_what_one_entry_at_a_time_does(tmp_path: Path, kind: str) -> None:
    """``put_predictions`` of a message's entries at once leaves the table and the index as
    one call per entry does (the hot path defers a message's puts to its end)."""
    settings = load_settings(None, worker={"table_store": f"{kind}://", "data_dir": tmp_path})
    stores = [JoinStore(0, {}, join_index(settings, p)) for p in (0, 1)]
    new = [(f"n{i}".encode(), prediction(f"n{i}", 10 + i).to_doc()) for i in range(4)]
    for request_id, doc in new:
        stores[0].put_predictions([(request_id, dict(doc))], 7, W)
    stores[1].put_predictions([(r, dict(d)) for r, d in new], 7, W)
    assert stores[0].recent == stores[1].recent and stores[0].buffered == stores[1].buffered
    for store in stores:
        store.checkpoint()
    assert stores[0].table == stores[1].table and ids(stores[0].table[pack_key(0, "p", 7, W)]) \
        == ["n0", "n1", "n2", "n3"]
    assert [stores[0].index.get(r) for r, _ in new] == [stores[1].index.get(r) for r, _ in new]
    assert all(stores[1].get_doc(r) is not None for r, _ in new)
    for store in stores:
        store.close()
