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

The package, by layer: problems (a Problem and its levels), jackson (JSON as Kafka Connect's
parser reads it), types (Connect's types and how a JSON value reads as one), walker (the walk over
a schema and its payload); this module is the API: diagnose, fix, key_fields.
"""

from collections.abc import Sequence
from typing import Any

from ops.connect_json.jackson import _kind, dumps, parse
from ops.connect_json.problems import _ABSENT, CONVERTER, ENVELOPE_ERROR, LEVELS, SILENT, SINK, Problem, json_path
from ops.connect_json.types import _best
from ops.connect_json.walker import _Walker

__all__ = ["CONVERTER", "LEVELS", "SILENT", "SINK", "Problem", "diagnose", "dumps", "fix", "json_path", "key_fields",
           "parse"]


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
