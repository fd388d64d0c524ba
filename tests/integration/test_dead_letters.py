"""ops.dead_letters against the real broker: list both kinds of dead letters, replay them once."""
import collections
import json
import threading
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bus.consumer import EventConsumer
from ops import dead_letters
from ordersync.order.v1 import order_event_pb2
from tests.support.kafka import read_topic
from tests.support.waiting import wait_until

CONNECT_CLASS = "org.apache.kafka.connect.errors.DataException"


@pytest.fixture
def topics(kafka_bootstrap):
    """(origin, dlq): a fresh 2-partition origin topic and 1-partition dead-letter topic, and the
    list of consumer groups a test made; all deleted afterwards."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    run = uuid.uuid4().hex[:10]
    origin, dlq = f"test-dlq-origin-{run}", f"test-dlq-{run}"
    for future in admin.create_topics([NewTopic(origin, num_partitions=2, replication_factor=1),
                                       NewTopic(dlq, num_partitions=1, replication_factor=1)]).values():
        future.result(30)
    for topic, partitions in ((origin, 2), (dlq, 1)):
        for p in range(partitions):
            wait_until(lambda: leader_ready(kafka_bootstrap, topic, p), timeout=60,
                       what=f"a leader for {topic}[{p}]")
    groups = []
    yield origin, dlq, groups
    for group in groups:
        try:
            admin.delete_consumer_groups([group])[group].result(timeout=30)
        except Exception:  # the group may still be settling after close(); harmless
            pass
    for future in admin.delete_topics([origin, dlq], operation_timeout=30).values():
        future.result(timeout=30)


def leader_ready(bootstrap, topic, partition):
    """True once the broker answers for the new partition (it may say NOT_LEADER at first)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return True
    except KafkaException:
        return False
    finally:
        c.close()


def cli(capsys, bootstrap, *argv):
    """Run the command; (exit code, stdout lines, stderr)."""
    code = dead_letters.main(["--bootstrap", bootstrap, *argv])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


# A message written to the origin topic (delivery reports do not carry the headers).
Original = collections.namedtuple("Original", "topic partition offset key value headers")


def original(producer, topic, key, value=None, headers=()):
    """A message on the origin topic that a consumer then failed on."""
    value = value or f'{{"order":"{key}"}}'.encode()
    m = producer.send(topic, value, key=key, headers=list(headers))
    return Original(topic, m.partition(), m.offset(), key, value, list(headers))


def bus_dead_letter(producer, dlq, m, error="ValueError: qty is 0", attempts=3, extra=()):
    """What bus.consumer writes for a message it gave up on (plus any `extra` headers)."""
    cls, _, message = error.partition(": ")
    return producer.send(dlq, m.value, key=m.key, headers=m.headers + [
        ("dlq.error.class", cls.encode()), ("dlq.error.message", message.encode()),
        ("dlq.origin.topic", m.topic.encode()), ("dlq.origin.partition", str(m.partition).encode()),
        ("dlq.origin.offset", str(m.offset).encode()), ("dlq.attempts", str(attempts).encode()),
        *extra])


def connect_dead_letter(producer, dlq, m):
    """What the sink connector (or its watchdog) writes: the record and Connect's context headers."""
    return producer.send(dlq, m.value, key=m.key, headers=m.headers + [
        ("__connect.errors.topic", m.topic.encode()),
        ("__connect.errors.partition", str(m.partition).encode()),
        ("__connect.errors.offset", str(m.offset).encode()),
        ("__connect.errors.connector.name", b"orders-sink"),
        ("__connect.errors.stage", b"VALUE_CONVERTER"),
        ("__connect.errors.exception.class.name", CONNECT_CLASS.encode()),
        ("__connect.errors.exception.message", b"Unknown schema type: String")])


def replays(bootstrap, origin):
    """The replayed messages in the origin topic."""
    return [m for m in read_topic(bootstrap, origin)
            if any(name == "replayed.from" for name, _ in m.headers() or [])]


def markers(bootstrap, origin):
    return collections.Counter(dict(m.headers())["replayed.from"].decode()
                               for m in replays(bootstrap, origin))


def mark(m: "Original") -> str:
    """The replayed.from marker of a dead letter of `m`: its origin."""
    return f"{m.topic}:{m.partition}:{m.offset}"


def where(m):
    """topic[partition]@offset of an Original or a consumed message."""
    if isinstance(m, Original):
        return f"{m.topic}[{m.partition}]@{m.offset}"
    return f"{m.topic()}[{m.partition()}]@{m.offset()}"


def test_list_shows_both_kinds_of_dead_letters(topics, producer, kafka_bootstrap, capsys):
    origin, dlq, _ = topics
    bad = original(producer, origin, "k-bus", b'{"qty":0}\n\x00', headers=[("trace-id", b"t-1")])
    wrong = original(producer, origin, "k-connect", b'{"schema":{"type":"String"}}')
    bus_dead_letter(producer, dlq, bad)
    connect_dead_letter(producer, dlq, wrong)
    producer.send(dlq, None, key="k-tomb", headers=[("dlq.origin.topic", origin.encode()),
                                                    ("dlq.error.class", b"EnvelopeError")])

    code, out, _ = cli(capsys, kafka_bootstrap, "list", "--topic", dlq)
    assert code == 0
    assert out == [
        f"# {dlq}: 3 dead letters",
        f"0:0  key=k-bus  origin={where(bad)}  ValueError: qty is 0  attempts=3"
        "  value={\"qty\":0}\\n\\x00",
        f"0:1  key=k-connect  origin={where(wrong)}  DataException: Unknown schema type: String"
        "  connector.name=orders-sink  stage=VALUE_CONVERTER  value={\"schema\":{\"type\":\"String\"}}",
        f"0:2  key=k-tomb  origin={origin}[?]@?  EnvelopeError  value=(tombstone)",
    ]

    code, out, _ = cli(capsys, kafka_bootstrap, "list", "--topic", dlq, "--json")
    assert code == 0
    rows = [json.loads(line) for line in out]
    assert [(r["offset"], r["key"], r["origin_topic"], r["origin_partition"], r["origin_offset"],
             r["error_class"], r["attempts"], r["headers"]) for r in rows] == [
        (0, "k-bus", origin, bad.partition, bad.offset, "ValueError", 3, [["trace-id", "t-1"]]),
        (1, "k-connect", origin, wrong.partition, wrong.offset, CONNECT_CLASS, None, []),
        (2, "k-tomb", origin, None, None, "EnvelopeError", None, []),
    ]

    missing = f"test-dlq-missing-{uuid.uuid4().hex[:10]}"
    code, out, err = cli(capsys, kafka_bootstrap, "list", "--topic", missing)
    assert (code, out, err) == (1, [], f"error: no topic {missing} at {kafka_bootstrap}\n"), "a typo is an error"

    code, out, _ = cli(capsys, kafka_bootstrap, "list", "--topic", dlq, "--key", "k-connect")
    assert (code, len(out), out[1].startswith("0:1  key=k-connect")) == (0, 2, True)


def test_replay_by_offset_twice_writes_once(topics, producer, kafka_bootstrap, capsys):
    origin, dlq, _ = topics
    first = original(producer, origin, "k-1", headers=[("trace-id", b"t-1")])
    second = original(producer, origin, "k-2")
    bus_dead_letter(producer, dlq, first)
    bus_dead_letter(producer, dlq, second)

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--offset", "0:0")
    assert code == 0
    [copy] = replays(kafka_bootstrap, origin)
    assert out == [f"replayed 0:0 key=k-1: to {where(copy)}", f"# {dlq}: replayed 1"]
    assert (copy.partition(), copy.key(), copy.value()) == (first.partition, b"k-1", first.value)
    assert copy.headers() == [("trace-id", b"t-1"), ("replayed.from", mark(first).encode())]

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--offset", "0:0")
    assert code == 0
    assert out == [f"skipped 0:0 key=k-1: already replayed (replayed.from={mark(first)} is in {origin})",
                   f"# {dlq}: skipped 1"]
    assert len(read_topic(kafka_bootstrap, origin)) == 3
    assert markers(kafka_bootstrap, origin) == {mark(first): 1}


def test_replay_by_key_then_all_then_all_again(topics, producer, kafka_bootstrap, capsys):
    origin, dlq, _ = topics
    originals = [original(producer, origin, key) for key in ("k-a", "k-b", "k-c")]
    for m in originals:
        connect_dead_letter(producer, dlq, m)

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--key", "k-b")
    assert (code, len(out), out[0].startswith("replayed 0:1 key=k-b: to ")) == (0, 2, True)
    assert markers(kafka_bootstrap, origin) == {mark(originals[1]): 1}

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--all")
    assert code == 0
    assert [line.split(":")[0] for line in out[:3]] == ["replayed 0", "skipped 0", "replayed 0"]
    assert out[3] == f"# {dlq}: replayed 2, skipped 1"

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--all")
    assert (code, out[3]) == (0, f"# {dlq}: skipped 3")

    assert markers(kafka_bootstrap, origin) == {mark(m): 1 for m in originals}
    copies = {m.key().decode(): m for m in replays(kafka_bootstrap, origin)}
    for m in originals:
        assert (copies[m.key].partition(), copies[m.key].value()) == (m.partition, m.value)
        assert [name for name, _ in copies[m.key].headers()] == ["replayed.from"]
    assert len(read_topic(kafka_bootstrap, origin)) == 6


def test_copies_of_one_origin_are_listed_once_and_replayed_once(topics, producer, kafka_bootstrap, capsys):
    """As Connect writes them again for what a crashed worker had not committed."""
    origin, dlq, _ = topics
    once, thrice = original(producer, origin, "k-once"), original(producer, origin, "k-thrice")
    connect_dead_letter(producer, dlq, thrice)
    connect_dead_letter(producer, dlq, once)
    connect_dead_letter(producer, dlq, thrice)
    connect_dead_letter(producer, dlq, thrice)

    code, out, _ = cli(capsys, kafka_bootstrap, "list", "--topic", dlq)
    assert code == 0
    assert out[0] == f"# {dlq}: 2 dead letters (2 more copies of them)"
    assert out[1].startswith("0:0  key=k-thrice") and "  copies=3  " in out[1]
    assert out[2].startswith("0:1  key=k-once") and "copies=" not in out[2]
    rows = [json.loads(line) for line in cli(capsys, kafka_bootstrap, "list", "--topic", dlq, "--json")[1]]
    assert [(r["key"], r["copies"]) for r in rows] == [("k-thrice", 3), ("k-once", 1)]

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--all")
    assert (code, out[-1]) == (0, f"# {dlq}: replayed 2")
    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--offset", "0:3")
    assert (code, out[-1]) == (0, f"# {dlq}: skipped 1"), "a later copy is the same origin, replayed already"
    assert markers(kafka_bootstrap, origin) == {mark(thrice): 1, mark(once): 1}


def test_truncated_copy_is_refused_and_the_rest_replayed(topics, producer, kafka_bootstrap, capsys):
    origin, dlq, _ = topics
    big = original(producer, origin, "k-big", b"x" * 5000)
    small = original(producer, origin, "k-small")
    cut = producer.send(dlq, b"x" * 100, key="k-big", headers=[
        ("dlq.error.class", b"ValueError"), ("dlq.origin.topic", origin.encode()),
        ("dlq.origin.partition", str(big.partition).encode()),
        ("dlq.origin.offset", str(big.offset).encode()),
        ("dlq.truncated", b"true"), ("dlq.original.size", b"5000")])
    bus_dead_letter(producer, dlq, small)

    code, out, _ = cli(capsys, kafka_bootstrap, "list", "--topic", dlq)
    assert "  truncated=true  original.size=5000  " in out[1]

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--all")
    assert code == 1
    assert out[0] == (f"refused 0:{cut.offset()} key=k-big: truncated copy (100 of 5000 bytes kept), "
                      "replaying it would publish a damaged message; recover the original from "
                      f"{where(big)}")
    assert out[1].startswith("replayed 0:1 key=k-small: to ")
    assert out[2] == f"# {dlq}: refused 1, replayed 1"

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--offset", "0:0")
    assert (code, out[0].startswith("refused 0:0 key=k-big: truncated copy")) == (1, True)
    assert markers(kafka_bootstrap, origin) == {mark(small): 1}


def test_dry_run_changes_nothing(topics, producer, kafka_bootstrap, capsys):
    origin, dlq, _ = topics
    m = original(producer, origin, "k-1")
    bus_dead_letter(producer, dlq, m)

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--all", "--dry-run")
    assert (code, out) == (0, [f"would replay 0:0 key=k-1: to {origin}[{m.partition}] (dry run)",
                               f"# {dlq}: would replay 1"])
    assert len(read_topic(kafka_bootstrap, origin)) == 1

    assert cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--all")[0] == 0
    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--all", "--dry-run")
    assert (code, out[0].startswith("skipped 0:0 key=k-1: already replayed")) == (0, True)
    assert len(read_topic(kafka_bootstrap, origin)) == 2


def test_nothing_matched_replays_nothing(topics, producer, kafka_bootstrap, capsys):
    origin, dlq, _ = topics
    bus_dead_letter(producer, dlq, original(producer, origin, "k-1"))

    code, out, err = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq,
                         "--offset", "0:0", "--offset", "0:7")
    assert (code, out) == (1, [])
    assert err == f"nothing replayed: no dead letter in {dlq} matched offset 0:7\n"
    code, out, err = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--key", "nope")
    assert (code, err) == (1, f"nothing replayed: no dead letter in {dlq} matched key nope\n")
    missing = f"test-dlq-missing-{uuid.uuid4().hex[:10]}"
    code, out, err = cli(capsys, kafka_bootstrap, "replay", "--topic", missing, "--all")
    assert (code, err) == (1, f"error: no topic {missing} at {kafka_bootstrap}\n")
    assert len(read_topic(kafka_bootstrap, origin)) == 1


def test_bus_consumer_dead_letter_is_listed_and_replayed(topics, producer, kafka_bootstrap, capsys):
    """The real EventConsumer's headers, not a copy of them."""
    origin, dlq, groups = topics
    groups.append(f"test-dlq-group-{uuid.uuid4().hex[:10]}")
    bad = original(producer, origin, "k-real", b"not an envelope")
    consumer = EventConsumer(origin, order_event_pb2.OrderPlaced, groups[0], lambda event, meta: None,
                             dlq_topic=dlq, client={"bootstrap.servers": kafka_bootstrap})
    stop = threading.Event()
    worker = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    worker.start()
    try:
        wait_until(lambda: read_topic(kafka_bootstrap, dlq), timeout=90, what=f"a dead letter in {dlq}")
    finally:
        stop.set()
        worker.join(30)
        consumer.close()

    code, out, _ = cli(capsys, kafka_bootstrap, "list", "--topic", dlq)
    assert code == 0
    assert out[0] == f"# {dlq}: 1 dead letter"
    assert out[1].startswith(f"0:0  key=k-real  origin={where(bad)}  EnvelopeError: ")
    assert out[1].endswith("  attempts=1  value=not an envelope")

    code, out, _ = cli(capsys, kafka_bootstrap, "replay", "--topic", dlq, "--key", "k-real")
    assert code == 0
    [copy] = replays(kafka_bootstrap, origin)
    assert out[0] == f"replayed 0:0 key=k-real: to {where(copy)}"
    assert (copy.partition(), copy.value()) == (bad.partition, b"not an envelope")
