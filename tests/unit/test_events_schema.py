"""The hand-written validator agrees with the JSON Schemas in ``schemas/`` (the contract).

Property: whatever the validator accepts, the schema accepts; whatever the schema accepts, the
validator accepts too, except for the documented timestamp cases that a pattern cannot express
(impossible calendar dates, date-times before 1970) and a trailing newline, which the Python
``jsonschema`` package lets through a ``$`` pattern although ECMA-262 (JSON Schema's regex
dialect) does not.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource

from stream.errors import ValidationError
from stream.events import (
    SCHEMA_DIR,
    _plainly_valid,
    _validate_prediction,
    load_schema,
    validate_label,
    validate_prediction,
)

SCHEMAS = {name: load_schema(name) for name in ("prediction", "label", "alert")}
REGISTRY = Registry().with_resources(
    (f"{SCHEMA_DIR.as_uri()}/{name}.v1.schema.json", Resource.from_contents(doc))
    for name, doc in SCHEMAS.items()
)


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    doc = dict(SCHEMAS[name], **{"$id": f"{SCHEMA_DIR.as_uri()}/{name}.v1.schema.json"})
    return jsonschema.Draft202012Validator(doc, registry=REGISTRY)


PREDICTION = schema_validator("prediction")
LABEL = schema_validator("label")

json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5),
)
anything = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6,
)
timestamps = st.one_of(
    st.integers(-5, 253402300800005),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01 00:00:00.5+01:00", "2024-01-01",
                     "2024-02-30T00:00:00Z", "2024-01-01T00:00:00Z\n", "1969-01-01T00:00:00Z"]),
    st.floats(0, 1e13, allow_nan=False), anything,
)
probability = st.one_of(st.floats(-0.5, 1.5, allow_nan=False), st.booleans(),
                        st.integers(-1, 2))
small_dict = st.dictionaries(st.text(max_size=130), json_scalar, max_size=4)

prediction_events = st.fixed_dictionaries(
    {},
    optional={
        "request_id": st.one_of(st.text(max_size=3), st.integers(-(2**53), 2**53),
                                st.just("x" * 257)),
        "model_id": st.one_of(st.sampled_from(["m", "fraud.v2", "a b", ""]), st.integers(0, 9)),
        "model_version": st.one_of(st.text(max_size=4), st.integers(0, 9)),
        "timestamp": timestamps,
        "features": st.one_of(small_dict, anything),
        "prediction": anything,
        "probability": probability,
        "scores": st.one_of(st.dictionaries(st.text(max_size=2), probability, max_size=3),
                            anything),
        "segments": st.one_of(st.dictionaries(st.text(max_size=66), st.text(max_size=3),
                                              max_size=3), small_dict),
        "latency_ms": st.one_of(st.floats(-1, 1e6, allow_nan=False), st.booleans(),
                                st.text(max_size=2)),
        "schema_version": st.one_of(st.just(1), st.just(2), st.just(True), st.just(1.0)),
        "extra": anything,
    },
)
label_events = st.fixed_dictionaries(
    {},
    optional={
        "request_id": st.one_of(st.text(max_size=3), st.integers(-(2**53), 2**53)),
        "model_id": st.one_of(st.sampled_from(["m", "a b"]), st.integers(0, 9)),
        "timestamp": timestamps,
        "label": anything,
        "schema_version": st.one_of(st.just(1), st.just(2)),
    },
)


def ours_accepts(validate: Any, event: dict[str, Any]) -> tuple[bool, str | None]:
    try:
        validate(copy.deepcopy(event))
    except ValidationError as exc:
        return False, exc.reason
    return True, None


def check_agreement(schema: jsonschema.Draft202012Validator, validate: Any,
                    event: dict[str, Any]) -> None:
    event = orjson.loads(orjson.dumps(event))  # exactly what a consumer would see
    schema_ok = schema.is_valid(event)
    ours_ok, reason = ours_accepts(validate, event)
    if ours_ok:
        assert schema_ok, f"validator accepted what the schema refuses: {event}"
    elif schema_ok:
        # Python's `$` (used by the jsonschema package) also matches before a final newline;
        # ECMA-262, which JSON Schema specifies, does not. We follow ECMA-262.
        quirk = any(isinstance(v, str) and v.endswith("\n") for v in event.values())
        assert quirk or reason in {"bad_timestamp", "out_of_range"}, (event, reason)
        assert quirk or isinstance(event.get("timestamp"), str), (event, reason)


@settings(max_examples=300, deadline=None)
@given(prediction_events)
def test_prediction_validator_matches_schema(event: dict[str, Any]) -> None:
    check_agreement(PREDICTION, validate_prediction, event)


@settings(max_examples=300, deadline=None)
@given(label_events)
def test_label_validator_matches_schema(event: dict[str, Any]) -> None:
    check_agreement(LABEL, validate_label, event)


#: Valid predictions of the usual shape, then at most two fields set to odd values (wrong
#: types, bounds, what the inline check leaves to the rules), or removed.
ODD: dict[str, list[Any]] = {
    "request_id": ["", "x" * 257, 7, None],
    "model_id": ["a b", "", 3, "n" * 129],
    "timestamp": [-1, 253402300800000, True, 1.7e12, "2024-01-01T00:00:00Z", None],
    "features": [[1], {"": 1}, {"k" * 129: 1}, {"x": [1]}, {"x": {}}, None],
    "prediction": [None, [1], {}, 2**70],
    "model_version": ["v" * 129, None, 3],
    "probability": [-0.1, 1.5, True, None, "0.5", 1, 0],
    "scores": [{"a": 0.5}, {}],
    "segments": [None, [], {"": "x"}, {"s" * 65: "x"}, {"k": 1}, {"k": "v" * 129}],
    "latency_ms": [-1, True, None, "3", 0],
    "schema_version": [1, 2, True, 1.0],
    "extra": [None, [1]],
}


@st.composite
def nearly_valid(draw: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "request_id": draw(st.text(min_size=1, max_size=4)),
        "model_id": draw(st.sampled_from(["m", "fraud.v2"])),
        "timestamp": draw(st.integers(0, 253402300799999)),
        "features": draw(st.dictionaries(st.text(min_size=1, max_size=3), json_scalar,
                                         max_size=4)),
        "prediction": draw(st.one_of(st.booleans(), st.integers(), st.text(max_size=3),
                                     st.floats(allow_nan=False, allow_infinity=False))),
        "probability": draw(st.floats(0, 1)),
        "segments": draw(st.dictionaries(st.text(min_size=1, max_size=3),
                                         st.text(max_size=3), max_size=2)),
        "latency_ms": draw(st.floats(0, 1e6)),
        "model_version": draw(st.text(max_size=3)),
    }
    for name in draw(st.lists(st.sampled_from(sorted(ODD)), max_size=2)):
        if draw(st.booleans()):
            event.pop(name, None)
        else:
            event[name] = draw(st.sampled_from(ODD[name]))
    return event


@settings(max_examples=1000, deadline=None)
@given(nearly_valid())
def test_the_inline_check_passes_only_what_the_rules_pass(event: dict[str, Any]) -> None:
    """The usual event is checked inline (``_plainly_valid``); whatever it lets through, the
    rules one by one (``_validate_prediction``) accept, and normalise the same way."""
    ours_accepts(_validate_prediction, event)  # a valid model id is remembered here
    if _plainly_valid(copy.deepcopy(event)):
        assert ours_accepts(_validate_prediction, event) == (True, None), event
        assert validate_prediction(copy.deepcopy(event)) == _validate_prediction(
            copy.deepcopy(event))


def test_examples_in_readme_shape_are_valid_both_ways() -> None:
    event = {"request_id": "r1", "model_id": "fraud", "timestamp": "2024-05-01T12:00:00Z",
             "features": {"amount": 12.5}, "prediction": 1, "probability": 0.8}
    assert PREDICTION.is_valid(event)
    assert ours_accepts(validate_prediction, event) == (True, None)


def test_schemas_are_valid_draft_2020_12() -> None:
    for doc in SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(doc)
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"].endswith("/v1")


VALID_PREDICTION = {"request_id": "r1", "model_id": "m", "model_version": "v", "timestamp": 5,
                    "features": {"a": 1.5, "b": "x", "c": None, "d": True}, "prediction": "yes",
                    "probability": 0.5, "scores": {"yes": 0.5, "no": 0.5},
                    "segments": {"country": "DE"}, "latency_ms": 2}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([*sorted(VALID_PREDICTION), "extra"]),
       st.one_of(st.just(...), anything, timestamps, probability, small_dict))
def test_near_valid_predictions_agree(field: str, value: Any) -> None:
    """One field replaced (or removed, for ``...``) in a valid event: the two still agree."""
    event = copy.deepcopy(VALID_PREDICTION)
    if value is ...:
        event.pop(field, None)
    else:
        event[field] = value
    check_agreement(PREDICTION, validate_prediction, event)


def test_near_valid_generator_reaches_both_outcomes() -> None:
    """Guards the property tests above: they must see accepted and refused events alike."""
    outcomes = set()
    for field, value in [("latency_ms", 1e9), ("latency_ms", -1), ("features", {}),
                         ("features", {"a": [1]}), ("timestamp", "2024-02-30T00:00:00Z")]:
        event = dict(VALID_PREDICTION, **{field: value})
        outcomes.add((PREDICTION.is_valid(event), ours_accepts(validate_prediction, event)[0]))
    assert outcomes == {(True, True), (False, False), (True, False)}
