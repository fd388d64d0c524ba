"""bus.lag.group_offsets with the consumer double of tests/doubles.py as its probe (no broker)."""
from concurrent.futures import Future

import pytest
from confluent_kafka import KafkaError, KafkaException

from bus.lag import COUNTED_BELOW, describe_group, group_offsets
from tests.doubles import Consumer, topic_metadata


def test_the_groups_next_offset_and_the_end_per_partition_uncommitted_from_the_start():
    probe = Consumer(topics={"orders": topic_metadata(3)}, committed_offsets={0: 7, 2: 3},
                     watermarks={0: (0, 10), 1: (4, 9), 2: (3, 3)}, records={0: {7, 8, 9}, 1: {4, 5, 6, 7, 8}})
    assert group_offsets(probe, "orders") == {0: (7, 10), 1: (4, 9), 2: (3, 3)}


def test_commit_markers_after_the_groups_commit_are_no_records_left():
    # p0: the last record at 4, its transaction's marker at 5; p1: a record at 3, markers at 2 and 4.
    probe = Consumer(topics={"accepted": topic_metadata(2)}, committed_offsets={0: 5, 1: 2},
                     watermarks={0: (0, 6), 1: (0, 5)}, records={0: {0, 2, 4}, 1: {0, 3}})
    assert group_offsets(probe, "accepted") == {0: (6, 6), 1: (4, 5)}


def test_a_large_remainder_is_counted_in_offsets_not_read():
    probe = Consumer(topics={"accepted": topic_metadata(1)}, committed_offsets={0: 0},
                     watermarks={0: (0, COUNTED_BELOW + 1)})
    assert group_offsets(probe, "accepted") == {0: (0, COUNTED_BELOW + 1)}


def test_no_such_topic_is_none():
    missing = topic_metadata(0, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    assert group_offsets(Consumer(topics={"orders": missing}), "orders") is None
    assert group_offsets(Consumer(), "orders") is None


class _Admin:
    """describe_consumer_groups answering `errors` first, one per call, then a description."""

    def __init__(self, *errors):
        self.errors, self.calls = list(errors), 0

    def describe_consumer_groups(self, groups, request_timeout=None):
        self.calls += 1
        future: Future = Future()
        if self.errors:
            future.set_exception(KafkaException(KafkaError(self.errors.pop(0))))
        else:
            future.set_result(f"description of {groups[0]}")
        return {groups[0]: future}


def test_describe_group_waits_out_a_moving_coordinator_and_raises_the_rest():
    admin = _Admin(KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
    assert describe_group(admin, "catalog-stock", timeout=10) == "description of catalog-stock"
    assert admin.calls == 3
    refused = _Admin(KafkaError.GROUP_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        describe_group(refused, "catalog-stock", timeout=10)
    assert refused.calls == 1
