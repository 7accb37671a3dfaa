"""The join state of one partition: in memory by ``request_id``, durable as few records.

Each join entry used to be its own table key, so every event cost a changelog message (sent
through aiokafka, in Python, one by one): most of the worker's time. Now the entries are kept
in memory and made durable per *checkpoint*: the entries added since the last one become one
table record per side, a *pack*, keyed by where the checkpoint starts
(``pack:<partition>:<p|l>:<offset>``, p for the predictions topic, l for labels). The stage
checkpoints before anything is acked (see :meth:`stream.stage1.PartitionStage.commit`) and
when ``checkpoint_events`` entries wait, so an offset is never committed past an entry that is
not in Kafka. A prediction and its label live in two packs; the merged entry is in memory.

- A replayed message marks the packs of its entries for writing again (an on-disk table may
  hold a record whose changelog message a crash lost, and the partition's next owner must
  see it). A replayed message whose pack never reached Kafka is new again, and lands in a
  pack with the same key and content.
- When entries expire, each pack they were in is rewritten with the entries it still holds,
  or deleted (a tombstone) once it holds none, so the table holds the live entries and a
  restart restores them. Entries expire at window ends plus the label horizon, so a pack is
  rewritten a few times at most.
- Records of the previous formats (one entry per key, the key its request id) are read as
  packs of one, so a worker upgraded mid-stream loses no join state.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Final, Literal

import orjson

from stream.join import Entry

PACK_PREFIX: Final = b"pack:"
#: Keys of the models' closed-through marks, which share the table (see stage 1's commit).
MARK_PREFIX: Final = b"closed-through:"
Side = Literal["p", "l"]


def pack_key(partition: int, side: Side, offset: int) -> bytes:
    """The table key of the pack of one input message."""
    return b"%s%d:%s:%d" % (PACK_PREFIX, partition, side.encode(), offset)


class JoinStore:
    """``request_id -> Entry`` for one partition, written to ``table`` as packs."""

    def __init__(self, partition: int, table: MutableMapping[bytes, bytes]) -> None:
        self.partition = partition
        self.table = table
        self.entries: dict[bytes, Entry] = {}
        #: Pack key -> the request ids with a side in it.
        self.members: dict[bytes, set[bytes]] = {}
        #: The packs of the open checkpoint, per side; packs to write at the next one.
        self.current: dict[Side, bytes] = {}
        self.dirty: set[bytes] = set()
        #: Entries put since the last checkpoint.
        self.buffered = 0

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, request_id: bytes) -> Entry | None:
        return self.entries.get(request_id)

    def restore(self) -> list[tuple[bytes, Entry]]:
        """Load this partition's packs from the table; return the entries loaded."""
        for key, raw in list(self.table.items()):
            if key.startswith(PACK_PREFIX):
                if not key.startswith(b"%s%d:" % (PACK_PREFIX, self.partition)):
                    continue
                for doc in orjson.loads(raw):
                    self._load(key, Entry.from_doc(doc))
            elif not key.startswith(MARK_PREFIX):  # the previous format: one entry, both
                # sides, keyed by its request id
                entry = Entry.decode(raw)
                if entry.partition == self.partition:
                    self._load(key, entry)
        return list(self.entries.items())

    def _load(self, key: bytes, part: Entry) -> None:
        request_id = part.request_id.encode()
        entry = self.entries.get(request_id)
        if entry is None:
            entry = self.entries[request_id] = Entry(self.partition, part.request_id)
        if part.pos is not None:
            entry.pos, entry.window, entry.ts = part.pos, part.window, part.ts
            entry.outcome, entry.segments, entry.late = part.outcome, part.segments, part.late
            entry.pred_pack = key
        if part.lpos is not None:
            entry.label, entry.lpos, entry.lts = part.label, part.lpos, part.lts
            entry.label_pack = key
        self.members.setdefault(key, set()).add(request_id)

    def put(self, request_id: bytes, entry: Entry, side: Side, offset: int) -> None:
        """Record ``entry`` (merged: both sides it knows); its ``side`` goes into the open
        checkpoint's pack of that side (keyed by ``offset`` if it opens it)."""
        pack = self.current.get(side)
        if pack is None:
            pack = self.current[side] = pack_key(self.partition, side, offset)
        self.entries[request_id] = entry
        if side == "p":
            entry.pred_pack = pack
        else:
            entry.label_pack = pack
        self.members.setdefault(pack, set()).add(request_id)
        self.dirty.add(pack)
        self.buffered += 1

    def touch(self, pack: bytes | None) -> None:
        """Write ``pack`` again at the next checkpoint (a replay)."""
        if pack is not None:
            self.dirty.add(pack)

    def drop(self, request_id: bytes) -> None:
        """Forget an expired entry; its packs are rewritten at the next checkpoint."""
        entry = self.entries.pop(request_id)
        for key in (entry.pred_pack, entry.label_pack):
            if key is not None:
                self.members[key].discard(request_id)
                self.dirty.add(key)

    def checkpoint(self) -> int:
        """Write every changed pack (one table write each) and open a new checkpoint;
        return how many were written."""
        dirty = sorted(self.dirty)
        self.write(dirty)
        self.dirty.clear()
        self.current.clear()
        self.buffered = 0
        return len(dirty)

    def write(self, packs: Iterable[bytes]) -> None:
        """Write each pack with the sides it holds now, or delete it if it holds none."""
        for key in packs:
            ids = self.members.get(key)
            if not ids:
                self.members.pop(key, None)
                if key in self.table:
                    del self.table[key]
                continue
            parts = []
            for request_id in sorted(ids):
                entry = self.entries[request_id]
                parts.append(entry.to_doc(prediction=entry.pred_pack == key,
                                          label=entry.label_pack == key))
            self.table[key] = orjson.dumps(parts)
