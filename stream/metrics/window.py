"""The partial state of one (model, model_version, window, segment).

A :class:`WindowState` is what stage 1 keeps per partition and emits on close or revision;
stage 2 merges the partials of all partitions (``a.merge(b)``, any order) and calls
:func:`stream.metrics.evaluate.evaluate_window`. Everything in it is bounded whatever the
event count: ``O(capacity * numeric columns)`` for the row samples, ``O(category_cap)`` per
column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np

from stream.config import MetricsSettings, ModelSettings
from stream.errors import MetricsError
from stream.metrics.accumulators import (
    ColumnStats,
    ScalarStats,
    SumSet,
    merge_counters,
    two_product_square,
)
from stream.metrics.batch import (
    LabelledBatch,
    PredictionBatch,
    take,
)
from stream.metrics.columns import ColumnBatch, IntArray, Rows
from stream.metrics.sampling import FloatArray, RowSample, pack, unpack
from stream.metrics.scorebins import ScoreBins, add_binary_scores, add_scores
from stream.metrics.values import as_number, as_probability, class_key
from stream.metrics.values import lookup as _lookup
from stream.results import PREDICTION_COLUMN

Task = Literal["binary", "multiclass", "regression"]

LATENCY_COLUMN: Final = "__latency_ms__"
LOG_LOSS_EPS: Final = 1e-15
_VERSION: Final = 1


class WindowState:
    """Mergeable partial aggregate of one (model, model_version, window, segment).

    Parameters
    ----------
    task, positive_label
        As in :class:`stream.config.ModelSettings`; they decide how predictions and labels
        are read. Partials can only merge with partials of the same task and settings.
    sample_capacity
        Rows kept exactly in the row samples (features, prediction, latency; and the
        labelled score/label pairs); past it a uniform sample (:mod:`.sampling`).
    category_cap
        Distinct categories kept per column, the rest folded into ``__other__``.
    max_columns
        Distinct feature names tracked; the values of further new names are ignored and
        counted in ``dropped_values`` (a guard against a flood of feature names).
    seed
        Keys the row priorities (:func:`.sampling.priorities`).

    Examples
    --------
    >>> a = WindowState("binary", 1); b = WindowState("binary", 1)
    >>> a.add_predictions([{"request_id": "r1", "features": {"x": 1.0}, "probability": 0.9}])
    >>> b.add_predictions([{"request_id": "r2", "features": {"x": 2.0}, "probability": 0.2}])
    >>> a.merge(b).n_predictions
    2
    """

    def __init__(
        self,
        task: Task = "binary",
        positive_label: str | int | bool = 1,
        *,
        sample_capacity: int = 5_000,
        category_cap: int = 1_000,
        max_columns: int = 1_000,
        seed: int = 0,
    ) -> None:
        self._configure(task, positive_label, sample_capacity, category_cap, max_columns, seed)
        self.n_predictions = 0
        self.columns: dict[str, ColumnStats] = {}
        self.dropped_values = 0
        self.sample = RowSample(self.sample_capacity)
        self.latency = ScalarStats()
        # Classification decisions (for fairness): predicted class == positive label.
        self.decisions = SumSet((), ("n", "positive"))
        # Label-free estimate inputs: score histograms (scorebins.py, estimate.py).
        self.scores = ScoreBins()
        # Labelled rows.
        self.n_labelled = 0
        self.invalid_labels = 0
        self.binary = SumSet(("logloss",), ("tp", "fp", "tn", "fn", "n_ll"))
        self.multiclass_logloss = SumSet(("logloss",), ("n_ll",))
        self.confusion: dict[str, int] = {}  # "true\x1fpred" -> count (multiclass)
        self.regression = SumSet(("err", "abs", "sq", "ape", "y", "y2"), ("n", "n_ape"))
        self.label_sample = RowSample(self.sample_capacity)  # "score", "y" (binary)
        self.labelled_scores = ScoreBins()  # groups suffixed with the label's side

    def _configure(self, task: Task, positive_label: str | int | bool, sample_capacity: int,
                   category_cap: int, max_columns: int, seed: int) -> None:
        if task not in ("binary", "multiclass", "regression"):
            raise MetricsError(f"unknown task {task!r}")
        self.task: Task = task
        self.positive_label = class_key(positive_label) or "1"
        self.sample_capacity = int(sample_capacity)
        self.category_cap = int(category_cap)
        self.max_columns = int(max_columns)
        self.seed = int(seed)

    @classmethod
    def _bare(cls, task: Task, positive_label: str | int | bool, sample_capacity: int,
              category_cap: int, max_columns: int, seed: int) -> WindowState:
        """A state configured but with no accumulators, for :meth:`merge` and
        :meth:`from_bytes`, which set every one: building empty ones first to replace them
        was a tenth of a merge (stage 2 merges and decodes thousands of small states)."""
        out = cls.__new__(cls)
        out._configure(task, positive_label, sample_capacity, category_cap, max_columns, seed)
        return out

    @classmethod
    def for_model(cls, model: ModelSettings, settings: MetricsSettings, **kw: Any) -> WindowState:
        """A state configured from the settings (the usual constructor)."""
        return cls(model.task, model.positive_label, sample_capacity=settings.sample_capacity, **kw)

    # ------------------------------------------------------------------ adding events
    def add_predictions(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Add a batch of decoded prediction events (one numpy conversion per column)."""
        if events:
            self.add_batch(PredictionBatch.of(events, self.task, self.positive_label,
                                              self.seed, offset=self.n_predictions))

    def add_batch(self, batch: PredictionBatch, rows: Rows = None) -> None:
        """Add the ``rows`` of a batch read once for several states (None: all of it);
        equal to :meth:`add_predictions` of those events."""
        if batch.seed != self.seed:
            raise MetricsError(f"batch read with seed {batch.seed}, state has {self.seed}")
        n = batch.n if rows is None else len(rows)
        if n == 0:
            return
        self.n_predictions += n
        sample_cols: dict[str, FloatArray] = {}
        for name in batch.names_in(rows):
            if name not in self.columns:
                if len(self.columns) >= self.max_columns:
                    self.dropped_values += batch.non_null(name, rows)
                    continue
                self.columns[name] = ColumnStats(self.category_cap)
            self._add_column(name, batch.features[name], rows, sample_cols)
        if PREDICTION_COLUMN not in self.columns:
            self.columns[PREDICTION_COLUMN] = ColumnStats(self.category_cap)
        self._add_column(PREDICTION_COLUMN, batch.prediction, rows, sample_cols)

        latency, finite = batch.latency.numeric_rows(rows)
        if latency is not None and finite is not None:
            sample_cols[LATENCY_COLUMN] = latency
            self.latency.add(finite)
        self.sample.add(batch.prio if rows is None else batch.prio[rows], sample_cols)

        if batch.decisions is not None:  # binary: as arrays
            dec = batch.decisions.rows(rows)
            self.decisions.counts["n"] += int(dec.has_d.sum())
            self.decisions.counts["positive"] += int((dec.has_d & dec.d).sum())
            add_binary_scores(self.scores, dec.bins, dec.has_p & dec.has_d, dec.d)
        elif self.task != "regression":
            _, probs, decided, keys, score_maps = batch.read
            self._add_decisions(take(probs, rows), take(decided, rows), take(keys, rows),
                                take(score_maps, rows))

    def _add_column(self, name: str, batch: ColumnBatch, rows: Rows,
                    sample_cols: dict[str, FloatArray]) -> None:
        numeric, stats = batch.take(rows)
        self.columns[name].add(*stats)
        if numeric is not None:
            sample_cols[name] = numeric

    def _add_decisions(
        self,
        probs: list[float | None],
        decided: list[bool | None],
        keys: list[str | None],
        score_maps: list[Mapping[str, Any] | None],
    ) -> None:
        dec = [d for d in decided if d is not None]
        self.decisions.counts["n"] += len(dec)
        self.decisions.counts["positive"] += sum(dec)
        add_scores(self.scores, self.task, probs, decided, keys, score_maps)

    def add_labelled(self, pairs: Sequence[tuple[Mapping[str, Any], Any]]) -> None:
        """Add (prediction event, label) pairs; the label may be the value or a label event."""
        if pairs:
            self.add_labelled_batch(LabelledBatch.of(pairs, self.task, self.positive_label,
                                                     self.seed))

    def add_labelled_batch(self, batch: LabelledBatch, rows: Rows = None) -> None:
        """Add the ``rows`` of pairs read once for several states (None: all of them);
        equal to :meth:`add_labelled` of those pairs."""
        if self.task == "regression":
            self._add_regression(take(batch.events, rows), take(batch.labels, rows))
        else:
            self._add_classification(batch, np.arange(batch.n) if rows is None else rows)

    def _add_regression(self, events: list[Mapping[str, Any]], labels: list[Any]) -> None:
        ys: list[float] = []
        ps: list[float] = []
        for e, lab in zip(events, labels, strict=True):
            y = as_number(lab)
            if y is None:
                self.invalid_labels += 1
                continue
            self.n_labelled += 1
            p = as_number(e.get("prediction"))
            if p is not None:
                ys.append(y)
                ps.append(p)
        if not ys:
            return
        y_arr = np.array(ys, dtype=np.float64)
        err = np.array(ps, dtype=np.float64) - y_arr
        with np.errstate(over="ignore", invalid="ignore"):
            r = self.regression
            r.counts["n"] += y_arr.size
            r.sums["err"].add(err)
            r.sums["abs"].add(np.abs(err))
            r.sums["sq"].add(np.concatenate(two_product_square(err)))
            r.sums["y"].add(y_arr)
            r.sums["y2"].add(np.concatenate(two_product_square(y_arr)))
            nz = y_arr != 0
            r.counts["n_ape"] += int(nz.sum())
            r.sums["ape"].add(np.abs(err[nz]) / np.abs(y_arr[nz]))

    def _add_classification(self, batch: LabelledBatch, rows: IntArray) -> None:
        valid = batch.valid[rows]
        self.invalid_labels += int(valid.size - valid.sum())
        sel = rows[valid]
        self.n_labelled += int(sel.size)
        if not sel.size:
            return
        assert batch.read is not None
        _, probs, decided, keys, score_maps = batch.read
        if batch.decisions is not None:  # binary
            dec, y = batch.decisions.rows(sel), batch.y[sel]
            add_binary_scores(self.labelled_scores, dec.bins, dec.has_p & dec.has_d, dec.d, y)
            d, has_d = dec.d, dec.has_d
            # One count per cell, 2 * decision + label: tn, fn, fp, tp.
            counts = np.bincount(2 * d[has_d].astype(np.intp) + y[has_d], minlength=4)
            c = self.binary.counts
            c["tn"] += int(counts[0])
            c["fn"] += int(counts[1])
            c["fp"] += int(counts[2])
            c["tp"] += int(counts[3])
            if dec.has_p.any():
                p = dec.p[dec.has_p]
                yp = y[dec.has_p]
                pc = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
                c["n_ll"] += int(p.size)
                self.binary.sums["logloss"].add(-np.where(yp, np.log(pc), np.log1p(-pc)))
                self.label_sample.add(
                    batch.priorities(sel[dec.has_p], offset=self.label_sample.seen),
                    {"score": p, "y": yp.astype(np.float64)},
                )
            return
        labels = take(batch.keys, sel)
        pkeys, maps = take(keys, sel), take(score_maps, sel)
        add_scores(self.labelled_scores, self.task, take(probs, sel), take(decided, sel), pkeys,
                   maps, labels, self.positive_label)
        cells = Counter(f"{k}\x1f{pk}" for k, pk in zip(labels, pkeys, strict=True)
                        if pk is not None)
        self.confusion = merge_counters(self.confusion, cells)
        p_true: list[float] = []
        for k, sc in zip(labels, maps, strict=True):
            if sc is not None:
                pk_true = as_probability(_lookup(sc, k))
                p_true.append(pk_true if pk_true is not None else 0.0)
        if p_true:
            pt = np.clip(np.array(p_true, dtype=np.float64), LOG_LOSS_EPS, 1.0)
            self.multiclass_logloss.counts["n_ll"] += int(pt.size)
            self.multiclass_logloss.sums["logloss"].add(-np.log(pt))

    # ------------------------------------------------------------------ merge
    def _check_compatible(self, other: WindowState) -> None:
        mine = (self.task, self.positive_label, self.sample_capacity, self.seed)
        theirs = (other.task, other.positive_label, other.sample_capacity, other.seed)
        if mine != theirs:
            raise MetricsError(f"cannot merge window states with settings {mine} and {theirs}")

    def merge(self, other: WindowState) -> WindowState:
        """A new state equal to one pass over the events of both (neither input changes)."""
        self._check_compatible(other)
        out = WindowState._bare(self.task, self.positive_label, self.sample_capacity,
                                min(self.category_cap, other.category_cap), self.max_columns,
                                self.seed)
        out.n_predictions = self.n_predictions + other.n_predictions
        out.columns = {}
        out.dropped_values = 0
        names = sorted(set(self.columns) | set(other.columns))
        for name in names:
            a, b = self.columns.get(name), other.columns.get(name)
            if a is not None and b is not None:
                out.columns[name] = a.merge(b)
            elif len(out.columns) < out.max_columns or name == PREDICTION_COLUMN:
                src = a if a is not None else b
                assert src is not None
                out.columns[name] = src.merge(ColumnStats(src.cap))
            else:
                src = a if a is not None else b
                out.dropped_values += src.non_null if src is not None else 0
        out.dropped_values += self.dropped_values + other.dropped_values
        out.sample = self.sample.merge(other.sample)
        out.latency = self.latency.merge(other.latency)
        out.decisions = self.decisions.merge(other.decisions)
        out.scores = self.scores.merge(other.scores)
        out.labelled_scores = self.labelled_scores.merge(other.labelled_scores)
        out.n_labelled = self.n_labelled + other.n_labelled
        out.invalid_labels = self.invalid_labels + other.invalid_labels
        out.binary = self.binary.merge(other.binary)
        out.multiclass_logloss = self.multiclass_logloss.merge(other.multiclass_logloss)
        out.confusion = merge_counters(self.confusion, other.confusion)
        out.regression = self.regression.merge(other.regression)
        out.label_sample = self.label_sample.merge(other.label_sample)
        return out

    def __iadd__(self, other: WindowState) -> WindowState:
        return self.merge(other)

    # ------------------------------------------------------------------ serialisation
    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        meta = {
            "v": _VERSION,
            "task": self.task,
            "pos": self.positive_label,
            "cap": self.sample_capacity,
            "ccap": self.category_cap,
            "mcol": self.max_columns,
            "seed": self.seed,
            "n": self.n_predictions,
            "cols": {k: v.to_json() for k, v in sorted(self.columns.items())},
            "drop": self.dropped_values,
            "sample": self.sample.dump("s", arrays),
            "lat": self.latency.to_json(),
            "dec": self.decisions.to_json(),
            "scores": self.scores.dump("h", arrays),
            "lscores": self.labelled_scores.dump("lh", arrays),
            "nl": self.n_labelled,
            "bad": self.invalid_labels,
            "bin": self.binary.to_json(),
            "mll": self.multiclass_logloss.to_json(),
            "conf": dict(sorted(self.confusion.items())),
            "reg": self.regression.to_json(),
            "lsample": self.label_sample.dump("l", arrays),
        }
        return pack(meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowState:
        meta, arrays = unpack(data)
        if meta.get("v") != _VERSION:
            raise MetricsError(f"unsupported window state version {meta.get('v')!r}")
        out = cls._bare(meta["task"], meta["pos"], meta["cap"], meta["ccap"], meta["mcol"],
                        meta["seed"])
        out.n_predictions = int(meta["n"])
        out.columns = {k: ColumnStats.from_json(v) for k, v in meta["cols"].items()}
        out.dropped_values = int(meta["drop"])
        out.sample = RowSample.load(meta["sample"], "s", arrays)
        out.latency = ScalarStats.from_json(meta["lat"])
        out.decisions = SumSet.from_json(meta["dec"])
        # Partials written before the histograms existed have none (no estimate for them).
        out.scores = ScoreBins.load(meta.get("scores"), "h", arrays)
        out.labelled_scores = ScoreBins.load(meta.get("lscores"), "lh", arrays)
        out.n_labelled = int(meta["nl"])
        out.invalid_labels = int(meta["bad"])
        out.binary = SumSet.from_json(meta["bin"])
        out.multiclass_logloss = SumSet.from_json(meta["mll"])
        out.confusion = {k: int(v) for k, v in meta["conf"].items()}
        out.regression = SumSet.from_json(meta["reg"])
        out.label_sample = RowSample.load(meta["lsample"], "l", arrays)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WindowState):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"WindowState(task={self.task!r}, n_predictions={self.n_predictions}, "
            f"n_labelled={self.n_labelled}, columns={len(self.columns)})"
        )
