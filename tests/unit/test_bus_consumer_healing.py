"""EventConsumer's retry, dead-letter and health logic, with the Kafka doubles of tests/doubles.py (no broker)."""

import logging
import threading

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from bus import dead_letters
from bus import producer as bus_producer
from bus.consumer import EventConsumer
from bus.envelope import encode
from bus.failures import PermanentError, TransientError, backoff_delay
from ordersync.order.v1 import order_event_pb2
from tests.doubles import KafkaDoubles, Message

TOPIC = "orders"
EVENT = order_event_pb2.OrderPlaced(order_id="o-1", qty=1)


def message(value, **fields):
    """A record of the topic, by default keyed o-1 with a header of its own (a dead letter keeps it)."""
    return Message(value, **{"topic": TOPIC, "key": b"o-1", "headers": [("trace", b"t-1")], **fields})


@pytest.fixture
def fakes():
    return KafkaDoubles()


def make_consumer(fakes, handler, health=None, **kwargs):
    return EventConsumer(TOPIC, order_event_pb2.OrderPlaced, "group", handler, clients=fakes.clients,
                         client={"bootstrap.servers": "127.0.0.1:1"}, retry_backoff=0.001, max_backoff=0.004,
                         on_health=lambda serving, reason: health.append((serving, reason))
                         if health is not None else None, **kwargs)


def failing(times, error=ConnectionError("database down")):
    """A handler that raises `error` `times` times, then succeeds; its calls are counted."""
    calls = []

    def handler(event, meta):
        calls.append(event.order_id)
        if len(calls) <= times:
            raise error
    handler.calls = calls
    return handler


def test_a_transient_failure_is_retried_until_it_passes_then_committed_once(fakes, caplog):
    health = []
    handler = failing(4)
    consumer = make_consumer(fakes, handler, health)
    kafka = fakes.consumer
    with caplog.at_level(logging.INFO, logger="bus.consumer"):
        assert consumer.handle(message(encode(EVENT), offset=7)) is True
    assert len(handler.calls) == 5
    assert kafka.commits == [(0, 8)]
    assert fakes.producer.written == []  # a transient failure never goes to the DLQ
    assert kafka.polls_while_paused > 0 and kafka.paused == set()  # polled paused, then resumed
    assert [serving for serving, _ in health] == [False, True]
    assert "stuck on orders[0]@7 key=o-1" in health[0][1] and "database down" in health[0][1]
    assert "recovered on orders[0]@7 key=o-1 after 5 attempts" in health[1][1]
    # One line per state change, not one per attempt.
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]


def test_any_exception_counts_as_transient(fakes):
    for error in (TransientError("later"), RuntimeError("bug?"), TimeoutError()):
        handler = failing(1, error)
        consumer = make_consumer(fakes, handler)
        assert consumer.handle(message(encode(EVENT))) is True
        assert len(handler.calls) == 2 and fakes.producer.written == []


def test_retries_wait_with_capped_doubling_backoff(fakes):
    asked = []
    consumer = make_consumer(fakes, failing(3), backoff=lambda attempt, first, cap: asked.append((attempt, first, cap)) or 0)
    consumer.handle(message(encode(EVENT)))
    assert asked == [(1, 0.001, 0.004), (2, 0.001, 0.004), (3, 0.001, 0.004)]


def test_backoff_delay_is_full_jitter_capped():
    top = [backoff_delay(n, 0.1, 5.0, rand=lambda: 1.0) for n in range(1, 9)]
    assert top == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    assert backoff_delay(3, 0.1, 5.0, rand=lambda: 0.0) == 0.0
    assert backoff_delay(3, 0.1, 5.0, rand=lambda: 0.5) == pytest.approx(0.2)
    assert backoff_delay(100_000, 0.1, 5.0, rand=lambda: 1.0) == 5.0  # days of outage: no overflow
    assert all(0 <= backoff_delay(4, 0.1, 5.0) <= 0.8 for _ in range(100))


def test_a_permanent_error_is_dead_lettered_at_once_with_the_reason(fakes):
    health = []
    handler = failing(99, PermanentError("order_id reused with different content"))
    consumer = make_consumer(fakes, handler, health)
    assert consumer.handle(message(encode(EVENT), offset=3)) is True
    assert len(handler.calls) == 1
    ((topic, key, value, headers),) = fakes.producer.written
    assert (topic, key, value) == ("orders.group.dlq", b"o-1", encode(EVENT))
    assert headers["trace"] == b"t-1"  # the message's own headers are kept
    assert headers[dead_letters.H_ERROR_CLASS] == "PermanentError"
    assert headers[dead_letters.H_ERROR_MESSAGE] == "order_id reused with different content"
    assert (headers[dead_letters.H_ORIGIN_TOPIC], headers[dead_letters.H_ORIGIN_PARTITION],
            headers[dead_letters.H_ORIGIN_OFFSET], headers[dead_letters.H_ATTEMPTS]) == \
        ("orders", "0", "3", "1")
    assert fakes.consumer.commits == [(0, 4)]
    assert health == []


@pytest.mark.parametrize("value, reason", [
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"not json", "not JSON"),
    (b"[" * 100_000, "nested too deeply"),
    (None, "tombstone"),
    (b'{"schema": null, "payload": {}}', "schema must be an object"),
    (b'{"schema": {}, "payload": {}}', "schema type None"),
])
def test_undecodable_messages_are_dead_lettered_with_the_reason(fakes, value, reason):
    handler = failing(0)
    consumer = make_consumer(fakes, handler)
    assert consumer.handle(message(value)) is True
    assert handler.calls == []
    ((_, _, written, headers),) = fakes.producer.written
    assert written == value
    assert headers[dead_letters.H_ERROR_CLASS] == "EnvelopeError"
    assert reason in headers[dead_letters.H_ERROR_MESSAGE]
    assert fakes.consumer.commits == [(0, 1)]


@pytest.mark.parametrize("raise_locally", [True, False])
def test_a_message_too_large_for_the_dead_letter_topic_goes_as_a_truncated_copy(fakes,
                                                                               raise_locally):
    consumer = make_consumer(fakes, failing(0))
    dlq = fakes.producer
    dlq.raise_locally = raise_locally  # librdkafka's own size check, or the broker's
    dlq.fail = lambda value, attempt: (KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
                                       if len(value) > 100_000 else None)
    huge = b"\xff" * 1_048_576
    assert consumer.handle(message(huge, key=b"k" * 200_000)) is True
    ((_, key, value, headers),) = dlq.written
    assert value == huge[:65536] and key == b"k" * 65536
    assert headers[dead_letters.H_TRUNCATED] == "true"
    assert headers[dead_letters.H_ORIGINAL_SIZE] == "1048576"
    assert "MSG_SIZE_TOO_LARGE" in headers[dead_letters.H_TRUNCATED_REASON]
    assert "not UTF-8" in headers[dead_letters.H_ERROR_MESSAGE]
    assert "trace" not in headers  # the original headers could be what is too large
    assert fakes.consumer.commits == [(0, 1)]


def test_a_failed_dead_letter_write_is_retried_without_committing(fakes):
    health = []
    consumer = make_consumer(fakes, failing(0), health)
    dlq, kafka = fakes.producer, fakes.consumer
    dlq.fail = lambda value, attempt: (KafkaError(KafkaError._MSG_TIMED_OUT) if attempt <= 3
                                       else None)
    commits_while_failing = []
    kafka.on_poll = lambda k: commits_while_failing.append(list(k.commits))
    assert consumer.handle(message(b"not json")) is True
    assert dlq.attempts == 4 and len(dlq.written) == 1
    assert commits_while_failing and all(c == [] for c in commits_while_failing)
    assert kafka.commits == [(0, 1)]
    assert [serving for serving, _ in health] == [False, True]
    assert "could not write orders[0]@0 key=o-1 to orders.group.dlq" in health[0][1]


def test_a_stop_during_retries_commits_nothing(fakes):
    stop = threading.Event()
    consumer = make_consumer(fakes, failing(10**9))
    kafka = fakes.consumer
    kafka.on_poll = lambda k: stop.set() if k.polls_while_paused >= 3 else None
    assert consumer.handle(message(encode(EVENT), offset=5), stop) is False
    consumer.close()
    assert kafka.commits == [] and kafka.closed  # redelivered on restart


def test_a_stop_keeps_what_was_handled_before_the_stuck_message(fakes):
    stop = threading.Event()
    down = []

    def handler(event, meta):
        if down:
            raise ConnectionError("down")
    consumer = make_consumer(fakes, handler)
    kafka = fakes.consumer
    assert consumer.handle(message(encode(EVENT), offset=4))
    down.append(True)
    kafka.on_poll = lambda k: stop.set()
    consumer.handle(message(encode(EVENT), offset=5), stop)
    consumer.close()
    assert kafka.commits == [(0, 5), (0, 5)]  # async after offset 4, then on close: 5 comes again


def failing_forever(event, meta):
    raise ConnectionError("down")


def test_a_revoked_partition_gives_the_retry_up(fakes):
    health = []
    consumer = make_consumer(fakes, failing_forever, health)
    kafka = fakes.consumer
    kafka.on_poll = lambda k: (k.on_revoke(k, [TopicPartition(TOPIC, 0)])
                               if k.polls_while_paused == 2 else None)
    assert consumer.handle(message(encode(EVENT), offset=5), threading.Event()) is False
    assert kafka.commits == []
    assert [serving for serving, _ in health] == [False, True]
    assert "partition revoked" in health[1][1]


def test_revoked_partitions_are_committed_then_forgotten(fakes):
    consumer = make_consumer(fakes, failing(0))
    kafka = fakes.consumer
    consumer.handle(message(encode(EVENT), offset=4, partition=0))
    consumer.handle(message(encode(EVENT), offset=9, partition=1))
    kafka.commits.clear()
    kafka.on_revoke(kafka, [TopicPartition(TOPIC, 0)])
    assert kafka.commits == [(0, 5)]  # synchronously, so that the next owner starts after it
    consumer.close()
    assert kafka.commits == [(0, 5), (1, 10)]  # not partition 0 again: no longer ours


def test_a_message_from_a_newly_assigned_partition_during_the_wait_is_rewound(fakes):
    consumer = make_consumer(fakes, failing(3))
    kafka = fakes.consumer
    kafka.queue.append(message(encode(EVENT), offset=11, partition=2))
    consumer.handle(message(encode(EVENT), offset=5))
    assert kafka.seeks == [(2, 11)]
    assert kafka.paused == set()  # partition 2 was paused with the others, then resumed


def test_the_run_loop_raises_only_on_a_fatal_consumer_error(fakes):
    consumer = make_consumer(fakes, failing(0, PermanentError("no")))
    kafka = fakes.consumer
    kafka.queue += [message(None, error=KafkaError(KafkaError._TRANSPORT, "transport")),
                    message(b"\x00garbage", offset=1), message(encode(EVENT), offset=2),
                    message(None, error=KafkaError(KafkaError._TRANSPORT, "fatal", fatal=True))]
    with pytest.raises(KafkaException):
        consumer.run(threading.Event(), poll_timeout=0.01)
    assert kafka.commits == [(0, 2), (0, 3)]


def test_a_failing_health_callback_does_not_stop_consumption(fakes):
    def on_health(serving, reason):
        raise RuntimeError("health endpoint broken")
    consumer = EventConsumer(TOPIC, order_event_pb2.OrderPlaced, "group", failing(2), clients=fakes.clients,
                             client={"bootstrap.servers": "unused:9092"}, retry_backoff=0.001, on_health=on_health)
    assert consumer.handle(message(encode(EVENT))) is True


def test_clients_are_configured_to_recover_fast_and_stay_overridable(fakes):
    make_consumer(fakes, failing(0), extra_config={"session.timeout.ms": 6000},
                  dlq_config={"message.timeout.ms": 2000})
    conf = fakes.consumer.conf
    assert (conf["session.timeout.ms"], conf["heartbeat.interval.ms"]) == (6000, 2000)
    assert (conf["reconnect.backoff.ms"], conf["reconnect.backoff.max.ms"]) == (100, 1000)
    dlq_conf = fakes.producer.conf
    assert (dlq_conf["reconnect.backoff.ms"], dlq_conf["reconnect.backoff.max.ms"]) == (100, 1000)
    assert dlq_conf["message.timeout.ms"] == 2000

    kafka = KafkaDoubles()
    with bus_producer.EventProducer(TOPIC, "order_id", client={"bootstrap.servers": "127.0.0.1:1"},
                                    extra_config={"reconnect.backoff.ms": 50}, clients=kafka.clients):
        pass
    assert (kafka.producer.conf["reconnect.backoff.ms"], kafka.producer.conf["reconnect.backoff.max.ms"]) == (50, 1000)


# --- what an exporter reads: stats and lag ------------------------------------------------

def test_stats_count_dead_letters_and_transient_retries(fakes):
    consumer = make_consumer(fakes, failing(2))
    consumer.handle(message(encode(EVENT)))
    assert (consumer.stats.dead_lettered, consumer.stats.retried) == (0, 2)
    dlq = fakes.producer
    dlq.fail = lambda value, attempt: KafkaError(KafkaError._MSG_TIMED_OUT) if attempt == 1 else None
    consumer.handle(message(b"not json", offset=1))  # a failed dead-letter write is a retry too
    assert (consumer.stats.dead_lettered, consumer.stats.retried) == (1, 3)


def test_lag_is_the_high_watermark_minus_the_next_offset_to_handle(fakes):
    consumer = make_consumer(fakes, failing(0))
    kafka = fakes.consumer
    kafka.assigned = [0, 1, 2]
    kafka.watermarks = {0: (0, 10), 1: (5, 8), 2: (3, 3)}
    kafka.committed_offsets = {1: 6}  # partition 2: nothing committed yet, it starts at the low mark
    consumer.handle(message(encode(EVENT), offset=6, partition=0))  # partition 0: next is 7
    assert consumer.measure_lag(max_age=0) == {(TOPIC, 0): 3, (TOPIC, 1): 2, (TOPIC, 2): 0}
    assert consumer.lag() == {(TOPIC, 0): 3, (TOPIC, 1): 2, (TOPIC, 2): 0}


def test_the_polling_thread_measures_lag_at_most_every_max_age_and_keeps_what_it_cannot_read(fakes):
    consumer = make_consumer(fakes, failing(0))
    kafka = fakes.consumer
    kafka.watermarks = {0: (0, 4)}
    assert consumer.lag() == {}  # nothing measured yet
    stop = threading.Event()
    kafka.on_poll = lambda k: stop.set()
    consumer.run(stop)  # one poll
    assert consumer.lag() == {(TOPIC, 0): 4}
    calls = kafka.broker_calls
    kafka.watermarks = {0: (0, 9)}
    stop.clear()
    consumer.run(stop)
    assert consumer.lag() == {(TOPIC, 0): 4} and kafka.broker_calls == calls  # measured < 5 s ago
    assert consumer.measure_lag(max_age=0) == {(TOPIC, 0): 9}
    kafka.watermarks = {}  # the broker does not answer
    assert consumer.measure_lag(max_age=0) == {(TOPIC, 0): 9}


def test_when_idle_the_position_past_a_transactions_commit_marker_is_committed(fakes):
    """The gate writes in transactions: a commit marker follows its records in each partition."""
    consumer = make_consumer(fakes, failing(0))
    kafka = fakes.consumer
    kafka.queue.append(message(encode(EVENT), offset=4, partition=0))
    kafka.watermarks = {0: (0, 6)}  # offset 5 is the marker
    polls = []

    def poll(k):
        polls.append(1)
        if len(polls) == 2:
            k.positions[0] = 6  # the fetcher stepped over the marker
        if len(polls) == 3:
            stop.set()
    kafka.on_poll = poll
    stop = threading.Event()
    consumer.run(stop, poll_timeout=0.01)
    assert kafka.commits == [(0, 5), (0, 6)], "the message, then the marker once idle"
    assert consumer.measure_lag(max_age=0) == {(TOPIC, 0): 0}


# --- batch handlers ---------------------------------------------------------------------

def event(order_id):
    return encode(order_event_pb2.OrderPlaced(order_id=order_id, qty=1))


def recording_batch_handler(refuse=(), fail_times=0, refuse_whole_batch_with=None):
    """A batch handler that records each batch's order ids; it refuses the ids in `refuse`,
    fails transiently `fail_times` times, and refuses any batch of more than one item that
    holds the id `refuse_whole_batch_with` (as a multi-row statement failing would)."""
    batches = []

    def handle(items):
        ids = [event.order_id for event, _ in items]
        batches.append(ids)
        if len(batches) <= fail_times:
            raise ConnectionError("database down")
        if refuse_whole_batch_with in ids:
            if len(ids) > 1:
                raise PermanentError("the batch's statement was refused")
            raise PermanentError(f"{ids[0]} is refused")
        return {i: PermanentError(f"{order_id} is refused") for i, order_id in enumerate(ids) if order_id in refuse}
    handle.batches = batches
    return handle


def make_batch_consumer(fakes, handler, health=None, **kwargs):
    return EventConsumer(TOPIC, order_event_pb2.OrderPlaced, "group", batch_handler=handler, clients=fakes.clients,
                         client={"bootstrap.servers": "127.0.0.1:1"}, retry_backoff=0.001, max_backoff=0.004,
                         on_health=lambda serving, reason: health.append((serving, reason))
                         if health is not None else None, **kwargs)


def run_until_drained(consumer, kafka):
    """Run until a poll of the run loop finds nothing (the one after a batch's last message)."""
    stop = threading.Event()
    empty_polls = []

    def on_poll(k):
        empty_polls.append(not k.queue)
        if empty_polls[-2:] == [True, True]:
            stop.set()
    kafka.on_poll = on_poll
    consumer.run(stop, poll_timeout=0.01)


def test_either_a_handler_or_a_batch_handler(fakes):
    with pytest.raises(ValueError):
        EventConsumer(TOPIC, order_event_pb2.OrderPlaced, "group", client={"bootstrap.servers": "x:1"})
    with pytest.raises(ValueError):
        EventConsumer(TOPIC, order_event_pb2.OrderPlaced, "group", failing(0),
                      batch_handler=recording_batch_handler(), client={"bootstrap.servers": "x:1"})


def test_a_batch_handler_gets_what_has_arrived_and_one_commit_per_batch(fakes):
    handler = recording_batch_handler()
    consumer = make_batch_consumer(fakes, handler, max_batch=3)
    kafka = fakes.consumer
    kafka.queue += [message(event(f"o-{n}"), offset=n, partition=n % 2) for n in range(5)]
    run_until_drained(consumer, kafka)
    assert handler.batches == [["o-0", "o-1", "o-2"], ["o-3", "o-4"]]
    assert kafka.commits == [(0, 3), (1, 2), (1, 4), (0, 5)]  # the next offset per partition, per batch


def test_items_a_batch_handler_refuses_are_dead_lettered_and_the_rest_committed(fakes):
    handler = recording_batch_handler(refuse={"o-1"})
    consumer = make_batch_consumer(fakes, handler)
    kafka = fakes.consumer
    kafka.queue += [message(event("o-0"), offset=0), message(b"not json", offset=1, key=b"bad"),
                    message(event("o-1"), offset=2), message(event("o-3"), offset=3)]
    run_until_drained(consumer, kafka)
    assert handler.batches == [["o-0", "o-1", "o-3"]]  # the undecodable one never reaches it
    dead = fakes.producer.written
    assert [headers[dead_letters.H_ORIGIN_OFFSET] for _, _, _, headers in dead] == ["1", "2"]
    assert "o-1 is refused" in dead[1][3][dead_letters.H_ERROR_MESSAGE]
    assert kafka.commits == [(0, 4)]


def test_a_batch_refused_whole_is_handed_over_one_at_a_time_to_find_the_culprit(fakes):
    handler = recording_batch_handler(refuse_whole_batch_with="o-1")
    consumer = make_batch_consumer(fakes, handler)
    kafka = fakes.consumer
    kafka.queue += [message(event(f"o-{n}"), offset=n) for n in range(3)]
    run_until_drained(consumer, kafka)
    assert handler.batches == [["o-0", "o-1", "o-2"], ["o-0"], ["o-1"], ["o-2"]]
    dead = fakes.producer.written
    assert [headers[dead_letters.H_ORIGIN_OFFSET] for _, _, _, headers in dead] == ["1"]
    assert kafka.commits == [(0, 3)]


def test_a_failed_batch_is_retried_whole_and_its_dead_letters_are_written_once(fakes):
    handler = recording_batch_handler(refuse={"o-0", "o-1"})
    consumer = make_batch_consumer(fakes, handler)
    kafka, dlq = fakes.consumer, fakes.producer
    # The first refused item's dead letter is written, the second's fails once: the batch is
    # retried, and the first is not written again.
    dlq.fail = lambda value, attempt: KafkaError(KafkaError._MSG_TIMED_OUT) if attempt == 2 else None
    assert consumer.handle_batch([message(event(f"o-{n}"), offset=n) for n in range(3)]) is True
    assert len(handler.batches) == 2
    assert [headers[dead_letters.H_ORIGIN_OFFSET] for _, _, _, headers in dlq.written] == ["0", "1"]
    assert kafka.commits == [(0, 3)] and consumer.stats.retried == 1


def test_a_batch_stuck_on_a_transient_failure_keeps_the_messages_of_partitions_still_ours(fakes):
    health = []
    handler = recording_batch_handler(fail_times=3)
    consumer = make_batch_consumer(fakes, handler, health)
    kafka = fakes.consumer
    kafka.assigned = [0, 1]
    kafka.queue += [message(event("o-0"), offset=0, partition=0), message(event("o-1"), offset=0, partition=1)]
    revoke_once = []

    def on_poll(k):
        if k.polls_while_paused == 1 and not revoke_once:
            revoke_once.append(True)
            k.on_revoke(k, [TopicPartition(TOPIC, 0)])
    kafka.on_poll = on_poll
    messages = [kafka.queue.pop(0), kafka.queue.pop(0)]
    assert consumer.handle_batch(messages) is True
    assert handler.batches[0] == ["o-0", "o-1"] and handler.batches[-1] == ["o-1"]
    assert kafka.commits == [(1, 1)]  # partition 0 went to another member: not committed by us
    assert [serving for serving, _ in health] == [False, True]
    assert "a batch of 2 messages from orders[0]@0" in health[0][1]


def test_a_stop_during_a_batch_retry_commits_nothing(fakes):
    stop = threading.Event()
    consumer = make_batch_consumer(fakes, recording_batch_handler(fail_times=10**9))
    kafka = fakes.consumer
    kafka.on_poll = lambda k: stop.set() if k.polls_while_paused >= 2 else None
    assert consumer.handle_batch([message(event(f"o-{n}"), offset=n) for n in range(3)], stop) is False
    consumer.close()
    assert kafka.commits == []
