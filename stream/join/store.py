"""The join state of one partition: a local index by ``request_id``, durable as few records.

Each join entry used to be its own table key, so every event cost a changelog message (sent
through aiokafka, in Python, one by one): most of the worker's time. Now, as Kafka Streams
does with a state store behind a record cache:

- the entries live in a *local index* by request id (:mod:`stream.join.index`: RocksDB with
  the ``rocksdb://`` table store, a dict with ``memory://``), written per event but never
  changelogged;
- a *checkpoint* writes the entries added since the last one to the table as few records,
  *packs*: one per side (p for the predictions topic, l for labels) and window, keyed by
  where the checkpoint starts and the window
  (``pack:<partition>:<p|l>:<offset>:<window start>:<model>|<version>``; a label whose
  prediction has not come, an early label, goes to the side's pack with no window): the
  changelog gets one message per pack. The stage checkpoints before anything is acked (see
  :meth:`stream.windows.partition.PartitionStage.commit`), so an offset is never committed
  past an entry that is not in Kafka;
- when a partition is assigned, the index is rebuilt from the packs (which Faust restored).

- A replayed message marks the packs of its entries for writing again (an on-disk table may
  hold a record whose changelog message a crash lost, and the partition's next owner must
  see it). A replayed message whose pack never reached Kafka is new again, and lands in a
  pack with the same key and content.
- When entries expire, each pack they were in is rewritten without them, or deleted (a
  tombstone) once it holds none, so the table holds the live entries. The entries of a
  window expire together (at its end plus the label horizon), so a window's pack is deleted
  without being read back; only the packs of early labels are rewritten as they go. (Packs
  keyed by checkpoint alone spanned several windows and were read, rewritten and written
  again as each expired: 6% of the worker's time in a ``make bench`` backlog.)
- Records of the previous formats (one entry per key, the key its request id) are read as
  packs of one, so a worker upgraded mid-stream loses no join state.

The index is written back, as Kafka Streams' record cache is: the entries put or dropped
since the last checkpoint stay in a dict as documents (``recent``), read before the index,
and reach the index at the checkpoint in one write batch. A label that joins a prediction of
the same checkpoint reads no JSON; an index write costs a batch slot, not a call into RocksDB.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, Final, Literal, cast

import orjson

from stream.join.entries import Entry
from stream.join.index import write_back
from stream.windows.frames import WindowId

PACK_PREFIX: Final = b"pack:"
#: Keys of the models' closed-through marks, which share the table (see stage 1's commit).
MARK_PREFIX: Final = b"closed-through:"
Side = Literal["p", "l"]


def is_window_pack(key: bytes) -> bool:
    """A pack of one window (:func:`pack_key` with a window): its entries expire together."""
    return key.startswith(PACK_PREFIX) and key.count(b":") > 3


def pack_window(key: bytes) -> WindowId | None:
    """The window of a pack's key (:func:`pack_key`); None for a pack of no window."""
    if not is_window_pack(key):
        return None
    start, model_version = key.split(b":", 5)[4:]
    model, version = model_version.split(b"|", 1)
    return WindowId(int(start), model.decode(), version.decode())


def pack_key(partition: int, side: Side, offset: int, window: WindowId | None = None) -> bytes:
    """The table key of a checkpoint's pack of one side and window (None: early labels)."""
    key = b"%s%d:%s:%d" % (PACK_PREFIX, partition, side.encode(), offset)
    if window is None:
        return key
    return key + b":%d:%s|%s" % (window.window_start, window.model_id.encode(),
                                 window.model_version.encode())


class JoinStore:
    """``request_id -> Entry`` for one partition: ``index`` local, ``table`` the packs."""

    def __init__(self, partition: int, table: MutableMapping[bytes, bytes],
                 index: MutableMapping[bytes, bytes] | None = None) -> None:
        self.partition = partition
        self.table = table
        self.index: MutableMapping[bytes, bytes] = {} if index is None else index
        #: Entries put (their document) or dropped (None) since the last checkpoint, not
        #: yet in ``index``; read first (see the module docstring).
        self.recent: dict[bytes, dict[str, Any] | None] = {}
        #: The packs of the open checkpoint, per side and window, and the parts put in
        #: them since.
        self.current: dict[tuple[Side, WindowId | None], bytes] = {}
        self.building: dict[bytes, dict[bytes, dict[str, Any]]] = {}
        #: Per pack to write at the next checkpoint, the request ids that left it.
        self.dirty: dict[bytes, set[bytes]] = {}
        #: Entries put since the last checkpoint.
        self.buffered = 0
        #: Per pack in the table, how many entries it holds: a pack all of whose entries
        #: expired is deleted without reading it back.
        self.sizes: dict[bytes, int] = {}
        #: Per window, its packs, and how many of its entries have a label: the window's
        #: entries expire together (:meth:`expire_window`).
        self.window_packs: dict[WindowId, set[bytes]] = {}
        self.labelled: dict[WindowId, int] = {}
        #: Entries of a window with a part in a pack of no window (a label that came before
        #: its prediction, a record of the previous format): request id -> that pack.
        self.loose: dict[bytes, bytes] = {}
        #: Per pack of early labels, how many of its labels still wait for their
        #: prediction: a label that joins moves to its window's pack, and the pack is
        #: deleted, unread, once none waits.
        self.waiting: dict[bytes, int] = {}
        #: Packs to delete at the next checkpoint (their window expired; their early labels
        #: all joined).
        self.deleted: set[bytes] = set()
        #: The open packs' keys as text, for the documents that name them.
        self.pack_names: dict[bytes, str] = {}

    def __len__(self) -> int:
        self.flush()
        return sum(1 for _ in self.index.keys())  # noqa: SIM118 - Rdict: no len(), no iter

    def get(self, request_id: bytes) -> Entry | None:
        doc = self.get_doc(request_id)
        return None if doc is None else _from_doc(doc)

    def get_doc(self, request_id: bytes) -> dict[str, Any] | None:
        """The entry as its document (:meth:`stream.join.entries.Entry.to_doc`, with its
        packs' keys ``pp`` and ``lp``): the hot path reads fields, builds no Entry. A
        document put since the last checkpoint is the store's own: change it only to put
        it back."""
        doc = self.recent.get(request_id, _UNREAD)
        if doc is not _UNREAD:
            return cast("dict[str, Any] | None", doc)
        raw = self.index.get(request_id)
        return None if raw is None else cast("dict[str, Any]", orjson.loads(raw))

    def _drop(self, request_id: bytes) -> None:
        """Drop the entry from the index (at the next checkpoint: a blind delete)."""
        self.recent[request_id] = None

    def flush(self) -> None:
        """Write the entries put or dropped since the last checkpoint to the index."""
        if self.recent:
            write_back(self.index, self.recent)
            self.recent.clear()

    def restore(self) -> Iterator[tuple[bytes, Entry]]:
        """Rebuild the index from this partition's packs in the table; yield its entries."""
        self.recent.clear()
        for key in list(self.index.keys()):  # from an earlier assignment: stale
            del self.index[key]
        mine = b"%s%d:" % (PACK_PREFIX, self.partition)
        early_copies: dict[bytes, bytes] = {}  # request id -> a pack of no window with its label
        for key, raw in list(self.table.items()):
            if key.startswith(PACK_PREFIX):
                if key.startswith(mine):
                    window = pack_window(key)
                    if window is not None:
                        self.window_packs.setdefault(window, set()).add(key)
                    for doc in orjson.loads(raw):
                        if window is None and "lpos" in doc:
                            early_copies[doc["r"].encode()] = key
                        self._merge(key, Entry.from_doc(doc))
                        self.sizes[key] = self.sizes.get(key, 0) + 1
            elif not key.startswith(MARK_PREFIX):  # the previous format: one entry, both
                entry = Entry.decode(raw)            # sides, keyed by its request id
                if entry.partition == self.partition:
                    self._merge(key, entry)
                    self.sizes[key] = 1
        referenced: set[bytes | None] = set()
        for request_id, raw in list(self.index.items()):
            entry = _load(raw)
            referenced.update((entry.pred_pack, entry.label_pack))
            if entry.window is None:
                if entry.label_pack is not None:
                    self.waiting[entry.label_pack] = self.waiting.get(entry.label_pack, 0) + 1
            else:
                self._register(request_id, entry.window, entry.pred_pack, entry.has_label,
                               entry.label_pack)
                if request_id in early_copies:  # a copy left behind when its label moved
                    self.loose[request_id] = early_copies[request_id]
            yield request_id, entry
        for key in self.sizes:  # early labels' packs none of whose labels waits: copies
            if pack_window(key) is None and key not in referenced:  # of moved labels only
                self.deleted.add(key)

    def _register(self, request_id: bytes, window: WindowId, pred_pack: bytes | None,
                  has_label: bool, label_pack: bytes | None = None) -> None:
        """Record where an entry of ``window`` lies, for :meth:`expire_window`."""
        for pack in (pred_pack, label_pack):
            if pack is None:
                continue
            if is_window_pack(pack):
                self.window_packs.setdefault(window, set()).add(pack)
            else:
                self.loose[request_id] = pack
        if has_label:
            self.labelled[window] = self.labelled.get(window, 0) + 1

    def _merge(self, key: bytes, part: Entry) -> None:
        request_id = part.request_id.encode()
        raw = self.index.get(request_id)  # a restore writes the index itself
        entry = Entry(self.partition, part.request_id) if raw is None else _load(raw)
        if part.pos is not None:
            entry.pos, entry.window, entry.ts = part.pos, part.window, part.ts
            entry.outcome, entry.segments, entry.late = part.outcome, part.segments, part.late
            entry.pred_pack = key
        if part.lpos is not None:
            entry.label, entry.lpos, entry.lts = part.label, part.lpos, part.lts
            if entry.label_pack is None or not is_window_pack(entry.label_pack):
                entry.label_pack = key  # a moved label: its window's pack is where it lives
        self.index[request_id] = _dump(entry)

    def put(self, request_id: bytes, entry: Entry, side: Side, offset: int) -> None:
        """Record ``entry`` (merged: both sides it knows); its ``side`` goes into the open
        checkpoint's pack of that side (keyed by ``offset`` if it opens it). As
        :meth:`put_doc`, for a caller holding an Entry (tests, tools); ``entry`` gets its
        packs' keys."""
        doc = orjson.loads(_dump(entry))
        self.put_doc(request_id, doc, side, offset, entry.window)
        entry.pred_pack = doc["pp"].encode() if "pp" in doc else None
        entry.label_pack = doc["lp"].encode() if "lp" in doc else None

    def put_predictions(self, parts: list[tuple[bytes, dict[str, Any]]], offset: int,
                        window: WindowId) -> None:
        """:meth:`put` of new requests' predictions (no label yet) of one window, given as
        the entries' documents (:meth:`stream.join.entries.Entry.to_doc`): the hot path, with
        no Entry built, one call per message and window."""
        pack = self._open_pack("p", offset, window)
        name = self.pack_names[pack]
        recent = self.recent
        building = self.building.setdefault(pack, {})
        for request_id, doc in parts:
            recent[request_id] = {**doc, "pp": name}
            building[request_id] = doc
        self.dirty.setdefault(pack, set())
        self.buffered += len(parts)

    def put_doc(self, request_id: bytes, doc: dict[str, Any], side: Side, offset: int,
                window: WindowId | None) -> None:
        """:meth:`put` of an entry given as its document (as :meth:`get_doc` returns it,
        both sides it knows): ``side``'s part goes into the open checkpoint's pack of that
        side and ``window`` (None: an early label). ``doc`` gets the pack's key."""
        pack = self._open_pack(side, offset, window)
        doc["pp" if side == "p" else "lp"] = self.pack_names[pack]
        if window is None:  # an early label
            self.waiting[pack] = self.waiting.get(pack, 0) + 1
        elif "lpos" in doc:  # a label joined (either order)
            self.labelled[window] = self.labelled.get(window, 0) + 1
            early = doc["lp"].encode() if "lp" in doc else None
            if side == "p" and (early is None or not is_window_pack(early)):
                doc["lp"] = self.pack_names[self._move_label(request_id, doc, early, offset,
                                                             window)]
        fields = _PREDICTION_FIELDS if side == "p" else _LABEL_FIELDS
        self._add(request_id, pack, doc, {k: doc[k] for k in fields})

    def _move_label(self, request_id: bytes, doc: dict[str, Any], early: bytes | None,
                    offset: int, window: WindowId) -> bytes:
        """An early label found its prediction: its part goes to the window's label pack
        (which expires with the window), and leaves the early labels' pack without a
        rewrite: the copy left there is deleted with it, once none of its labels waits (a
        restore merges the two copies, which are equal). Returns the new pack."""
        pack = self._open_pack("l", offset, window)
        self.building.setdefault(pack, {})[request_id] = {k: doc[k] for k in _LABEL_FIELDS}
        self.dirty.setdefault(pack, set())
        if early is None:  # it had no pack yet
            return pack
        parts = self.building.get(early)
        if parts is not None:  # not written yet: it never will be
            parts.pop(request_id, None)
        else:  # in the table: if the window goes before the pack, the pack is rewritten
            self.loose[request_id] = early
        self._early_left(early)
        return pack

    def _early_left(self, pack: bytes) -> None:
        """One label of an early labels' pack joined or expired; none waits: delete it."""
        left = self.waiting.get(pack, 0) - 1
        if left > 0:
            self.waiting[pack] = left
            return
        self.waiting.pop(pack, None)
        if pack not in self.current.values():  # still open: new labels may come
            self.deleted.add(pack)
            self.dirty.pop(pack, None)
            self.building.pop(pack, None)

    def _open_pack(self, side: Side, offset: int, window: WindowId | None) -> bytes:
        """The open checkpoint's pack of ``side`` and ``window`` (keyed by ``offset`` if this
        opens it)."""
        pack = self.current.get((side, window))
        if pack is None:
            pack = self.current[(side, window)] = pack_key(self.partition, side, offset, window)
            self.pack_names[pack] = pack.decode()
            if window is not None:
                self.window_packs.setdefault(window, set()).add(pack)
        return pack

    def _add(self, request_id: bytes, pack: bytes, indexed: dict[str, Any],
             part: dict[str, Any]) -> None:
        """The entry in the index, its ``part`` (one side) in ``pack`` at the checkpoint."""
        self.recent[request_id] = indexed
        self.building.setdefault(pack, {})[request_id] = part
        self.dirty.setdefault(pack, set())
        self.buffered += 1

    def touch(self, pack: bytes | None) -> None:
        """Write ``pack`` again at the next checkpoint (a replay)."""
        if pack is not None:
            self.dirty.setdefault(pack, set())

    def expire_early(self, due: list[tuple[int, bytes]], ttl_ms: int) -> int:
        """Drop the early labels due (queued as (label time + TTL, request id)) that still
        wait for their prediction; an entry that joined since, or a later label of the same
        id, is left alone. Their packs are rewritten at the next checkpoint (deleted, unread,
        once none of their labels waits). Returns how many went."""
        dropped = 0
        for at, request_id in due:
            doc = self.get_doc(request_id)
            if doc is None or "w" in doc or int(doc["lts"]) + ttl_ms != at:
                continue
            self._drop(request_id)
            pack = doc["lp"].encode()
            self.dirty.setdefault(pack, set()).add(request_id)
            self._early_left(pack)
            dropped += 1
        return dropped

    def windows(self) -> set[WindowId]:
        """The windows some entry here belongs to (as far as :meth:`expire_window` knows)."""
        return set(self.window_packs) | set(self.labelled)

    def expire_window(self, windows: list[WindowId], request_ids: list[bytes]) -> int:
        """Drop the entries of ``windows`` (``request_ids``: all of them, as queued when
        they were put) and delete the windows' packs at the next checkpoint, unread.
        Returns how many had no label."""
        recent, loose = self.recent, self.loose
        for request_id in request_ids:
            recent[request_id] = None  # dropped from the index at the checkpoint, unread
            pack = loose.pop(request_id, None)
            if pack is not None and pack in self.sizes and pack not in self.deleted:
                self.dirty.setdefault(pack, set()).add(request_id)  # rewritten without it
        labelled = 0
        for window in windows:
            labelled += self.labelled.pop(window, 0)
            for pack in self.window_packs.pop(window, ()):
                self.deleted.add(pack)
                self.building.pop(pack, None)
                self.dirty.pop(pack, None)
            self.current = {k: v for k, v in self.current.items() if k[1] != window}
        return len(request_ids) - labelled

    def checkpoint(self) -> int:
        """Write every changed pack (one table write each), delete the packs of expired
        windows, and open a new checkpoint; return how many were written. The index gets
        the entries put and dropped since the last one (:meth:`flush`)."""
        self.flush()
        for key in sorted(self.dirty):
            if key not in self.deleted:
                self._write(key, self.dirty[key])
        written = len(self.dirty)
        for key in sorted(self.deleted):  # after the writes: what replaces them is in
            if self.sizes.pop(key, None) is not None:  # in the table
                del self.table[key]
        self.deleted.clear()
        self.dirty.clear()
        self.building.clear()
        self.current.clear()
        self.pack_names.clear()
        self.buffered = 0
        return written

    def _write(self, key: bytes, left: set[bytes]) -> None:
        """The pack with what it held (in the table) and what was put in it since, less the
        entries that left it; deleted when empty."""
        size = self.sizes.get(key)
        if size is not None and not self.building.get(key) and len(left) >= size:
            del self.table[key]  # every entry in it left (``left`` holds only its own)
            del self.sizes[key]
            return
        parts: dict[bytes, dict[str, Any]] = {}
        stored = self.table.get(key) if key in self.sizes else None  # else never written
        if stored is not None:
            docs = orjson.loads(stored)
            for doc in docs if isinstance(docs, list) else [docs]:  # [docs]: the old format
                parts[doc["r"].encode()] = doc
        parts.update(self.building.get(key, {}))
        for request_id in left:
            parts.pop(request_id, None)
        if parts:
            self.table[key] = orjson.dumps([parts[r] for r in sorted(parts)])
            self.sizes[key] = len(parts)
        else:
            self.sizes.pop(key, None)
            if stored is not None:
                del self.table[key]

    def close(self) -> None:
        """Release the index (a RocksDB index holds a lock on its folder)."""
        close = getattr(self.index, "close", None)
        if close is not None:
            close()


#: An entry document's fields of each side (:meth:`stream.join.entries.Entry.to_doc`).
_PREDICTION_FIELDS: Final = ("p", "r", "pos", "w", "ts", "o", "s", "late")
_LABEL_FIELDS: Final = ("p", "r", "lab", "lpos", "lts")
#: :meth:`JoinStore.get_doc`'s "not among the recent entries" (None there: dropped).
_UNREAD: Final[Any] = object()


def _dump(entry: Entry) -> bytes:
    doc = entry.to_doc()
    if entry.pred_pack is not None:
        doc["pp"] = entry.pred_pack.decode()
    if entry.label_pack is not None:
        doc["lp"] = entry.label_pack.decode()
    return orjson.dumps(doc)


def _load(raw: bytes) -> Entry:
    return _from_doc(orjson.loads(raw))


def _from_doc(doc: dict[str, Any]) -> Entry:
    entry = Entry.from_doc(doc)
    if "pp" in doc:
        entry.pred_pack = doc["pp"].encode()
    if "lp" in doc:
        entry.label_pack = doc["lp"].encode()
    return entry
