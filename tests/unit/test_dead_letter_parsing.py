"""ops.dead_letters without a broker: header parsing, selection, refusals, line and preview format."""
import pytest

from ops import dead_letters as dl

BUS_HEADERS = [
    ("trace-id", b"t-1"),
    ("dlq.error.class", b"EnvelopeError"),
    ("dlq.error.message", b"field qty: expected int32\nsecond line"),
    ("dlq.origin.topic", b"orders"),
    ("dlq.origin.partition", b"2"),
    ("dlq.origin.offset", b"17"),
    ("dlq.attempts", b"3"),
]
CONNECT_HEADERS = [
    ("source", None),
    ("__connect.errors.topic", b"orders"),
    ("__connect.errors.partition", b"0"),
    ("__connect.errors.offset", b"5"),
    ("__connect.errors.connector.name", b"orders-sink"),
    ("__connect.errors.task.id", b"0"),
    ("__connect.errors.stage", b"VALUE_CONVERTER"),
    ("__connect.errors.class.name", b"org.apache.kafka.connect.json.JsonConverter"),
    ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
    ("__connect.errors.exception.message", b"Unknown schema type: String"),
    ("__connect.errors.exception.stacktrace", b"org.apache...\n\tat ..."),
]


def letter(headers, value=b'{"payload":1}', key=b"o-1"):
    return dl.parse("orders.catalog-stock.dlq", 0, 4, key, value, headers)


def test_bus_consumer_headers():
    d = letter(BUS_HEADERS)
    assert (d.origin_topic, d.origin_partition, d.origin_offset) == ("orders", 2, 17)
    assert (d.error_class, d.attempts) == ("EnvelopeError", 3)
    assert d.error_message == "field qty: expected int32\nsecond line"
    assert d.headers == (("trace-id", b"t-1"),)
    assert d.extra == {}
    assert not d.truncated
    assert (d.position, d.origin, d.marker) == ("0:4", ("orders", 2, 17), "orders:2:17")


def test_connect_headers():
    d = letter(CONNECT_HEADERS)
    assert (d.origin_topic, d.origin_partition, d.origin_offset) == ("orders", 0, 5)
    assert d.error_class == "org.apache.kafka.connect.errors.DataException"
    assert d.error_message == "Unknown schema type: String"
    assert d.attempts is None
    assert d.headers == (("source", None),)
    assert d.extra == {
        "__connect.errors.connector.name": "orders-sink",
        "__connect.errors.task.id": "0",
        "__connect.errors.stage": "VALUE_CONVERTER",
        "__connect.errors.class.name": "org.apache.kafka.connect.json.JsonConverter",
        "__connect.errors.exception.stacktrace": "org.apache...\n\tat ...",
    }


def test_a_dead_letter_without_a_whole_origin_is_marked_by_its_own_position():
    d = letter([("dlq.origin.topic", b"orders"), ("dlq.origin.partition", b"1")])
    assert (d.origin, d.marker) == (None, "orders.catalog-stock.dlq:0:4")


def test_copies_of_one_origin_are_one_dead_letter():
    a, b = letter(BUS_HEADERS), letter(CONNECT_HEADERS)
    copy = dl.parse("orders.catalog-stock.dlq", 0, 9, b"k", b"v", BUS_HEADERS)
    assert dl.by_origin([a, b, copy]) == [(a, 2), (b, 1)]


def test_unknown_and_unreadable_dlq_headers_are_extra_info():
    d = letter([("dlq.origin.topic", b"orders"), ("dlq.origin.offset", b"x"),
                ("dlq.consumer.host", b"h1"), ("replayed.from", b"old-dlq:0:1")])
    assert d.origin_offset is None
    assert d.extra == {"dlq.origin.offset": "x", "dlq.consumer.host": "h1",
                       "replayed.from": "old-dlq:0:1"}
    assert d.headers == ()  # an earlier replay's marker is not replayed again


@pytest.mark.parametrize("extra, truncated", [
    ([("dlq.truncated", b"true"), ("dlq.original.size", b"2000000")], True),
    ([("dlq.truncated", b"1")], True),
    ([("dlq.original.size", b"99")], True),   # size differs from the copy's
    ([("dlq.original.size", b"13")], False),  # len(b'{"payload":1}')
    ([("dlq.truncated", b"false")], False),
])
def test_truncated_copies_are_recognised_and_refused(extra, truncated):
    d = letter(BUS_HEADERS + extra)
    assert d.truncated is truncated
    assert (dl.refusal(d) is not None) is truncated
    if truncated:
        assert dl.refusal(d).startswith("truncated copy (13 of ")
        assert "recover the original from orders[2]@17" in dl.refusal(d)


def test_dead_letter_without_origin_is_refused():
    d = letter([("dlq.error.class", b"ValueError")])
    assert dl.refusal(d) == ("no origin topic in its headers "
                             "(dlq.origin.topic or __connect.errors.topic)")
    assert dl.refusal(letter(BUS_HEADERS)) is None


def test_preview():
    assert dl.preview(None) == "(tombstone)"
    assert dl.preview(b"") == ""
    assert dl.preview(b"a\x00b\nc\td\xff\xe2\x80\x8b") == "a\\x00b\\nc\\td\\xff\\u200b"
    assert dl.preview(b"x" * 80) == "x" * 80
    assert dl.preview(b"x" * 81) == "x" * 80 + "..."
    assert dl.preview("é".encode() * 100) == "é" * 80 + "..."


def test_list_line_of_a_bus_dead_letter():
    assert dl.format_line(letter(BUS_HEADERS, value=b'{"schema":{}}\n')) == (
        "0:4  key=o-1  origin=orders[2]@17  EnvelopeError: field qty: expected int32\\nsecond line"
        "  attempts=3  value={\"schema\":{}}\\n")


def test_list_line_of_a_connect_dead_letter():
    line = dl.format_line(letter(CONNECT_HEADERS, value=None, key=None))
    assert line == ("0:4  key=-  origin=orders[0]@5  DataException: Unknown schema type: String"
                    "  connector.name=orders-sink  task.id=0  stage=VALUE_CONVERTER"
                    "  class.name=org.apache.kafka.connect.json.JsonConver...  value=(tombstone)")  # 40 chars


def test_list_line_shows_the_whole_reason_and_an_unknown_origin():
    d = letter([("dlq.error.message", b"m" * 300 + b"\nend")])
    assert dl.format_line(d) == f"0:4  key=o-1  origin=?[?]@?  ?: {'m' * 300}\\nend  value={{\"payload\":1}}"


def test_json_form():
    assert dl.to_json(letter(BUS_HEADERS)) == {
        "topic": "orders.catalog-stock.dlq", "partition": 0, "offset": 4, "copies": 1, "key": "o-1",
        "origin_topic": "orders", "origin_partition": 2, "origin_offset": 17,
        "error_class": "EnvelopeError", "error_message": "field qty: expected int32\nsecond line",
        "attempts": 3, "truncated": False, "extra": {}, "headers": [["trace-id", "t-1"]],
        "value_size": 13, "preview": '{"payload":1}',
    }


def test_select_by_position_and_key():
    letters = [dl.parse("d", 0, o, k, b"v", BUS_HEADERS) for o, k in [(0, b"a"), (1, b"b"), (2, b"a"), (3, None)]]
    assert dl.select(letters, all_=True) == (letters, [])
    assert dl.select(letters, positions=["0:1", "0:3"]) == ([letters[1], letters[3]], [])
    assert dl.select(letters, keys=["a"]) == ([letters[0], letters[2]], [])
    assert dl.select(letters, positions=["0:1", "1:0"]) == ([letters[1]], ["offset 1:0"])
    assert dl.select(letters, keys=["zz"]) == ([], ["key zz"])


@pytest.mark.parametrize("argv", [
    ["replay", "--topic", "t"],                          # no selector
    ["replay", "--topic", "t", "--all", "--key", "k"],    # two kinds of selector
    ["replay", "--topic", "t", "--offset", "7"],          # not P:O
    ["replay", "--all"],                                  # no topic
    ["purge"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        dl.main(argv)
    assert exit_.value.code == 2
