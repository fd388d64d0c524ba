"""A problem with an envelope, at one of three levels, and the JSON path that says where."""

import dataclasses
import json
import re
from collections.abc import Sequence
from typing import Any

CONVERTER = "converter"  # JsonConverter throws: the record never reaches the sink
SINK = "sink"            # JsonConverter accepts it, the JDBC sink cannot write it
SILENT = "silent"        # accepted, but data is changed or dropped without an error
LEVELS = (CONVERTER, SINK, SILENT)

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
