"""Rolling upgrades: reading an envelope written with another version of the schema.

The reader (our descriptor's schema) accepts a writer's schema that
- has fields the reader does not know, optional or not (a newer proto added
  them): they and their payload values are ignored;
- lacks a field that the reader has as optional: it reads as null;
- marks required a field that the reader has as optional.
Anything else is refused, naming the field: a known field whose type, logical
type (name, parameters) or struct name differs, a field the reader requires
missing from the schema or marked optional there. Such a mismatch breaks the
contract between producer and consumer, and reading on would lose or invent
data; the consumer sends the message to its dead-letter topic. The payload may
hold no field that the writer's schema lacks. Field order and "optional": false
written or left out do not matter.
"""

from bus.envelope.kinds import EnvelopeError, describe


def check_schema(given, expected, path=""):
    """Raise EnvelopeError naming the first field that a reader of schema `expected`
    cannot read from a writer of schema `given` (see the module docstring)."""
    if type(given) is not dict:
        raise EnvelopeError(f"schema must be an object, got {describe(given)}", path)
    if given.get("type") != expected["type"]:
        raise EnvelopeError(
            f"schema type {given.get('type')!r} does not match {expected['type']!r}", path)
    if given.get("name") != expected.get("name"):
        raise EnvelopeError(
            f"schema name {given.get('name')!r} does not match {expected.get('name')!r}", path)
    if given.get("parameters") != expected.get("parameters"):
        raise EnvelopeError(f"schema parameters {given.get('parameters')!r} "
                            f"do not match {expected.get('parameters')!r}", path)
    optional = given.get("optional", False)
    if type(optional) is not bool:
        raise EnvelopeError(f'schema "optional" must be a boolean, got {describe(optional)}', path)
    if optional and not expected["optional"]:
        # A writer that may send null for a field the reader cannot do without.
        raise EnvelopeError("schema must mark the field required", path)
    t = expected["type"]
    if t == "array":
        check_schema(given.get("items"), expected["items"], _join(path, "[]"))
    elif t == "map":
        check_schema(given.get("keys"), expected["keys"], _join(path, "{key}"))
        check_schema(given.get("values"), expected["values"], _join(path, "{value}"))
    elif t == "struct":
        by_name = _schema_fields(given, path)
        for f in expected["fields"]:
            name = f["field"]
            if name in by_name:
                check_schema(by_name[name], f, _join(path, name))
            elif not f["optional"]:
                raise EnvelopeError("schema lacks this field, which the reader requires",
                                    _join(path, name))
        # Fields only the writer has are left out of the payload by reader_view.


def _schema_fields(schema, path):
    """The fields of a struct schema by name."""
    fields = schema.get("fields")
    if type(fields) is not list:
        raise EnvelopeError("struct schema has no fields list", path)
    by_name = {}
    for f in fields:
        name = f.get("field") if type(f) is dict else None
        if type(name) is not str or name in by_name:
            raise EnvelopeError(f"bad or duplicate struct field {name!r} in schema", path)
        by_name[name] = f
    return by_name


def reader_view(value, given, expected, path=""):
    """`value`, written with schema `given`, without the fields only the writer knows.

    Runs after check_schema passed; a value of the wrong kind is left for the
    codec to report. Raises on a payload field that the writer's schema lacks.
    """
    t = expected["type"]
    if t == "struct" and type(value) is dict:
        writer = _schema_fields(given, path)
        reader = {f["field"]: f for f in expected["fields"]}
        view = {}
        for name, v in value.items():
            if name not in writer:
                raise EnvelopeError("payload field is not in the schema", _join(path, name))
            if name in reader:
                view[name] = reader_view(v, writer[name], reader[name], _join(path, name))
        return view
    if t == "array" and type(value) is list:
        return [reader_view(v, given["items"], expected["items"], _join(path, f"[{i}]"))
                for i, v in enumerate(value)]
    if t == "map" and type(value) is dict:
        return {k: reader_view(v, given["values"], expected["values"], _join(path, f"[{k!r}]"))
                for k, v in value.items()}
    if t == "map" and type(value) is list:  # [[key, value], ...]
        return [[p[0], reader_view(p[1], given["values"], expected["values"],
                                    _join(path, f"[{i}]"))]
                if type(p) is list and len(p) == 2 else p
                for i, p in enumerate(value)]
    return value


def _join(path, name):
    if not path:
        return name
    return path + name if name.startswith("[") else f"{path}.{name}"
