"""Dead letters: list a dead-letter topic and replay chosen messages to their origin topic.

Reads both kinds of dead letters: the gate's and the bus consumer's (`dlq.*` headers,
gate/server.py and bus/consumer.py) and Kafka Connect's (`__connect.errors.*` context headers).
Each origin (topic, partition, offset) is one dead letter, however many copies a topic holds
(Connect writes one again for what a crashed worker had not committed): the listing shows it
once with its copies, a replay sends it once. A replayed message keeps its key, value and own
headers and gets `replayed.from` = "<origin topic>:<partition>:<offset>" (the dead letter's own
position when its origin is unknown); one whose marker is already in the origin topic is
skipped, so replaying twice adds nothing. A truncated copy is never replayed.

    python -m ops.dead_letters list [--topic T ...] [--json]
    python -m ops.dead_letters replay --topic T (--all | --offset P:O ... | --key K ...) [--dry-run]

Exit codes: 0 ok, 1 nothing matched or something refused or failed, 2 usage.
The library functions take the broker and topics as parameters; only main() reads Settings.
"""

import argparse
import dataclasses
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from bus import consumer as bus
from ordersync.config import Settings

BUS_PREFIX = "dlq."
CONNECT_PREFIX = "__connect.errors."
# A consumer that cut an oversized message down to fit the dead-letter topic says so here.
H_TRUNCATED = "dlq.truncated"
H_ORIGINAL_SIZE = "dlq.original.size"
H_REPLAYED_FROM = "replayed.from"

# The same facts under the bus consumer's header names and Connect's.
FIELDS = {
    "origin_topic": (bus.H_ORIGIN_TOPIC, "__connect.errors.topic"),
    "origin_partition": (bus.H_ORIGIN_PARTITION, "__connect.errors.partition"),
    "origin_offset": (bus.H_ORIGIN_OFFSET, "__connect.errors.offset"),
    "error_class": (bus.H_ERROR_CLASS, "__connect.errors.exception.class.name"),
    "error_message": (bus.H_ERROR_MESSAGE, "__connect.errors.exception.message"),
    "attempts": (bus.H_ATTEMPTS,),
}
INT_FIELDS = {"origin_partition", "origin_offset", "attempts"}
FIELD_OF_HEADER = {name: field for field, names in FIELDS.items() for name in names}
# Extra headers too long for a one-line listing (still in --json).
NOT_IN_LINE = {"__connect.errors.exception.stacktrace"}


class DeadLetterError(Exception):
    """A topic could not be read or written as needed; nothing was half done silently."""


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter topic, its error headers parsed."""
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple = ()  # the failed message's own headers, replayed with it
    origin_topic: str | None = None
    origin_partition: int | None = None
    origin_offset: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    attempts: int | None = None
    truncated: bool = False
    extra: dict = dataclasses.field(default_factory=dict)  # other dlq.*/__connect.errors.* headers

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def origin(self) -> tuple | None:
        """(topic, partition, offset) of the message that failed, when its headers say so."""
        if self.origin_topic and self.origin_partition is not None and self.origin_offset is not None:
            return self.origin_topic, self.origin_partition, self.origin_offset
        return None

    @property
    def marker(self) -> str:
        """The `replayed.from` value of this dead letter's replay: its origin, the same for every copy."""
        return ":".join(map(str, self.origin or (self.topic, self.partition, self.offset)))


def _text(raw) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ("" if raw is None else str(raw))


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def parse(topic, partition, offset, key, value, headers) -> DeadLetter:
    """A DeadLetter from a consumed message's parts (headers: confluent-kafka's (name, bytes) list)."""
    own, facts, extra = [], {}, {}
    for name, raw in headers or ():
        field = FIELD_OF_HEADER.get(name)
        if field in INT_FIELDS and _int(_text(raw)) is not None:
            facts[field] = _int(_text(raw))
        elif field and field not in INT_FIELDS:
            facts[field] = _text(raw)
        elif name.startswith((BUS_PREFIX, CONNECT_PREFIX)) or name == H_REPLAYED_FROM:
            extra[name] = _text(raw)  # unknown ones, unreadable numbers, an earlier replay's marker
        else:
            own.append((name, raw))
    flag = extra.get(H_TRUNCATED, "").strip().lower()
    size = _int(extra.get(H_ORIGINAL_SIZE))
    truncated = flag not in ("", "0", "false", "no") or (size is not None and size != len(value or b""))
    return DeadLetter(topic, partition, offset, key, value, tuple(own), truncated=truncated,
                      extra=extra, **facts)


def escape(text: str) -> str:
    """Non-printable characters as Python escapes (\\n, \\x00, \\u200b)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def shorten(text: str, width: int) -> str:
    text = escape(text)
    return text if len(text) <= width else text[:width] + "..."


def preview(value: bytes | None, width: int = 80) -> str:
    """The first `width` characters of a payload, escaped; "(tombstone)" for None."""
    if value is None:
        return "(tombstone)"
    return shorten(value.decode("utf-8", "backslashreplace"), width)


def key_text(key: bytes | None) -> str:
    return "-" if key is None else shorten(key.decode("utf-8", "backslashreplace"), 40)


def origin_text(d: DeadLetter) -> str:
    def known(v):
        return "?" if v is None else v
    return f"{known(d.origin_topic)}[{known(d.origin_partition)}]@{known(d.origin_offset)}"


def format_line(d: DeadLetter, copies: int = 1) -> str:
    """One line of `list`: position, key, origin, error, attempts, copies, extra headers, payload."""
    error_class = (d.error_class or "?").rsplit(".", 1)[-1]
    parts = [d.position, f"key={key_text(d.key)}", f"origin={origin_text(d)}",
             f"{error_class}: {shorten(d.error_message, 60)}" if d.error_message else error_class]
    if copies > 1:
        parts.append(f"copies={copies}")
    if d.attempts is not None:
        parts.append(f"attempts={d.attempts}")
    for name, text in d.extra.items():
        if name not in NOT_IN_LINE:
            short = name.removeprefix(CONNECT_PREFIX).removeprefix(BUS_PREFIX)
            parts.append(f"{short}={shorten(text, 40)}")
    parts.append(f"value={preview(d.value)}")
    return "  ".join(parts)


def to_json(d: DeadLetter, copies: int = 1) -> dict:
    """A dead letter for scripts (text fields decoded; the payload as a preview and its size)."""
    return {
        "topic": d.topic, "partition": d.partition, "offset": d.offset, "copies": copies,
        "key": None if d.key is None else d.key.decode("utf-8", "backslashreplace"),
        "origin_topic": d.origin_topic, "origin_partition": d.origin_partition,
        "origin_offset": d.origin_offset, "error_class": d.error_class,
        "error_message": d.error_message, "attempts": d.attempts, "truncated": d.truncated,
        "extra": d.extra, "headers": [[n, _text(v)] for n, v in d.headers],
        "value_size": None if d.value is None else len(d.value), "preview": preview(d.value),
    }


def _read(bootstrap, topic, start=None, timeout=60.0):
    """Yield the messages of `topic` from `start` ({partition: offset}, only those partitions;
    default: every partition from its beginning) up to the end each partition had when called.
    Yields nothing for a topic that does not exist."""
    # assign() rather than subscribe(): nothing is committed and no group is left behind.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "ops-dead-letters",
                  "enable.auto.commit": False})
    try:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or (meta.error is not None
                            and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
            return
        if meta.error is not None:
            raise DeadLetterError(f"cannot read {topic}: {meta.error}")
        ends, assignment = {}, []
        for p in meta.partitions:
            if start is not None and p not in start:
                continue
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            first = low if start is None else max(low, start[p])
            if first < high:
                ends[p] = high
                assignment.append(TopicPartition(topic, p, first))
        c.assign(assignment)
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise DeadLetterError(f"could not read {topic} to its end within {timeout:.0f}s")
            for m in c.consume(500, 0.5):
                if m.error():
                    if m.error().fatal():
                        raise KafkaException(m.error())
                    continue
                if m.offset() < ends.get(m.partition(), -1):
                    yield m
            for tp in c.position([TopicPartition(topic, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
    finally:
        c.close()


def read_dead_letters(bootstrap: str, topic: str, timeout: float = 60) -> list[DeadLetter]:
    """Every message of a dead-letter topic, in partition and offset order (copies included)."""
    letters = [parse(topic, m.partition(), m.offset(), m.key(), m.value(), m.headers())
               for m in _read(bootstrap, topic, timeout=timeout)]
    return sorted(letters, key=lambda d: (d.partition, d.offset))


def by_origin(letters) -> list[tuple[DeadLetter, int]]:
    """(the first copy, the number of copies) per origin, in the order of the first copies; a
    dead letter without an origin is its own."""
    firsts: dict[str, DeadLetter] = {}
    copies: dict[str, int] = {}
    for d in letters:
        firsts.setdefault(d.marker, d)
        copies[d.marker] = copies.get(d.marker, 0) + 1
    return [(d, copies[m]) for m, d in firsts.items()]


def select(letters, *, all_=False, positions=(), keys=()):
    """(chosen dead letters, selectors that matched none): by "P:O" position or by text key."""
    if all_:
        return list(letters), []
    chosen = [d for d in letters if d.position in positions
              or (d.key is not None and d.key.decode("utf-8", "replace") in keys)]
    unmatched = [f"offset {p}" for p in positions if not any(d.position == p for d in chosen)]
    unmatched += [f"key {k}" for k in keys
                  if not any(d.key is not None and d.key.decode("utf-8", "replace") == k
                             for d in chosen)]
    return chosen, unmatched


def refusal(d: DeadLetter) -> str | None:
    """Why this dead letter must not be replayed, or None."""
    if d.truncated:
        kept = 0 if d.value is None else len(d.value)
        size = d.extra.get(H_ORIGINAL_SIZE, "?")
        return (f"truncated copy ({kept} of {size} bytes kept), replaying it would publish a "
                f"damaged message; recover the original from {origin_text(d)}")
    if not d.origin_topic:
        return (f"no origin topic in its headers ({bus.H_ORIGIN_TOPIC} or "
                f"{FIELDS['origin_topic'][1]})")
    return None


def replayed_markers(bootstrap: str, letters, timeout: float = 60) -> set[str]:
    """The markers of `letters` already present in their origin topics.

    A replay is appended after its original, so each origin partition is read from just after
    the earliest original offset among `letters` (the whole topic when a partition or offset is
    unknown) up to its current end."""
    wanted = {d.marker for d in letters}
    starts: dict[str, dict[int, int] | None] = {}
    for d in letters:
        known = d.origin_partition is not None and d.origin_offset is not None
        topic_starts = starts.setdefault(d.origin_topic, {})
        if topic_starts is None:
            continue
        if not known:
            starts[d.origin_topic] = None  # scan every partition from its beginning
        else:
            p, o = d.origin_partition, (d.origin_offset or 0) + 1
            topic_starts[p] = min(o, topic_starts.get(p, o))
    found = set()
    for topic, topic_starts in starts.items():
        for m in _read(bootstrap, topic, topic_starts, timeout):
            for name, raw in m.headers() or ():
                if name == H_REPLAYED_FROM and _text(raw) in wanted:
                    found.add(_text(raw))
    return found


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What replay() did with one dead letter: replayed, would replay, skipped, refused, failed."""
    letter: DeadLetter
    action: str
    detail: str

    def line(self) -> str:
        return f"{self.action} {self.letter.position} key={key_text(self.letter.key)}: {self.detail}"


def replay(bootstrap: str, letters, *, dry_run: bool = False, timeout: float = 60) -> list[Outcome]:
    """Re-produce each dead letter's key, value and own headers to its origin topic (to its origin
    partition when known), with `replayed.from`; skips those already replayed, refuses truncated
    copies and those without an origin. Waits for every acknowledgement."""
    outcomes: dict[str, Outcome] = {}
    todo: list[DeadLetter] = []
    for d in letters:  # one per origin: copies share the marker
        if d.marker in outcomes or any(t.marker == d.marker for t in todo):
            continue
        reason = refusal(d)
        if reason:
            outcomes[d.marker] = Outcome(d, "refused", reason)
        else:
            todo.append(d)
    present = replayed_markers(bootstrap, todo, timeout)
    send = []
    for d in todo:
        if d.marker in present:
            outcomes[d.marker] = Outcome(d, "skipped", f"already replayed ({H_REPLAYED_FROM}="
                                                       f"{d.marker} is in {d.origin_topic})")
        elif dry_run:
            target = f"{d.origin_topic}" + ("" if d.origin_partition is None else f"[{d.origin_partition}]")
            outcomes[d.marker] = Outcome(d, "would replay", f"to {target} (dry run)")
        else:
            send.append(d)
    if send:
        acks: dict[str, tuple] = {}
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                             "acks": "all"})
        for d in send:
            assert d.origin_topic  # refusal() said so
            # An unknown partition: the producer's partitioner picks one (PARTITION_UA).
            partition = -1 if d.origin_partition is None else d.origin_partition
            producer.produce(d.origin_topic, key=d.key, value=d.value,
                             headers=list(d.headers) + [(H_REPLAYED_FROM, d.marker)],
                             on_delivery=_record_ack(acks, d.marker), partition=partition)
        producer.flush(timeout)
        for d in send:
            err, msg = acks.get(d.marker, (f"no acknowledgement within {timeout:.0f}s", None))
            if err is None:
                outcomes[d.marker] = Outcome(d, "replayed",
                                             f"to {d.origin_topic}[{msg.partition()}]@{msg.offset()}")
            else:  # maybe written anyway: a rerun skips it if so
                outcomes[d.marker] = Outcome(d, "failed", f"{err}; run again to retry")
    return [outcomes[m] for m in dict.fromkeys(d.marker for d in letters)]


def _position(text: str) -> str:
    """argparse type of --offset: "P:O" with two non-negative integers."""
    partition, _, offset = text.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not PARTITION:OFFSET, e.g. 0:42")
    return f"{int(partition)}:{int(offset)}"


def _record_ack(acks: dict, marker: str):
    """A delivery callback that keeps (error, message) under the dead letter's marker."""
    def on_delivery(err, msg):
        acks[marker] = (err, msg)
    return on_delivery


def main(argv=None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m ops.dead_letters",
                                     description="List dead letters and replay them to their origin topic.")
    parser.add_argument("--bootstrap", default=settings.kafka_bootstrap,
                        help="Kafka bootstrap address (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("list", help="one line per dead letter")
    defaults = [settings.rejected_topic, settings.catalog_dlq_topic, settings.sink_dlq_topic]
    ls.add_argument("--topic", action="append", help="dead-letter topic (repeatable; default: "
                    f"{', '.join(defaults)})")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    rp = commands.add_parser("replay", help="re-produce chosen dead letters to their origin topic")
    rp.add_argument("--topic", required=True, help="the dead-letter topic")
    chosen = rp.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--all", action="store_true", help="every dead letter of the topic")
    chosen.add_argument("--offset", action="append", type=_position, metavar="P:O",
                        help="the dead letter at partition P, offset O (repeatable)")
    chosen.add_argument("--key", action="append", help="dead letters with this key (repeatable)")
    rp.add_argument("--dry-run", action="store_true", help="say what would be replayed, write nothing")
    args = parser.parse_args(argv)

    try:
        if args.command == "list":
            for topic in args.topic or defaults:
                origins = by_origin(read_dead_letters(args.bootstrap, topic))
                if not args.json:
                    copies = sum(n for _, n in origins) - len(origins)
                    print(f"# {topic}: {len(origins)} dead letter{'' if len(origins) == 1 else 's'}"
                          + (f" ({copies} more copies of them)" if copies else ""))
                for d, n in origins:
                    print(json.dumps(to_json(d, n)) if args.json else format_line(d, n))
            return 0
        letters = read_dead_letters(args.bootstrap, args.topic)
        picked, unmatched = select(letters, all_=args.all, positions=args.offset or (),
                                   keys=args.key or ())
        if unmatched or not picked:
            print(f"nothing replayed: no dead letter in {args.topic} matched "
                  f"{', '.join(unmatched) or '--all'}", file=sys.stderr)
            return 1
        outcomes = replay(args.bootstrap, picked, dry_run=args.dry_run)
    except (DeadLetterError, KafkaException) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for o in outcomes:
        print(o.line())
    counts = {a: sum(o.action == a for o in outcomes) for a in dict.fromkeys(o.action for o in outcomes)}
    print(f"# {args.topic}: " + ", ".join(f"{a} {n}" for a, n in counts.items()))
    return 1 if any(o.action in ("refused", "failed") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
