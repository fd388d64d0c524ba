"""The walk over an envelope's schema, then its payload, reporting a Problem where Connect would not do as its author expects."""

import json
from typing import Any

from ops.connect_json.jackson import _is_number, _kind, dumps, node_type, show
from ops.connect_json.problems import _ABSENT, _REFUSED, CONVERTER, SCHEMA_KEYS, SILENT, Problem
from ops.connect_json.types import LOGICAL, TYPES, Schema, _best, _guess_type, _type_fix

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
