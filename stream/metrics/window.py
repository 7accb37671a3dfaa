"""The partial state of one (model, model_version, window, segment), and its evaluation.

A :class:`WindowState` is what stage 1 keeps per partition and emits on close or revision;
stage 2 merges the partials of all partitions (``a.merge(b)``, any order) and calls
:func:`evaluate_window`. Everything in it is bounded whatever the event count:
``O(capacity * numeric columns)`` for the row samples, ``O(category_cap)`` per column.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

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
from stream.metrics.sampling import FloatArray, RowSample, pack, priorities, unpack
from stream.metrics.scorebins import ScoreBins, add_scores
from stream.metrics.values import argmax as _argmax
from stream.metrics.values import as_number, as_probability, class_key
from stream.metrics.values import lookup as _lookup
from stream.results import (
    ALL_SEGMENT,
    PREDICTION_COLUMN,
    DriftRow,
    Family,
    MetricRow,
    WindowKey,
    WindowResults,
)

if TYPE_CHECKING:
    from stream.metrics.drift import DriftResult
    from stream.metrics.reference import ReferenceProfile

Task = Literal["binary", "multiclass", "regression"]

LATENCY_COLUMN: Final = "__latency_ms__"
LOG_LOSS_EPS: Final = 1e-15
_VERSION: Final = 1
_NONE_TYPE: Final = type(None)
_NUMERIC_TYPES: Final = frozenset({int, float, _NONE_TYPE})
_TEXT_TYPES: Final = frozenset({str, _NONE_TYPE})


class ColumnBatch:
    """One column of a batch, split by value type (see :class:`ColumnStats`)."""

    __slots__ = ("categories", "n_nonfinite", "n_other", "numeric")

    def __init__(self, values: Sequence[Any]) -> None:
        self.numeric: FloatArray | None = None  # one entry per row, NaN where not numeric
        self.n_nonfinite = 0
        self.n_other = 0
        self.categories: dict[str, int] = {}
        types = set(map(type, values))
        if types <= _NUMERIC_TYPES:
            try:
                self._numeric(np.array(values, dtype=np.float64))
                return
            except OverflowError:
                pass
        if types <= _TEXT_TYPES:
            counts = Counter(values)
            counts.pop(None, None)
            self.categories = dict(counts)
            return
        self._slow(values)

    def _numeric(self, arr: FloatArray) -> None:
        finite = np.isfinite(arr)
        if not finite.all():
            self.n_nonfinite = int(np.isinf(arr).sum())
            arr[~finite] = np.nan
        self.numeric = arr if finite.any() else None

    def _slow(self, values: Sequence[Any]) -> None:
        arr = np.full(len(values), np.nan)
        cats: Counter[str] = Counter()
        for i, v in enumerate(values):
            if v is None:
                continue
            if isinstance(v, bool):
                cats["true" if v else "false"] += 1
            elif isinstance(v, int | float):
                try:
                    x = float(v)
                except OverflowError:
                    x = math.inf if v > 0 else -math.inf
                if math.isfinite(x):
                    arr[i] = x
                elif not math.isnan(x):
                    self.n_nonfinite += 1
            elif isinstance(v, str):
                cats[str(v)] += 1
            else:
                self.n_other += 1
        self.categories = dict(cats)
        self.numeric = arr if not np.isnan(arr).all() else None

    def finite_values(self) -> FloatArray | None:
        if self.numeric is None:
            return None
        return self.numeric[~np.isnan(self.numeric)]


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
        if task not in ("binary", "multiclass", "regression"):
            raise MetricsError(f"unknown task {task!r}")
        self.task: Task = task
        self.positive_label = class_key(positive_label) or "1"
        self.sample_capacity = int(sample_capacity)
        self.category_cap = int(category_cap)
        self.max_columns = int(max_columns)
        self.seed = int(seed)
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

    @classmethod
    def for_model(cls, model: ModelSettings, settings: MetricsSettings, **kw: Any) -> WindowState:
        """A state configured from the settings (the usual constructor)."""
        return cls(model.task, model.positive_label, sample_capacity=settings.sample_capacity, **kw)

    # ------------------------------------------------------------------ adding events
    def add_predictions(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Add a batch of decoded prediction events (one numpy conversion per column)."""
        n = len(events)
        if n == 0:
            return
        prio = priorities(
            [e.get("request_id") for e in events], self.seed, offset=self.n_predictions
        )
        self.n_predictions += n
        feats = [f if isinstance(f := e.get("features"), Mapping) else {} for e in events]
        names = sorted(set().union(*(f.keys() for f in feats)))
        kept: list[str] = []
        for name in names:
            if name not in self.columns:
                if len(self.columns) >= self.max_columns:
                    self.dropped_values += sum(1 for f in feats if f.get(name) is not None)
                    continue
                self.columns[name] = ColumnStats(self.category_cap)
            kept.append(name)
        sample_cols: dict[str, FloatArray] = {}
        for name, values in zip(kept, _columns(feats, kept), strict=True):
            self._add_column(name, ColumnBatch(values), sample_cols)

        pred_values, probs, decided, pred_keys, score_maps = self._read_predictions(events)
        if PREDICTION_COLUMN not in self.columns:
            self.columns[PREDICTION_COLUMN] = ColumnStats(self.category_cap)
        self._add_column(PREDICTION_COLUMN, ColumnBatch(pred_values), sample_cols)

        lat = ColumnBatch([e.get("latency_ms") for e in events])
        if lat.numeric is not None:
            sample_cols[LATENCY_COLUMN] = lat.numeric
            self.latency.add(lat.numeric[~np.isnan(lat.numeric)])
        self.sample.add(prio, sample_cols)

        if self.task != "regression":
            self._add_decisions(probs, decided, pred_keys, score_maps)

    def _add_column(
        self, name: str, batch: ColumnBatch, sample_cols: dict[str, FloatArray]
    ) -> None:
        self.columns[name].add(
            batch.finite_values(), batch.n_nonfinite, batch.categories, batch.n_other
        )
        if batch.numeric is not None:
            sample_cols[name] = batch.numeric

    def _read_predictions(
        self, events: Sequence[Mapping[str, Any]]
    ) -> tuple[
        list[Any],
        list[float | None],
        list[bool | None],
        list[str | None],
        list[Mapping[str, Any] | None],
    ]:
        """Per event: drift value of the prediction, probability, decision, class, scores."""
        values: list[Any] = []
        probs: list[float | None] = []
        decided: list[bool | None] = []
        keys: list[str | None] = []
        scores: list[Mapping[str, Any] | None] = []
        pos = self.positive_label
        for e in events:
            pred = e.get("prediction")
            if self.task == "regression":
                values.append(pred)
                continue
            if self.task == "binary":
                p = as_probability(e.get("probability"))
                if p is None and isinstance(pred, float) and not pred.is_integer():
                    p = as_probability(pred)  # a bare score in "prediction"
                    pred = None
                key = class_key(pred)
                dec = (key == pos) if key is not None else (p >= 0.5 if p is not None else None)
                values.append(p if p is not None else pred)
                probs.append(p)
                decided.append(dec)
                keys.append(key)
                scores.append(None)
            else:
                sc = e.get("scores")
                sc = sc if isinstance(sc, Mapping) and sc else None
                key = class_key(pred)
                if key is None and sc is not None:
                    key = _argmax(sc)
                values.append(key)
                probs.append(None)
                decided.append(None if key is None else key == pos)
                keys.append(key)
                scores.append(sc)
        return values, probs, decided, keys, scores

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
        if not pairs:
            return
        events = [p for p, _ in pairs]
        labels = [lab.get("label") if isinstance(lab, Mapping) else lab for _, lab in pairs]
        if self.task == "regression":
            self._add_regression(events, labels)
        else:
            self._add_classification(events, labels)

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

    def _add_classification(self, events: list[Mapping[str, Any]], labels: list[Any]) -> None:
        valid = [(e, class_key(lab)) for e, lab in zip(events, labels, strict=True)]
        self.invalid_labels += sum(1 for _, k in valid if k is None)
        rows = [(e, k) for e, k in valid if k is not None]
        self.n_labelled += len(rows)
        if not rows:
            return
        evs = [e for e, _ in rows]
        _, probs, decided, keys, score_maps = self._read_predictions(evs)
        add_scores(self.labelled_scores, self.task, probs, decided, keys, score_maps,
                   [k for _, k in rows], self.positive_label)
        if self.task == "binary":
            pos = self.positive_label
            y = np.array([k == pos for _, k in rows], dtype=bool)
            d = np.array([x if x is not None else False for x in decided], dtype=bool)
            has_d = np.array([x is not None for x in decided], dtype=bool)
            c = self.binary.counts
            c["tp"] += int((has_d & d & y).sum())
            c["fp"] += int((has_d & d & ~y).sum())
            c["tn"] += int((has_d & ~d & ~y).sum())
            c["fn"] += int((has_d & ~d & y).sum())
            has_p = np.array([p is not None for p in probs], dtype=bool)
            if has_p.any():
                p = np.array([x for x in probs if x is not None], dtype=np.float64)
                yp = y[has_p]
                pc = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
                c["n_ll"] += int(p.size)
                self.binary.sums["logloss"].add(-np.where(yp, np.log(pc), np.log1p(-pc)))
                ids = [e.get("request_id") for e, hp in zip(evs, has_p, strict=True) if hp]
                self.label_sample.add(
                    priorities(ids, self.seed, offset=self.label_sample.seen),
                    {"score": p, "y": yp.astype(np.float64)},
                )
        else:
            cells = Counter(
                f"{k}\x1f{pk}" for (_, k), pk in zip(rows, keys, strict=True) if pk is not None
            )
            self.confusion = merge_counters(self.confusion, cells)
            p_true: list[float] = []
            for (_, k), sc in zip(rows, score_maps, strict=True):
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
        out = WindowState(
            self.task,
            self.positive_label,
            sample_capacity=self.sample_capacity,
            category_cap=min(self.category_cap, other.category_cap),
            max_columns=self.max_columns,
            seed=self.seed,
        )
        out.n_predictions = self.n_predictions + other.n_predictions
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
        out = cls(
            meta["task"],
            meta["pos"],
            sample_capacity=meta["cap"],
            category_cap=meta["ccap"],
            max_columns=meta["mcol"],
            seed=meta["seed"],
        )
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


def _columns(feats: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[Sequence[Any]]:
    """Transpose a batch of feature dicts into one value list per name (None when missing).

    One ``itemgetter`` call per event when every event has every name (the common case),
    instead of one ``dict.get`` per event and name.
    """
    if not names:
        return []
    try:
        rows = list(map(operator.itemgetter(*names), feats))
    except KeyError:
        return [[f.get(name) for f in feats] for name in names]
    if len(names) == 1:
        return [rows]
    return list(zip(*rows, strict=True))


# ---------------------------------------------------------------------- evaluation
def performance_metrics(state: WindowState) -> dict[str, float | None]:
    """Realised performance of the labelled rows of ``state`` (empty without labels)."""
    from stream.metrics.performance import binary_metrics, multiclass_metrics, regression_metrics

    if state.n_labelled == 0:
        return {}
    if state.task == "binary":
        return binary_metrics(
            state.binary.counts,
            state.binary,
            state.label_sample.column("score"),
            state.label_sample.column("y"),
        )
    if state.task == "multiclass":
        return multiclass_metrics(state.confusion, state.multiclass_logloss)
    return regression_metrics(state.regression)


def _drift_results(
    state: WindowState,
    reference: ReferenceProfile,
    settings: MetricsSettings,
    model: ModelSettings,
    skip: str | None = None,
) -> tuple[list[DriftResult], DriftResult | None]:
    """Per-feature results (corrected across features) and the prediction's result.

    ``skip`` is the feature a segment is defined by (``country`` in ``country=DE``): within
    its own segment it is constant by construction, so its "drift" says nothing.
    """
    from stream.metrics.drift import DriftResult, adjust_p_values, column_drift

    features: list[DriftResult] = []
    prediction: DriftResult | None = None
    for name, ref in reference.columns.items():
        if name == skip:
            continue
        current: FloatArray | dict[str, int]
        if ref.kind == "numeric":
            reference_values: FloatArray | Mapping[str, int] = ref.sample
            current = state.sample.column(name)
        else:
            reference_values = ref.counts
            stats = state.columns.get(name)
            current = dict(stats.categories.counts) if stats is not None else {}
        method = model.drift_methods.get(name)
        threshold = model.drift_thresholds.get(name)
        try:
            result = column_drift(
                name,
                reference_values,
                current,
                method=method,
                threshold=threshold,
                min_sample_size=settings.min_sample_size,
                reference_size=ref.count,
            )
        except MetricsError:
            # A configured method that does not fit the column's kind: no verdict, not a crash.
            size = current.size if isinstance(current, np.ndarray) else sum(current.values())
            result = DriftResult(
                name, method or "invalid", None, None, threshold or 0.0, None, ref.count, int(size)
            )
        if name == PREDICTION_COLUMN:
            prediction = result
        else:
            features.append(result)
    features = adjust_p_values(features, settings.correction)
    if prediction is not None:
        prediction = adjust_p_values([prediction], settings.correction)[0]
    return features, prediction


def evaluate_window(
    state: WindowState,
    reference: ReferenceProfile | None,
    settings: MetricsSettings,
    model: ModelSettings,
    key: WindowKey,
    revision: int,
    computed_at: int,
) -> WindowResults:
    """Every row of one window (or one revision of it), following :mod:`stream.results`.

    - ``drift`` (needs a reference): one :class:`DriftRow` per reference feature and for
      ``__prediction__``; p-values corrected across the window's features with
      ``settings.correction`` (the prediction is its own family of one); metric rows
      ``dataset_drift_share``, ``dataset_drift`` (1/0) and ``drifted_features``, feature "";
    - ``quality``: ``row_count``; per column ``null_share``, ``type_error_share`` and, with a
      reference, ``out_of_range_share`` / ``unseen_category_share`` (:mod:`.quality`);
    - ``service``: ``count``, ``latency_p50/p90/p99/mean/min/max``;
    - ``performance`` (once labels exist, :mod:`.performance`); ``estimate`` (:mod:`.estimate`).

    Every metric row carries ``labelled_count`` = labelled rows and ``coverage`` =
    labelled / predicted rows (None without predictions).
    """
    from stream.metrics.estimate import estimate_rows
    from stream.metrics.quality import latency_metrics, quality_metrics

    n = state.n_predictions
    coverage = state.n_labelled / n if n else None
    common = (key.model_id, key.model_version, key.segment, key.window_start, key.window_end)
    metrics: list[MetricRow] = []

    def row(family: Family, metric: str, feature: str, value: float | None, size: int) -> None:
        if value is not None and not math.isfinite(value):
            value = None if math.isnan(value) else value
        metrics.append(
            MetricRow(
                *common,
                family,
                metric,
                feature,
                value,
                size,
                state.n_labelled,
                coverage,
                revision,
                computed_at,
            )
        )

    drift_rows: list[DriftRow] = []
    if reference is not None:
        segment_key = key.segment.split("=", 1)[0] if "=" in key.segment else None
        features, prediction = _drift_results(state, reference, settings, model, segment_key)
        for r in [*features, *([prediction] if prediction is not None else [])]:
            drift_rows.append(
                DriftRow(
                    *common,
                    r.feature,
                    r.method,
                    r.statistic,
                    r.p_value,
                    r.p_value_adjusted,
                    r.threshold,
                    r.drifted,
                    r.reference_size,
                    r.current_size,
                    revision,
                    computed_at,
                )
            )
        from stream.metrics.drift import dataset_drift

        share, drifted = dataset_drift(features, share=settings.dataset_drift_share)
        row("drift", "dataset_drift_share", "", share, n)
        row("drift", "dataset_drift", "", None if drifted is None else float(drifted), n)
        row("drift", "drifted_features", "", float(sum(bool(r.drifted) for r in features)), n)

    row("quality", "row_count", "", float(n), n)
    names = sorted(set(state.columns) | (set(reference.columns) if reference else set()))
    for metric, feature, value in quality_metrics(state, reference, names):
        row("quality", metric, feature, value, n)
    if reference is not None and key.segment == ALL_SEGMENT and settings.distribution_rows:
        from stream.metrics.distribution import distribution_rows

        for feature, metric, value, size in distribution_rows(
                reference, {c: state.sample.column(c) for c in reference.columns},
                {c: dict(s.categories.counts) for c, s in state.columns.items()}):
            row("distribution", metric, feature, value, size)

    row("service", "count", "", float(n), n)
    for metric, value in latency_metrics(state, LATENCY_COLUMN):
        row("service", metric, "", value, state.latency.n)

    realised = performance_metrics(state)
    for metric, value in realised.items():
        row("performance", metric, "", value, state.n_labelled)

    calibration = reference.calibration if reference is not None else None
    for metric, value, size in estimate_rows(
        state.task, state.scores, state.labelled_scores, calibration, realised,
        z=settings.estimate_band_z, min_calibration_rows=settings.min_calibration_rows,
    ):
        row("estimate", metric, "", value, size)

    return WindowResults(drift=tuple(drift_rows), metrics=tuple(metrics))
