"""Rolling upgrades: readers and writers built from two versions of one message.

Each version of ordersync.testing.v1.Evolving is built in a descriptor pool of
its own (as two processes would have it), so both carry the same full name.
"""

import json

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

from bus.envelope import EnvelopeError, decode, encode, to_envelope

F = descriptor_pb2.FieldDescriptorProto
TYPES = {
    "string": (F.TYPE_STRING, None),
    "int32": (F.TYPE_INT32, None),
    "int64": (F.TYPE_INT64, None),
    "bytes": (F.TYPE_BYTES, None),
    "timestamp": (F.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
    "line": (F.TYPE_MESSAGE, ".ordersync.testing.v1.Evolving.Line"),
    "line_item": (F.TYPE_MESSAGE, ".ordersync.testing.v1.Evolving.LineItem"),
}

# Version 1, as the fields (name, type, "plain" | "optional" | "repeated") of Evolving.
V1 = [("order_id", "string", "plain"), ("qty", "int32", "plain"),
      ("note", "string", "optional"), ("created_at", "timestamp", "plain"),
      ("line", "line", "plain")]
V1_LINE = [("sku", "string", "plain")]


def version(fields=V1, line=V1_LINE, line_name="Line"):
    """The Evolving class of one version, in a pool of its own."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="evolving.proto", package="ordersync.testing.v1", syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"])
    msg = file.message_type.add(name="Evolving")
    add_fields(msg.nested_type.add(name=line_name), line)
    add_fields(msg, fields)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("ordersync.testing.v1.Evolving"))


def add_fields(msg, fields):
    for number, (name, type_name, kind) in enumerate(fields, 1):
        type_, type_ref = TYPES[type_name]
        field = msg.field.add(name=name, number=number, type=type_,
                              label=F.LABEL_REPEATED if kind == "repeated" else F.LABEL_OPTIONAL)
        if type_ref:
            field.type_name = type_ref
        if kind == "optional" and type_ != F.TYPE_MESSAGE:  # proto3 `optional`
            field.proto3_optional = True
            field.oneof_index = len(msg.oneof_decl)
            msg.oneof_decl.add(name=f"_{name}")


def changed(name, type_name=None, kind=None, fields=V1):
    """Version 1 with one field's type or kind changed."""
    return [(n, type_name or t, kind or k) if n == name else (n, t, k) for n, t, k in fields]


def without(name, fields=V1):
    return [f for f in fields if f[0] != name]


def v1_values(cls):
    # created_at stays null: the decoder builds google.protobuf.Timestamp of the default pool,
    # which a class from another pool refuses (generated classes all share that pool).
    return cls(order_id="o-1", qty=2, note="gift wrap", line=cls.Line(sku="SKU-1"))


# --- accepted ------------------------------------------------------------------------

def test_old_reader_ignores_the_fields_a_newer_writer_added():
    old = version()
    new = version(V1 + [("coupon", "string", "plain"),  # plain proto3: "optional": false
                        ("discount", "int32", "optional"),
                        ("tags", "string", "repeated")],
                  line=V1_LINE + [("gift", "string", "plain")])
    msg = new(order_id="o-1", qty=2, note="n", coupon="SAVE10", discount=5, tags=["a", "b"],
              line=new.Line(sku="SKU-1", gift="yes"))
    got = decode(encode(msg), old)
    assert got == old(order_id="o-1", qty=2, note="n", line=old.Line(sku="SKU-1"))


def test_new_reader_reads_an_optional_field_an_older_writer_lacks_as_null():
    old = version()
    new = version(V1 + [("discount", "int32", "optional"), ("promo", "timestamp", "plain")])
    got = decode(encode(v1_values(old)), new)
    assert not got.HasField("discount") and not got.HasField("promo")
    assert got.order_id == "o-1" and got.line.sku == "SKU-1" and got.note == "gift wrap"


def test_reader_reads_a_field_the_writer_removed_as_null_if_it_is_optional():
    old = version()
    new = version(without("note"))  # removing an optional field
    got = decode(encode(new(order_id="o-1", qty=2)), old)
    assert not got.HasField("note") and got.qty == 2
    # And the other way: the old writer's note is ignored by the new reader.
    assert decode(encode(v1_values(old)), new).order_id == "o-1"


def test_a_reader_with_an_optional_field_reads_a_writer_that_requires_it():
    writer = version(changed("note", kind="plain"))
    reader = version()
    got = decode(encode(writer(order_id="o-1", note="")), reader)
    assert got.HasField("note") and got.note == ""


def test_unknown_field_values_of_any_shape_are_ignored():
    old = version()
    env = to_envelope(v1_values(old))
    env["schema"]["fields"].append({"field": "extra", "type": "struct", "name": "x.Y",
                                    "optional": True, "fields": []})
    env["payload"]["extra"] = {"deep": [1, {"a": None}]}
    assert decode(json.dumps(env), old) == v1_values(old)


# --- refused -------------------------------------------------------------------------

@pytest.mark.parametrize("writer_fields, reader_fields, path, match", [
    # A field the reader requires is missing from the writer's schema.
    (V1, V1 + [("coupon", "string", "plain")], "coupon", "schema lacks this field"),
    (without("qty"), V1, "qty", "schema lacks this field"),
    # The writer marks optional (may send null) a field the reader requires.
    (changed("qty", kind="optional"), V1, "qty", "must mark the field required"),
    # Type changes of a known field, both ways.
    (changed("qty", "int64"), V1, "qty", "schema type 'int64' does not match 'int32'"),
    (V1, changed("qty", "int64"), "qty", "schema type 'int32' does not match 'int64'"),
    (changed("order_id", "bytes"), V1, "order_id", "schema type 'bytes'"),
    (changed("note", kind="repeated"), V1, "note", "schema type 'array'"),
    # Logical type changes: a Timestamp is an int64 with a name.
    (changed("created_at", "int64"), V1, "created_at", "schema name None"),
    (V1, changed("created_at", "int64"), "created_at", "schema name 'org.apache.kafka"),
])
def test_incompatible_versions_are_refused_naming_the_field(writer_fields, reader_fields, path,
                                                            match):
    with pytest.raises(EnvelopeError, match=match) as info:
        decode(encode(version(writer_fields)()), version(reader_fields))
    assert info.value.path == path


def test_a_renamed_nested_message_is_refused():
    writer = version(changed("line", "line_item"), line_name="LineItem")
    with pytest.raises(EnvelopeError, match="schema name '.*Evolving.LineItem'") as info:
        decode(encode(writer()), version())
    assert info.value.path == "line"


def test_a_type_change_inside_a_nested_message_is_refused():
    writer = version(line=[("sku", "int64", "plain")])
    with pytest.raises(EnvelopeError, match="schema type 'int64'") as info:
        decode(encode(writer()), version())
    assert info.value.path == "line.sku"


def test_a_payload_field_the_writers_schema_lacks_is_refused():
    old = version()
    env = to_envelope(v1_values(old))
    env["schema"]["fields"].append({"field": "coupon", "type": "string", "optional": False})
    env["payload"]["coupon"] = "SAVE10"
    env["payload"]["discount"] = 5  # in no schema at all
    with pytest.raises(EnvelopeError, match="payload field is not in the schema") as info:
        decode(json.dumps(env), old)
    assert info.value.path == "discount"
