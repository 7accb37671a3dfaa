"""A mergeable uniform row sample (bottom-k by hashed priority) and the compact byte codec.

Why bottom-k rather than a classic reservoir with hypergeometric merges: every row gets a
pseudo-random priority derived from its ``request_id`` (keyed BLAKE2b, 64 bits), and the
sample keeps the ``capacity`` rows with the smallest priorities. The kept set is then a
function of the *set* of rows only, so ``merge(a, b)`` is **bit-identical** to one pass over
``a + b`` for any split, order and batching, below and above capacity, and the same window
gives the same drift numbers whatever the number of partitions. Because the priorities are
i.i.d. uniform (as far as the hash is concerned) and independent of the values, the kept
rows are a uniform random ``capacity``-subset of all rows, which is exactly what a reservoir
(or a hypergeometric merge of two reservoirs) provides, without any random state to carry.

Rows without a ``request_id`` get priorities from a ``numpy`` Generator seeded with
``(seed, rows seen so far)``: still uniform and reproducible, but then merge equals one pass
only in distribution, not bit for bit.

Several numeric columns share one priority vector (a row sample), which halves the state
compared with one (value, priority) pair per column: ``8 * capacity * (1 + columns)`` bytes.
A missing/non-numeric cell is stored as NaN; a column's sample is its non-NaN cells among
the kept rows, which is a uniform sample of that column's values.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from stream.errors import MetricsError

FloatArray = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]

_MAGIC = b"TWS1"
_NO_ID_SALT = 0x5EED_F00D


@functools.lru_cache(maxsize=64)
def _keyed(seed: int) -> Any:
    """BLAKE2b keyed by ``seed``, nothing hashed yet: each id hashes a copy (0.5 us against
    0.8 for a new keyed hash, which hashes the key's block first; the digests are equal)."""
    return hashlib.blake2b(digest_size=8, key=seed.to_bytes(8, "little", signed=True))


def priorities(ids: Sequence[Any], seed: int = 0, *, offset: int = 0) -> U64Array:
    """Uniform 64-bit priorities: keyed BLAKE2b of ``request_id``; a seeded Generator otherwise.

    ``offset`` (rows already seen) makes the fallback priorities differ from batch to batch.
    """
    keyed = _keyed(int(seed)).copy  # a copy of the keyed state: the key block hashed once
    out = np.empty(len(ids), dtype=np.uint64)
    missing: list[int] = []
    digests: list[bytes] = []
    for i, rid in enumerate(ids):
        if rid is None or rid == "":
            missing.append(i)
            digests.append(b"\0" * 8)
        else:
            h = keyed()
            h.update(rid.encode() if type(rid) is str else str(rid).encode())
            digests.append(h.digest())
    if digests:
        out[:] = np.frombuffer(b"".join(digests), dtype="<u8")
    if missing:
        rng = np.random.default_rng([int(seed) & 0xFFFF_FFFF, offset, _NO_ID_SALT])
        out[missing] = rng.integers(0, 2**64 - 1, size=len(missing), dtype=np.uint64, endpoint=True)
    return out


class RowSample:
    """The ``capacity`` rows with the smallest priorities, numeric columns only.

    Exact (every row kept) while ``seen <= capacity``. Rows are stored sorted by priority,
    so two samples of the same set of rows are equal array for array.
    """

    __slots__ = ("capacity", "columns", "prio", "seen")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise MetricsError(f"sample capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.seen = 0
        self.prio: U64Array = np.empty(0, dtype=np.uint64)
        self.columns: dict[str, FloatArray] = {}

    @property
    def exact(self) -> bool:
        """True while every row offered is kept (the sample *is* the data)."""
        return self.seen <= self.capacity

    def __len__(self) -> int:
        return int(self.prio.size)

    def column(self, name: str) -> FloatArray:
        """The column's kept values, NaN (missing) dropped, in priority order."""
        col = self.columns.get(name)
        if col is None:
            return np.empty(0, dtype=np.float64)
        return col[~np.isnan(col)]

    def add(self, prio: U64Array, columns: Mapping[str, FloatArray]) -> None:
        """Offer a batch of rows: ``prio`` has one entry per row, each column one value per row."""
        m = int(prio.size)
        self.seen += m
        if m == 0:
            return
        batch_cols = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
        if self.prio.size >= self.capacity:
            keep = prio < self.prio[-1]  # only rows beating the current worst can enter
            if not keep.any():
                return
            prio = prio[keep]
            batch_cols = {k: v[keep] for k, v in batch_cols.items()}
        self._combine(prio, batch_cols)

    def _combine(self, prio: U64Array, cols: Mapping[str, FloatArray]) -> None:
        n_old, n_new = self.prio.size, prio.size
        all_prio = np.concatenate([self.prio, prio])
        order = np.argsort(all_prio, kind="stable")[: self.capacity]
        names = sorted(set(self.columns) | set(cols))
        out: dict[str, FloatArray] = {}
        for name in names:
            old = self.columns.get(name)
            new = cols.get(name)
            merged = np.concatenate(
                [
                    old if old is not None else np.full(n_old, np.nan),
                    new if new is not None else np.full(n_new, np.nan),
                ]
            )[order]
            if not np.isnan(merged).all():
                out[name] = merged
        self.prio = all_prio[order]
        self.columns = out

    def merge(self, other: RowSample) -> RowSample:
        """A new sample over the union of both sets of rows (neither input is changed)."""
        if other.capacity != self.capacity:
            raise MetricsError(
                f"cannot merge samples of capacity {self.capacity} and {other.capacity}"
            )
        out = RowSample(self.capacity)
        out.seen = self.seen + other.seen
        out.prio, out.columns = self.prio, self.columns  # read, not written, by _combine
        out._combine(other.prio, other.columns)
        return out

    # -- serialisation: meta goes to JSON, arrays to the binary blob -----------------------
    def dump(self, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        arrays[f"{prefix}:prio"] = self.prio
        names = list(self.columns)
        for i, name in enumerate(names):
            arrays[f"{prefix}:{i}"] = self.columns[name]
        return {"capacity": self.capacity, "seen": self.seen, "names": names}

    @classmethod
    def load(
        cls, meta: Mapping[str, Any], prefix: str, arrays: Mapping[str, np.ndarray]
    ) -> RowSample:
        out = cls(int(meta["capacity"]))
        out.seen = int(meta["seen"])
        out.prio = np.asarray(arrays[f"{prefix}:prio"], dtype=np.uint64)
        out.columns = {
            name: np.asarray(arrays[f"{prefix}:{i}"], dtype=np.float64)
            for i, name in enumerate(meta["names"])
        }
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RowSample):
            return NotImplemented
        return (
            self.capacity == other.capacity
            and self.seen == other.seen
            and np.array_equal(self.prio, other.prio)
            and self.columns.keys() == other.columns.keys()
            and all(
                np.array_equal(v, other.columns[k], equal_nan=True) for k, v in self.columns.items()
            )
        )

    __hash__ = None  # type: ignore[assignment]


def pack(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    """``TWS1 | u32 header length | orjson header | raw little-endian array buffers``."""
    index: list[list[Any]] = []
    blobs: list[bytes] = []
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        dtype = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        buf = a.astype(dtype, copy=False).tobytes()
        index.append([name, dtype.str, a.size])
        blobs.append(buf)
    header = orjson.dumps({"meta": meta, "arrays": index})
    return b"".join([_MAGIC, struct.pack("<I", len(header)), header, *blobs])


def unpack(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if data[:4] != _MAGIC:
        raise MetricsError("not a serialised metrics state (bad magic)")
    (hlen,) = struct.unpack("<I", data[4:8])
    header = orjson.loads(data[8 : 8 + hlen])
    pos = 8 + hlen
    arrays: dict[str, np.ndarray] = {}
    for name, dstr, size in header["arrays"]:
        dtype = np.dtype(dstr)
        nbytes = dtype.itemsize * int(size)
        arrays[name] = np.frombuffer(data, dtype=dtype, count=int(size), offset=pos).copy()
        pos += nbytes
    if pos != len(data):
        raise MetricsError("serialised metrics state has trailing or missing bytes")
    return header["meta"], arrays


def iter_chunks(n: int, size: int) -> Iterable[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))
