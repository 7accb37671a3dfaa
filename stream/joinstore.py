"""The join state of one partition: in memory by ``request_id``, durable one record per message.

Each join entry used to be its own table key, so every event cost a changelog message (sent
through aiokafka, in Python, one by one): most of the worker's time. Now the entries that one
input message creates are one table record, a *pack*, keyed by the message's position
(``pack:<partition>:<p|l>:<offset>``, p for the predictions topic, l for labels). A prediction
and its label live in two packs (their messages'); the merged entry is kept in memory.

- A replayed message rewrites its own pack with the same content (an on-disk table may hold a
  record whose changelog message a crash lost, and the partition's next owner must see it).
- When entries expire, each pack they were in is rewritten with the entries it still holds,
  or deleted (a tombstone) once it holds none, so the table holds exactly the live entries
  and a restart restores exactly them. Entries expire at window ends plus the label horizon,
  so a pack is rewritten a few times at most.
- Records of the previous format (one entry per key, the key its request id) are read as
  packs of one, so a worker upgraded mid-stream loses no join state.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Final, Literal

import orjson

from stream.join import Entry

PACK_PREFIX: Final = b"pack:"
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
            else:  # the previous format: one entry, both sides, keyed by its request id
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

    def put(self, request_id: bytes, entry: Entry, pack: bytes, side: Side) -> None:
        """Record ``entry`` (merged: both sides it knows) and that ``pack`` holds its
        ``side``; the pack is written by :meth:`write`."""
        self.entries[request_id] = entry
        if side == "p":
            entry.pred_pack = pack
        else:
            entry.label_pack = pack
        self.members.setdefault(pack, set()).add(request_id)

    def drop(self, request_id: bytes) -> list[bytes]:
        """Forget an expired entry; return the packs that held it (to :meth:`write`)."""
        entry = self.entries.pop(request_id)
        packs = [k for k in (entry.pred_pack, entry.label_pack) if k is not None]
        for key in packs:
            self.members[key].discard(request_id)
        return packs

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
