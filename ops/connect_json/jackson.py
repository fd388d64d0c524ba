"""JSON the way Jackson (Kafka Connect's parser) reads it: numbers, constants, base64, and how to write it back."""

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

from ops.connect_json.problems import _ABSENT, _JSON_SPACE, CONVERTER, ENVELOPE_ERROR, NOT_JSON_ERROR, SILENT, Problem

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
