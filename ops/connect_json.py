"""What plain Kafka Connect JsonConverter (schemas.enable=true) and the JDBC sink would do with a
Connect JSON envelope ({"schema": ..., "payload": ...}), used by the doctor (ops.doctor) to
explain problems and to find fixes. In the running system the gate (gate.verdict) re-encodes
every record it accepts, so the sink never reads a hand-written envelope: what decides is the
gate, never this emulation.

One Problem per thing Connect would not do as the envelope's author expects, at one of three levels:
  converter  JsonConverter throws (DataException ...): the record never reaches the sink.
  sink       JsonConverter accepts it, the JDBC sink cannot write it (no struct, no upsert key).
  silent     accepted, but a value is changed or dropped without any error ("abc" as int32 -> 0).
A problem with an unambiguous fix (a type name's case, a renamed field with one clear match, ...)
carries it as an edit, which fix() applies.

The rules mirror JsonConverter of Kafka 4.1 (checked against the real one by
tests/integration/test_doctor_vs_jsonconverter.py): it reads the whole schema first, then the
payload; numbers the way Jackson reads them (integer tokens exactly, others as BigDecimal), a
wrong JSON type as Jackson's intValue()/textValue()/... do, which is why most mismatches are
silent rather than refused. One known difference: Connect's parser reads a number with a leading
zero (01) as 1; this module calls it not JSON.
"""

import base64
import binascii
import dataclasses
import datetime
import difflib
import json
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from bus.envelope.schema import DECIMAL, TIMESTAMP

CONVERTER = "converter"  # JsonConverter throws: the record never reaches the sink
SINK = "sink"            # JsonConverter accepts it, the JDBC sink cannot write it
SILENT = "silent"        # accepted, but data is changed or dropped without an error
LEVELS = (CONVERTER, SINK, SILENT)

DATE = "org.apache.kafka.connect.data.Date"
TIME = "org.apache.kafka.connect.data.Time"
MILLIS_PER_DAY = 86_400_000
ENVELOPE_ERROR = ('DataException: JsonConverter with schemas.enable requires "schema" and "payload" fields '
                  'and may not contain additional fields')
NOT_JSON_ERROR = "DataException: Converting byte[] to Kafka Connect data failed due to serialization error: "
SCHEMA_KEYS = ("type", "optional", "name", "version", "doc", "parameters", "default", "field", "fields",
               "items", "keys", "values")
# Names people write for Connect types, with the one JsonConverter reads. Connect's Java enum says
# FLOAT32/FLOAT64, but JsonConverter's JSON names are "float"/"double".
TYPE_ALIASES = {"float32": "float", "float64": "double", "bool": "boolean", "byte": "int8",
                "short": "int16", "int": "int32", "integer": "int32", "long": "int64", "str": "string"}
_ABSENT = object()   # a key not in the JSON object
_REFUSED = object()  # a value JsonConverter throws on (the problem is reported)
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing JsonConverter or the sink will not do as the envelope's author expects (ops.doctor
    writes its gate and table lines as Problems too)."""
    level: str        # CONVERTER, SINK or SILENT (ops.doctor: GATE, TABLE)
    path: tuple       # JSON path from the envelope's root, e.g. ("schema", "fields", 0, "type")
    what: str         # what is wrong, in the envelope's terms
    effect: str       # what Connect does with it ("DataException: ...", "silently read as 0")
    fix: str          # what to change
    edit: tuple | None = None  # (path, new value): the unambiguous fix --fix applies
    held: Any = _ABSENT        # for a silent change of a scalar: the value Connect holds

    @property
    def where(self) -> str:
        return json_path(self.path)

    def line(self) -> str:
        return f"{self.level:<9} {self.where}: {self.what} -> {self.effect}. Fix: {self.fix}"


def json_path(path: Sequence) -> str:
    """("payload", "unit-price", 0) -> $.payload["unit-price"][0]"""
    out = "$"
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", step):
            out += f".{step}"
        else:
            out += f"[{json.dumps(step, ensure_ascii=False)}]"
    return out


# ------------------------------------------------------------------ JSON the way Jackson reads it

def node_type(v) -> str:
    """Jackson's JsonNodeType name, as JsonConverter's messages print it."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "BOOLEAN"
    if isinstance(v, (int, float, Decimal)):
        return "NUMBER"
    names: dict[type, str] = {str: "STRING", list: "ARRAY", dict: "OBJECT"}
    return names.get(type(v), "POJO")


def _kind(v) -> str:
    """The JSON kind of v with its article, for messages: a string, an object, null."""
    name = node_type(v).lower()
    return "null" if v is None else ("an " if name[0] in "aeiou" else "a ") + name


def _is_number(v) -> bool:
    return isinstance(v, (int, Decimal)) and not isinstance(v, bool)


def show(v, width: int = 40) -> str:
    """A JSON value as the envelope has it, shortened."""
    text = dumps(v)
    return text if len(text) <= width else text[:width] + "..."


def dumps(v, indent: int | None = None, _level: int = 0) -> str:
    """JSON text of a parsed envelope; numbers read as Decimal keep their text (12.50 stays 12.50)."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dict) and v:
        pad, inner = ("", "") if indent is None else ("\n" + " " * indent * _level, "\n" + " " * indent * (_level + 1))
        sep = ", " if indent is None else ","
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dumps(x, indent, _level + 1)}" for k, x in v.items()]
        return "{" + sep.join(items) + pad + "}"
    if isinstance(v, list) and v:
        pad, inner = ("", "") if indent is None else ("\n" + " " * indent * _level, "\n" + " " * indent * (_level + 1))
        sep = ", " if indent is None else ","
        return "[" + sep.join(inner + dumps(x, indent, _level + 1) for x in v) + pad + "]"
    return json.dumps(v, ensure_ascii=False)


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse(data: bytes | str) -> tuple[Any, list[Problem]]:
    """The envelope's JSON value (numbers with a fraction or exponent as Decimal, as Connect's
    BigDecimal), and the problems of its text. The value is _ABSENT when there is none."""
    if isinstance(data, bytes):
        try:
            data = data.decode(json.detect_encoding(data))
        except (UnicodeDecodeError, LookupError) as e:
            return _ABSENT, [_not_json(f"not text in a JSON encoding ({e.reason if hasattr(e, 'reason') else e})")]
    text = data.removeprefix("\ufeff")
    start = _JSON_SPACE.match(text).end()  # type: ignore[union-attr]
    if start == len(text):
        return _ABSENT, [Problem(CONVERTER, (), "the record is empty", ENVELOPE_ERROR,
                                 'write {"schema": {...}, "payload": {...}}')]
    decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
    try:
        value, end = decoder.raw_decode(text, start)
    except RecursionError:
        return _ABSENT, [_not_json("nested too deeply")]
    except ValueError as e:
        return _ABSENT, [_not_json(f"not JSON ({e})")]
    problems = []
    if _JSON_SPACE.match(text, end).end() < len(text):  # type: ignore[union-attr]
        problems.append(Problem(SILENT, (), f"text after the envelope ({show(text[end:].strip(), 20)})",
                                "JsonConverter reads the first JSON value and ignores the rest",
                                "remove it: one envelope per record"))
    return value, problems


def _not_json(what: str) -> Problem:
    return Problem(CONVERTER, (), what, NOT_JSON_ERROR,
                   "write valid JSON: double quotes, no comments, no trailing commas, no NaN")


def jackson_base64(text: str) -> bytes | None:
    """Bytes of a base64 string as Jackson decodes it (standard alphabet, "=" padding required,
    white space only between groups of four), or None when Jackson refuses it."""
    out, i = bytearray(), 0
    while i < len(text):
        if ord(text[i]) <= 32:
            i += 1
            continue
        group = text[i:i + 4]
        try:
            if len(group) < 4:
                raise binascii.Error
            out += base64.b64decode(group, validate=True)
        except binascii.Error:
            return None
        i += 4
    return bytes(out)


def _padded(text: str) -> str | None:
    """The text with its missing "=" padding added, when that makes it valid base64."""
    stripped = text.strip()
    fixed = stripped + "=" * (-len(stripped) % 4)
    return fixed if fixed != stripped and jackson_base64(fixed) is not None else None


def _wrap(n: int, bits: int) -> int:
    """n cut to its low `bits` bits, two's complement (Java's narrowing of int, long, BigInteger)."""
    half = 1 << (bits - 1)
    return ((n + half) % (1 << bits)) - half


def _truncate(v) -> int:
    """An int or Decimal as Jackson's intValue()/longValue() sees it before narrowing."""
    if isinstance(v, int):
        return v
    sign, _, exponent = v.as_tuple()
    if isinstance(exponent, int) and exponent >= 64:
        return 0  # a multiple of 10**64, hence of 2**64: its low 64 bits are 0 (and int() would be slow)
    return int(v)


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


# ------------------------------------------------------------------ the walk

class _Walker:
    """Walks one envelope the way JsonConverter does (schema first, then payload) and collects
    every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def report(self, level, path, what, effect, fix, edit_value=_ABSENT, edit_path=None, held=_ABSENT):
        edit = None if edit_value is _ABSENT else (tuple(edit_path if edit_path is not None else path), edit_value)
        self.problems.append(Problem(level, tuple(path), what, effect, fix, edit, held))

    # ---- schema (JsonConverter.asConnectSchema)

    def schema(self, node, path: tuple) -> Schema | None:
        """The schema node read, or None when JsonConverter cannot read it (reported)."""
        kind = node.get("type") if isinstance(node, dict) else None
        if not isinstance(kind, str):
            self.report(CONVERTER, path, "no \"type\"" if isinstance(node, dict) else f"{show(node)} is not a schema",
                        "DataException: Schema must contain 'type' field",
                        f'give it a "type": one of {", ".join(TYPES)}')
            return None
        ctype = TYPES.get(kind)
        if ctype is None:
            fixed = _type_fix(kind)
            close = _best(kind, TYPES)
            self.report(CONVERTER, path + ("type",), f'"{kind}" is not a Connect type name',
                        f"DataException: Unknown schema type: {kind}",
                        f'"type": "{fixed}"' if fixed else
                        (f'did you mean "{close}"? ' if close else "") + f"Connect's type names: {', '.join(TYPES)}",
                        fixed if fixed else _ABSENT)
            if fixed is None:
                return None
            ctype = TYPES[fixed]
        s = Schema(ctype, path)
        readable = getattr(self, f"_schema_{ctype.name}", lambda s, node: True)(s, node)
        self._schema_attributes(s, node)
        return s if readable else None

    def _schema_array(self, s: Schema, node) -> bool:
        items = node.get("items")
        if items is None:
            self.report(CONVERTER, s.path, 'an array schema without "items"',
                        "DataException: Array schema did not specify the element type",
                        'add "items": {"type": ...}')
            return False
        s.items = self.schema(items, s.path + ("items",))
        return s.items is not None

    def _schema_map(self, s: Schema, node) -> bool:
        for key, what in (("keys", "key"), ("values", "value")):
            if key not in node:
                self.report(CONVERTER, s.path, f'a map schema without "{key}"',
                            f"DataException: Map schema did not specify the {what} type", f'add "{key}": {{"type": ...}}')
                return False
        for key, what in (("keys", "keySchema"), ("values", "valueSchema")):
            if node[key] is None:
                self.report(CONVERTER, s.path + (key,), f'"{key}" is null',
                            f"SchemaBuilderException: {what} cannot be null.", f'write "{key}": {{"type": ...}}')
                return False
        s.keys = self.schema(node["keys"], s.path + ("keys",))
        s.values = self.schema(node["values"], s.path + ("values",))
        return s.keys is not None and s.values is not None

    def _schema_struct(self, s: Schema, node) -> bool:
        entries = node.get("fields")
        if not isinstance(entries, list):
            self.report(CONVERTER, s.path + (("fields",) if "fields" in node else ()),
                        'a struct schema without a "fields" array',
                        'DataException: Struct schema\'s "fields" argument is not an array.',
                        'add "fields": [{"field": "...", "type": "..."}, ...]')
            return False
        for i, entry in enumerate(entries):
            epath = s.path + ("fields", i)
            name = entry.get("field") if isinstance(entry, dict) else None
            if not isinstance(name, str):
                meant = entry.get("name") if isinstance(entry, dict) else None
                if isinstance(meant, str):
                    s.claimed.add(meant)
                self.report(CONVERTER, epath, 'a field without a "field" name',
                            "DataException: Struct schema's field name not specified properly",
                            f'"field": "{meant}" ("name" names a schema type, "field" the field)' if isinstance(meant, str)
                            else 'add "field": "<payload key>"')
                continue
            child = self.schema(entry, epath)
            if name == "":
                self.report(CONVERTER, epath + ("field",), "an empty field name",
                            "SchemaBuilderException: fieldName cannot be null.", "name the field")
                s.claimed.add("")
            elif any(name == f[0] for f in s.fields):
                self.report(CONVERTER, epath + ("field",), f'a second field "{name}"',
                            f"SchemaBuilderException: Cannot create field because of field name duplication {name}",
                            "remove one of them")
            else:
                s.fields.append((name, child, i))
        return True

    def _schema_attributes(self, s: Schema, node) -> None:
        optional = node.get("optional", False)
        s.optional = optional is True
        if not isinstance(optional, bool):
            fix = {"true": True, "false": False}.get(str(optional).strip().lower(), _ABSENT)
            self.report(SILENT, s.path + ("optional",), f'"optional": {show(optional)} is not a JSON boolean',
                        "JsonConverter silently reads the field as required",
                        f'"optional": {dumps(fix)}' if fix is not _ABSENT else '"optional": true or false', fix)
        for key in node:
            if key not in SCHEMA_KEYS:
                self.report(SILENT, s.path + (key,), f'"{key}" is not a key of Connect schemas',
                            "JsonConverter ignores it",
                            'use "optional": true or false' if key in ("nullable", "required") else
                            f"remove it (Connect's schema keys: {', '.join(SCHEMA_KEYS)})")
        if isinstance(node.get("name"), str):
            s.name = node["name"]
        params = node.get("parameters")
        if isinstance(params, dict):
            for key, value in params.items():
                if not isinstance(value, str):
                    fix = str(value) if _is_number(value) else _ABSENT
                    self.report(CONVERTER, s.path + ("parameters", key), f"parameter {key} is not a string",
                                "DataException: Schema parameters must have string values.",
                                f'"{key}": {dumps(fix)}' if fix is not _ABSENT else "write it as a string", fix)
            s.parameters = {k: v if isinstance(v, str) else dumps(v) for k, v in params.items()}
        if "default" in node:
            self._default(s, node["default"])

    def _default(self, s: Schema, value) -> None:
        path = s.path + ("default",)
        if s.type.name == "struct" and value is not None:
            self.report(CONVERTER, path, "a struct default", "SchemaBuilderException: Invalid default value",
                        "remove it: JsonConverter cannot build a struct default")
            return
        pending: list[Problem] = []
        held = self.value(s, value, path, "default", pending)
        if pending:  # a default that reads as null for a required schema
            self.report(CONVERTER, path, pending[0].what, "SchemaBuilderException: Invalid default value", pending[0].fix,
                        pending[0].edit[1] if pending[0].edit else _ABSENT)
        elif held is not _REFUSED:
            s.default = held

    # ---- payload (JsonConverter.convertToConnect, then Struct.put's validation)

    def value(self, s: Schema, v, path: tuple, location: str | None, pending: list | None):
        """What Connect holds for v read with s. location names the place in Connect's own
        validation messages ('field: "qty"'); pending collects those validation problems, which
        Connect raises only once the enclosing struct field's whole value is read."""
        if v is None:
            if s.default is not None:
                return s.default
            if s.optional:
                return None
            self.report(CONVERTER, path, "null for a required field",
                        f"DataException: Invalid null value for required {s.type.java} field",
                        'give it a value, or declare it "optional": true')
            return _REFUSED
        logical = LOGICAL.get(s.name or "")
        if logical is not None:
            reading = logical(s, v)
        elif s.type.read is not None:
            reading = s.type.read(v)
        else:
            return getattr(self, f"_value_{s.type.name}")(s, v, path, location, pending)
        if reading.refused:
            what, effect, fix, edit = reading.refused
            self.report(CONVERTER, path, what, effect, fix, edit)
            return _REFUSED
        if reading.change:
            what, effect, fix, edit = reading.change
            if reading.held is None and not s.optional and location is not None:
                problem = Problem(CONVERTER, path, what, f"DataException: Invalid value: null used for required "
                                  f"{location}, schema type: {s.type.java}", fix,
                                  None if edit is _ABSENT else (path, edit))
                if pending is not None:
                    pending.append(problem)
                else:
                    self.problems.append(problem)
            else:
                self.report(SILENT, path, what, effect, fix, edit, held=reading.held)
        return reading.held

    def _value_array(self, s: Schema, v, path, location, pending):
        assert s.items is not None
        inner = None if location is None else f"element of array {location}"
        if isinstance(v, list):
            return [self.value(s.items, x, path + (i,), inner, pending) for i, x in enumerate(v)]
        if isinstance(v, dict):  # Jackson iterates an object's values
            self.report(SILENT, path, "an object, not an array", "JsonConverter silently reads the list of its values",
                        "write a JSON array")
            return [self.value(s.items, x, path + (k,), inner, pending) for k, x in v.items()]
        self.report(SILENT, path, f"{show(v)} is {_kind(v)}, not an array",
                    "JsonConverter silently reads it as an empty array", "write a JSON array", held=[])
        return []

    def _value_map(self, s: Schema, v, path, location, pending):
        assert s.keys is not None and s.values is not None
        key_at = None if location is None else f"key of map {location}"
        value_at = None if location is None else f"value of map {location}"
        if s.keys.type.name == "string":
            if not isinstance(v, dict):
                self.report(CONVERTER, path, f"a map with string keys written as {_kind(v)}",
                            f"DataException: Maps with string fields should be encoded as JSON objects, but found "
                            f"{node_type(v)}", 'write it as a JSON object {"key": value, ...}')
                return _REFUSED
            return {k: self.value(s.values, x, path + (k,), value_at, pending) for k, x in v.items()}
        if not isinstance(v, list):
            self.report(CONVERTER, path, f"a map with {s.keys.type.name} keys written as {_kind(v)}",
                        "DataException: Maps with non-string fields should be encoded as JSON array of tuples, but "
                        f"found {node_type(v)}", "write it as a JSON array of [key, value] pairs")
            return _REFUSED
        held = {}
        for i, entry in enumerate(v):
            if not isinstance(entry, list):
                self.report(CONVERTER, path + (i,), f"{show(entry)} is not a [key, value] pair",
                            f"DataException: Found invalid map entry instead of array tuple: {node_type(entry)}",
                            "write [key, value]")
                return _REFUSED
            if len(entry) != 2:
                self.report(CONVERTER, path + (i,), f"{show(entry)} is not a [key, value] pair",
                            f"DataException: Found invalid map entry, expected length 2 but found :{len(entry)}",
                            "write [key, value]")
                return _REFUSED
            key = self.value(s.keys, entry[0], path + (i, 0), key_at, pending)
            item = self.value(s.values, entry[1], path + (i, 1), value_at, pending)
            held[json.dumps(key, default=str)] = item
        return held

    def _value_struct(self, s: Schema, v, path, location, pending):
        if not isinstance(v, dict):
            self.report(CONVERTER, path, f"{show(v)} is {_kind(v)}, not an object",
                        f"DataException: Structs should be encoded as JSON objects, but found {node_type(v)}",
                        "write a JSON object with one key per schema field")
            return _REFUSED
        names = {f[0] for f in s.fields}
        missing = [f for f in s.fields if f[0] not in v]
        extra = [k for k in v if k not in names and k not in s.claimed]
        # A schema field and a payload key that clearly mean each other: rename the schema's field.
        pairs = {}
        for name, _, _ in missing:
            key = _best(name, extra)
            if key is not None and _best(key, [m[0] for m in missing]) == name:
                pairs[name] = key
        renamed_from = {key: name for name, key in pairs.items()}
        held = {}
        for name, child, index in s.fields:
            fpath = path + (name,)
            if child is None:
                continue
            if name not in v:
                held[name] = self._absent(s, name, child, index, fpath, pairs.get(name))
                continue
            field_pending: list[Problem] = []
            held[name] = self.value(child, v[name], fpath, f'field: "{name}"', field_pending)
            self.problems.extend(field_pending)
        for key in extra:
            if key in renamed_from:
                name = renamed_from[key]
                index = next(f[2] for f in s.fields if f[0] == name)
                self.report(SILENT, path + (key,), f'"{key}" has no field in the schema', "JsonConverter drops it",
                            f'rename the schema field "{name}" to "{key}"', key,
                            edit_path=s.path + ("fields", index, "field"))
            else:
                self.report(SILENT, path + (key,), f'"{key}" has no field in the schema', "JsonConverter drops it",
                            f'add {{"field": "{key}", "type": "{_guess_type(v[key])}", "optional": false}} to the '
                            "schema's fields, or remove it from the payload")
        return held

    def _absent(self, s: Schema, name: str, child: Schema, index: int, fpath: tuple, meant: str | None):
        what = f'no "{name}" in the payload'
        edit: Any
        if meant:
            fix, edit = f'rename the schema field to "{meant}", the payload key it probably means', meant
        else:
            fix, edit = f'add "{name}" to the payload, or remove the field from the schema', _ABSENT
        spath = s.path + ("fields", index)
        if child.default is not None:
            self.report(SILENT, spath, what, f"JsonConverter writes its default {show(child.default)}", fix, edit,
                        edit_path=spath + ("field",))
            return child.default
        if child.optional:
            self.report(SILENT, spath, what, "JsonConverter writes null", fix, edit, edit_path=spath + ("field",))
            return None
        self.report(CONVERTER, spath, what, f"DataException: Invalid null value for required {child.type.java} field",
                    fix, edit, edit_path=spath + ("field",))
        return _REFUSED


def diagnose(envelope: bytes | str | dict | None, key_fields: Sequence[str] = ()) -> list[Problem]:
    """Every problem JsonConverter (schemas.enable=true) and the JDBC sink will have with one record
    value: bytes or text as on the topic, or an already parsed dict; None is a tombstone.
    key_fields: the sink's upsert key, read from the record value (see key_fields())."""
    if envelope is None:
        return [Problem(SINK, (), "the record has no value (a tombstone)",
                        "JsonConverter gives a null value; the JDBC sink writes rows and does not delete here "
                        "(delete.enabled=false): it fails the record", "send an envelope")]
    walker = _Walker()
    # A dict goes through its JSON text too, so that its floats are read as Connect reads numbers.
    value, walker.problems = parse(envelope if isinstance(envelope, (bytes, str)) else dumps(envelope))
    if value is _ABSENT:
        return walker.problems
    if not isinstance(value, dict):
        walker.report(CONVERTER, (), f"the record is {_kind(value)}, not an envelope",
                      ENVELOPE_ERROR, 'write {"schema": {...}, "payload": ...}')
        return walker.problems
    for key in ("schema", "payload"):
        if key not in value:
            walker.report(CONVERTER, (), f'no "{key}"', ENVELOPE_ERROR,
                          f'add "{key}"' + (' (JsonConverter with schemas.enable=true needs both)'))
    for key in value:
        if key not in ("schema", "payload"):
            walker.report(CONVERTER, (key,), f'"{key}" next to "schema" and "payload"', ENVELOPE_ERROR,
                          "remove it (a record value holds only the schema and the payload)")
    if "schema" not in value:
        return walker.problems
    if value["schema"] is None:
        walker.report(SINK, ("schema",), "the schema is null",
                      "JsonConverter reads the payload without a schema; the JDBC sink needs a struct schema "
                      "and fails the record", "write the struct schema of the payload")
        return walker.problems
    schema = walker.schema(value["schema"], ("schema",))
    if schema is None:
        return walker.problems
    if schema.type.name != "struct":
        walker.report(SINK, ("schema", "type"), f'the schema is a "{schema.type.name}", not a "struct"',
                      "the JDBC sink needs a struct (one column per field) and fails the record",
                      "make the value a struct with one field per column")
    missing_keys = [k for k in key_fields if schema.type.name == "struct" and all(f[0] != k for f in schema.fields)]
    for key in missing_keys:
        close = _best(key, [f[0] for f in schema.fields])
        walker.report(SINK, ("schema", "fields"), f'the upsert key "{key}" (primary.key.fields) is not in the schema',
                      "the JDBC sink cannot upsert the record and fails it",
                      f'add the field "{key}" to the schema and the payload'
                      + (f' (or rename "{close}" to "{key}"?)' if close else ""))
    if "payload" not in value:
        return walker.problems
    held = walker.value(schema, value["payload"], ("payload",), None, None)
    if value["payload"] is None and held is None:
        walker.report(SINK, ("payload",), "the payload is null",
                      "JsonConverter gives a null value (like a tombstone); the JDBC sink fails the record",
                      "write the payload")
    elif isinstance(held, dict) and schema.type.name == "struct":
        for key in key_fields:
            if key in held and held[key] is None:
                walker.report(SINK, ("payload", key), f'the upsert key "{key}" is null',
                              "the database refuses a null primary key: the sink fails the record",
                              f'give "{key}" a value')
    return walker.problems


def key_fields(connector: dict) -> tuple[str, ...]:
    """The value fields a sink connector's upsert is keyed on (Debezium's primary.key.*, or
    Confluent's pk.*), from its JSON ({"name", "config"} or the bare config); placeholders
    elsewhere in it do not matter."""
    config = connector.get("config", connector)
    mode = config.get("primary.key.mode", config.get("pk.mode", "none"))
    fields = config.get("primary.key.fields", config.get("pk.fields", ""))
    if str(mode).strip().lower() != "record_value":
        return ()
    return tuple(f.strip() for f in str(fields).split(",") if f.strip())


def fix(envelope: bytes | str | dict, key_fields: Sequence[str] = ()) -> tuple[Any, list[Problem]]:
    """(the corrected envelope, []) when every problem has an unambiguous fix and the result has
    none left; else (None, the problems without one, or those the fixes leave)."""
    problems = diagnose(envelope, key_fields)
    fixed = parse(envelope if isinstance(envelope, (bytes, str)) else dumps(envelope))[0]
    # A fix can uncover the next problem (a renamed field's value is read only once it has a field).
    for _ in range(5):
        if not problems:
            return fixed, []
        unfixable = [p for p in problems if p.edit is None]
        if unfixable:
            return None, unfixable
        for path, new in dict.fromkeys(p.edit for p in problems if p.edit is not None):
            target = fixed
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = new
        problems = diagnose(fixed, key_fields)
    return None, problems


