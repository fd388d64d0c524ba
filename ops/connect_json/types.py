"""Connect's types, one record each: how JsonConverter reads a JSON value as one, and the fixes a type name or value may take."""

import base64
import dataclasses
import datetime
import difflib
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from bus.envelope.schema import DATE, DECIMAL, TIME, TIMESTAMP
from ops.connect_json.jackson import _is_number, _kind, _padded, _truncate, _wrap, dumps, jackson_base64, node_type, show
from ops.connect_json.problems import _ABSENT, MILLIS_PER_DAY, TYPE_ALIASES

# ------------------------------------------------------------------ Connect's types, one record each

@dataclasses.dataclass(frozen=True)
class Reading:
    """What JsonConverter makes of one JSON value: the value it holds, how it silently changed it
    (what, effect, fix, edit), or the exception it throws."""
    held: Any = None
    change: tuple | None = None   # (what, effect, fix, edit-value or _ABSENT)
    refused: tuple | None = None  # (what, effect, fix, edit-value or _ABSENT)


@dataclasses.dataclass(frozen=True)
class ConnectType:
    """One type of JsonConverter's "type": its JSON name, its name in Connect's messages, and how
    the converter reads a payload value of it (scalars here; array, map and struct in _Doctor)."""
    name: str
    java: str
    read: Callable[[Any], Reading] | None = None


def _int_reader(name: str, bits: int, wider: str) -> Callable[[Any], Reading]:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def read(v) -> Reading:
        if not _is_number(v):
            fix: Any = _ABSENT
            if isinstance(v, str) and re.fullmatch(r"-?\d{1,19}", v.strip()) and low <= int(v) <= high:
                fix = int(v)
            return Reading(0, (f"{show(v)} is {_kind(v)}, not an {name}",
                               "JsonConverter silently reads it as 0",
                               f"write {fix} without quotes" if fix is not _ABSENT else "write a JSON integer",
                               fix))
        held = _wrap(_truncate(v), bits)
        if held == v:
            return Reading(held)
        if isinstance(v, Decimal) and low <= v <= high:
            return Reading(held, (f"{v} is not an integer", f"JsonConverter silently truncates it to {held}",
                                  'write an integer, or use "type": "double"', _ABSENT))
        return Reading(held, (f"{v} is out of {name}'s range ({low} to {high})",
                              f"JsonConverter silently wraps it to {held}",
                              f'use "type": "{wider}"' if wider else "use a Decimal (bytes) field", _ABSENT))
    return read


_FLOAT32_MAX = Decimal(2**128 - 2**103)  # from here up a float32 rounds to infinity


def _float_reader(name: str, limit: Decimal | None) -> Callable[[Any], Reading]:
    def read(v) -> Reading:
        if not _is_number(v):
            fix: Any = _ABSENT
            if isinstance(v, str):
                try:
                    number = Decimal(v.strip())
                    fix = number if number.is_finite() else _ABSENT
                except InvalidOperation:
                    pass
            return Reading(0.0, (f"{show(v)} is {_kind(v)}, not a {name}",
                                 "JsonConverter silently reads it as 0.0",
                                 f"write {fix} without quotes" if fix is not _ABSENT else "write a JSON number",
                                 fix))
        held = float(Decimal(v))
        if held in (float("inf"), float("-inf")) or (limit is not None and abs(v) >= limit):
            held = float("inf") if v > 0 else float("-inf")
            return Reading(held, (f"{v} is too large for a {name}", f"JsonConverter silently reads it as {held}",
                                  'use "type": "double"' if name == "float" else "use a Decimal (bytes) field",
                                  _ABSENT))
        return Reading(held)
    return read


def _read_boolean(v) -> Reading:
    if isinstance(v, bool):
        return Reading(v)
    fix = {"true": True, "false": False}.get(v.strip().lower(), _ABSENT) if isinstance(v, str) else _ABSENT
    return Reading(False, (f"{show(v)} is {_kind(v)}, not a boolean",
                           "JsonConverter silently reads it as false",
                           f"write {dumps(fix)} without quotes" if fix is not _ABSENT else "write true or false", fix))


def _read_string(v) -> Reading:
    if isinstance(v, str):
        return Reading(v)
    fix = str(v) if _is_number(v) else _ABSENT
    return Reading(None, (f"{show(v)} is {_kind(v)}, not a string",
                          "JsonConverter silently reads it as null",
                          f"write it in quotes: {dumps(fix)}" if fix is not _ABSENT else "write a JSON string", fix))


def _read_bytes(v) -> Reading:
    if not isinstance(v, str):
        return Reading(None, (f"{show(v)} is {_kind(v)}, not a base64 string",
                              "JsonConverter silently reads it as null", "write the bytes in base64", _ABSENT))
    held = jackson_base64(v)
    if held is not None:
        return Reading(held)
    padded = _padded(v)
    return Reading(refused=(f"{show(v)} is not base64 (standard alphabet, \"=\" padding)",
                            "DataException: Invalid bytes field",
                            f"pad it: {dumps(padded)}" if padded else 'encode the bytes in standard base64, e.g. "AAE="',
                            padded if padded else _ABSENT))


TYPES = {t.name: t for t in (
    ConnectType("int8", "INT8", _int_reader("int8", 8, "int16")),
    ConnectType("int16", "INT16", _int_reader("int16", 16, "int32")),
    ConnectType("int32", "INT32", _int_reader("int32", 32, "int64")),
    ConnectType("int64", "INT64", _int_reader("int64", 64, "")),
    ConnectType("float", "FLOAT32", _float_reader("float", _FLOAT32_MAX)),
    ConnectType("double", "FLOAT64", _float_reader("double", None)),
    ConnectType("boolean", "BOOLEAN", _read_boolean),
    ConnectType("string", "STRING", _read_string),
    ConnectType("bytes", "BYTES", _read_bytes),
    ConnectType("array", "ARRAY"),
    ConnectType("map", "MAP"),
    ConnectType("struct", "STRUCT"),
)}


@dataclasses.dataclass
class Schema:
    """A schema node as JsonConverter reads it."""
    type: ConnectType
    path: tuple
    optional: bool = False
    name: str | None = None
    parameters: dict = dataclasses.field(default_factory=dict)
    default: Any = None  # the value Connect holds as default; None: no default
    fields: list = dataclasses.field(default_factory=list)  # struct: (name, Schema | None, index)
    claimed: set = dataclasses.field(default_factory=set)   # payload keys an unreadable field entry means
    items: "Schema | None" = None
    keys: "Schema | None" = None
    values: "Schema | None" = None


# Logical types, by schema name: JsonConverter reads them before (instead of) the base type.
def _read_timestamp(schema: Schema, v) -> Reading:
    if isinstance(v, int) and not isinstance(v, bool):
        held = _wrap(v, 64)
        if held == v:
            return Reading(held)
        return Reading(held, (f"{v} is out of int64's range", f"JsonConverter silently wraps it to {held}",
                              "write epoch milliseconds", _ABSENT))
    return Reading(refused=(f"{show(v)} is not epoch milliseconds (an integer)",
                            f"DataException: Invalid type for Timestamp, underlying representation should be integral "
                            f"but was {node_type(v)}", _epoch_fix(v, "millis"), _ABSENT))


def _epoch_fix(v, unit: str) -> str:
    """How to write a date or time the way Connect's logical types hold it."""
    if isinstance(v, str):
        try:
            when = datetime.datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.timezone.utc)
            if unit == "millis":
                return f"write {int(when.timestamp() * 1000)} (epoch milliseconds of {v}, UTC if no offset was given)"
            if unit == "days":
                return f"write {(when.date() - datetime.date(1970, 1, 1)).days} (days since 1970-01-01 for {v})"
    return {"millis": "write the epoch milliseconds as a JSON integer",
            "days": "write the days since 1970-01-01 as a JSON integer",
            "time": "write the milliseconds since midnight (0 to 86400000) as a JSON integer"}[unit]


def _int32_logical(name: str, unit: str, check: Callable[[int], str | None] | None = None):
    def read(schema: Schema, v) -> Reading:
        if not (isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31):
            return Reading(refused=(f"{show(v)} is not an int32 {'day number' if unit == 'days' else 'time of day'}",
                                    f"DataException: Invalid type for {name}, underlying representation should be "
                                    f"integer but was {node_type(v)}", _epoch_fix(v, unit), _ABSENT))
        error = check(v) if check else None
        if error:
            return Reading(refused=(f"{v} is not a time of day", f"DataException: {error}", _epoch_fix(v, unit), _ABSENT))
        return Reading(v)
    return read


def _time_range(v: int) -> str | None:
    if 0 <= v <= MILLIS_PER_DAY:
        return None
    return "Time values must use number of milliseconds greater than 0 and less than 86400000"


def _decimal_scale(schema: Schema) -> int | None:
    try:
        return int(schema.parameters.get("scale", ""))
    except ValueError:
        return None


def _read_decimal(schema: Schema, v) -> Reading:
    scale = _decimal_scale(schema)
    if _is_number(v):
        held = Decimal(v)
        exponent = held.as_tuple().exponent
        value_scale = -exponent if isinstance(exponent, int) else 0
        if scale is None:
            return Reading(held, ('the Decimal schema has no integer "scale" parameter',
                                  f"JsonConverter reads {v}, but Connect fails whenever it writes the value again",
                                  'add "parameters": {"scale": "<digits after the point>"} to the schema', _ABSENT))
        if value_scale != scale:
            exact = held.quantize(Decimal(1).scaleb(-scale)) if value_scale < scale else None
            return Reading(held, (f"{v} has {value_scale} digits after the point, the schema's scale is {scale}",
                                  f"JsonConverter reads it with scale {value_scale}; Connect throws \"Decimal value has "
                                  "mismatching scale\" whenever it writes it again",
                                  f"write {exact}" if exact is not None else f"round it to {scale} digits",
                                  exact if exact is not None else _ABSENT))
        return Reading(held)
    if isinstance(v, str):
        raw = jackson_base64(v)
        if raw and scale is not None:
            return Reading(Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale))
        what = ('the Decimal schema has no integer "scale" parameter' if scale is None and raw
                else f"{show(v)} is not the base64 of an unscaled value")
        return Reading(refused=(what, "DataException: Invalid bytes for Decimal field",
                                'add "parameters": {"scale": "..."}' if scale is None and raw else
                                "write the base64 of the unscaled value's big-endian two's complement "
                                f"(e.g. {_decimal_example(scale)}), or a JSON number", _ABSENT))
    return Reading(refused=(f"{show(v)} is {_kind(v)}, not a Decimal",
                            "DataException: Invalid type for Decimal, underlying representation should be numeric or "
                            f"bytes but was {node_type(v)}", "write a JSON number, or the base64 of the unscaled value",
                            _ABSENT))


def _decimal_example(scale: int | None) -> str:
    scale = 2 if scale is None else scale
    unscaled = 1250 * 10 ** max(scale - 2, 0) if scale >= 2 else 125
    value = Decimal(unscaled).scaleb(-scale)
    raw = unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)
    return f'"{base64.b64encode(raw).decode()}" for {value}'


LOGICAL: dict[str, Callable[[Schema, Any], Reading]] = {
    TIMESTAMP: _read_timestamp,
    DATE: _int32_logical("Date", "days"),
    TIME: _int32_logical("Time", "time", _time_range),
    DECIMAL: _read_decimal,
}


def _type_fix(name: str) -> str | None:
    """The Connect type name a misspelt one unambiguously means ("String" -> "string")."""
    lowered = name.strip().lower()
    if lowered in TYPES:
        return lowered
    return TYPE_ALIASES.get(lowered)


def _similar(name: str, candidates) -> list[tuple[float, str]]:
    """Candidates by similarity to name, best first (names compared lower-case, "-" as "_")."""
    def norm(s: str) -> str:
        return s.lower().replace("-", "_")
    scored = [(difflib.SequenceMatcher(None, norm(name), norm(c)).ratio(), c) for c in candidates]
    return sorted((s for s in scored if s[0] >= 0.6), key=lambda s: -s[0])


def _best(name: str, candidates) -> str | None:
    """The one candidate clearly most similar to name, or None (none similar enough, or a tie)."""
    ranked = _similar(name, candidates)
    if not ranked or (len(ranked) > 1 and ranked[1][0] == ranked[0][0]):
        return None
    return ranked[0][1]


def _guess_type(v) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "int32" if -(2**31) <= v < 2**31 else "int64"
    return {Decimal: "double", str: "string", dict: "struct", list: "array"}.get(type(v), "string")
