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

Exit codes: 0 ok, 1 nothing matched, an unknown topic, something refused or failed; 2 usage.
The library functions take the client configuration (bootstrap servers and credentials, as
ordersync.config.Settings.kafka_client() builds it: a secured cluster too) and the topics as
parameters; only main() reads Settings.
"""

import argparse
import dataclasses
import json
import sys

from confluent_kafka import KafkaException

from bus import dead_letters as contract
from bus.clients import LIBRDKAFKA, KafkaClients
from bus.topic_reader import NoSuchTopic, ReadTimeout, read_range
from ops.kafka_errors import explain
from ordersync.config import Settings, exits_on_bad_setting

H_REPLAYED_FROM = "replayed.from"

# The same facts under the dead-letter contract's header names (bus.dead_letters) and Connect's.
FIELDS = {
    field: (name, *([contract.CONNECT_HEADERS[name]] if name in contract.CONNECT_HEADERS else []))
    for field, name in (("origin_topic", contract.H_ORIGIN_TOPIC), ("origin_partition", contract.H_ORIGIN_PARTITION),
                        ("origin_offset", contract.H_ORIGIN_OFFSET), ("error_class", contract.H_ERROR_CLASS),
                        ("error_message", contract.H_ERROR_MESSAGE), ("attempts", contract.H_ATTEMPTS))
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
        elif name.startswith((contract.PREFIX, contract.CONNECT_PREFIX)) or name == H_REPLAYED_FROM:
            extra[name] = _text(raw)  # unknown ones, unreadable numbers, an earlier replay's marker
        else:
            own.append((name, raw))
    flag = extra.get(contract.H_TRUNCATED, "").strip().lower()
    size = _int(extra.get(contract.H_ORIGINAL_SIZE))
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
             f"{error_class}: {escape(d.error_message)}" if d.error_message else error_class]
    if copies > 1:
        parts.append(f"copies={copies}")
    if d.attempts is not None:
        parts.append(f"attempts={d.attempts}")
    for name, text in d.extra.items():
        if name not in NOT_IN_LINE:
            short = name.removeprefix(contract.CONNECT_PREFIX).removeprefix(contract.PREFIX)
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


def _read(client: dict, topic: str, starts=None, timeout: float = 60.0, missing_ok: bool = False):
    """The records of `topic` (from `starts` when given), as bus.topic_reader reads them. Raises
    NoSuchTopic for a topic that does not exist, unless missing_ok (then: nothing)."""
    try:
        yield from read_range(client, topic, starts, timeout=timeout)
    except NoSuchTopic:
        if not missing_ok:
            raise
    except ReadTimeout as e:
        raise DeadLetterError(str(e)) from None


def read_dead_letters(client: dict, topic: str, timeout: float = 60) -> list[DeadLetter]:
    """Every message of a dead-letter topic, in partition and offset order (copies included).
    Raises bus.topic_reader.NoSuchTopic for a topic that does not exist."""
    letters = [parse(topic, m.partition(), m.offset(), m.key(), m.value(), m.headers())
               for m in _read(client, topic, timeout=timeout)]
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
        size = d.extra.get(contract.H_ORIGINAL_SIZE, "?")
        return (f"truncated copy ({kept} of {size} bytes kept), replaying it would publish a "
                f"damaged message; recover the original from {origin_text(d)}")
    if not d.origin_topic:
        return (f"no origin topic in its headers ({contract.H_ORIGIN_TOPIC} or "
                f"{FIELDS['origin_topic'][1]})")
    return None


def replayed_markers(client: dict, letters, timeout: float = 60) -> set[str]:
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
        for m in _read(client, topic, topic_starts, timeout, missing_ok=True):
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


def replay(client: dict, letters, *, dry_run: bool = False, timeout: float = 60,
           clients: KafkaClients = LIBRDKAFKA) -> list[Outcome]:
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
    present = replayed_markers(client, todo, timeout)
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
        producer = clients.producer({**client, "enable.idempotence": True, "acks": "all"})
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


@exits_on_bad_setting
def main(argv=None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m ops.dead_letters",
                                     description="List dead letters and replay them to their origin topic.")
    parser.add_argument("--bootstrap", help=f"Kafka bootstrap address (default: {settings.kafka_bootstrap}, "
                        "KAFKA_BOOTSTRAP; the credentials are the settings')")
    commands = parser.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("list", help="one line per dead letter")
    defaults = [settings.rejected_topic, settings.catalog_dlq_topic, settings.sink_dlq_topic]
    ls.add_argument("--topic", action="append", help="dead-letter topic (repeatable; default: "
                    f"{', '.join(defaults)})")
    ls.add_argument("--key", action="append", help="only dead letters with this key (repeatable)")
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
    # One function builds every client (bootstrap, TLS, SASL): the tools work on a secured cluster too.
    client = settings.kafka_client(**({"bootstrap.servers": args.bootstrap} if args.bootstrap else {}))

    try:
        if args.command == "list":
            for topic in args.topic or defaults:
                try:
                    letters = read_dead_letters(client, topic)
                except NoSuchTopic:
                    if args.topic:  # asked for by name: a typo, most likely
                        print(f"error: no topic {topic} at {client['bootstrap.servers']}", file=sys.stderr)
                        return 1
                    if not args.json:
                        print(f"# {topic}: 0 dead letters (no topic yet)")
                    continue
                if args.key:
                    letters = select(letters, keys=args.key)[0]
                origins = by_origin(letters)
                if not args.json:
                    copies = sum(n for _, n in origins) - len(origins)
                    print(f"# {topic}: {len(origins)} dead letter{'' if len(origins) == 1 else 's'}"
                          + (f" ({copies} more copies of them)" if copies else ""))
                for d, n in origins:
                    print(json.dumps(to_json(d, n)) if args.json else format_line(d, n))
            return 0
        letters = read_dead_letters(client, args.topic)
        picked, unmatched = select(letters, all_=args.all, positions=args.offset or (),
                                   keys=args.key or ())
        if unmatched or not picked:
            print(f"nothing replayed: no dead letter in {args.topic} matched "
                  f"{', '.join(unmatched) or '--all'}", file=sys.stderr)
            return 1
        outcomes = replay(client, picked, dry_run=args.dry_run)
    except NoSuchTopic as e:
        print(f"error: {e} at {client['bootstrap.servers']}", file=sys.stderr)
        return 1
    except DeadLetterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KafkaException as e:
        print(f"error: {explain(e, settings)}", file=sys.stderr)
        return 1
    for o in outcomes:
        print(o.line())
    counts = {a: sum(o.action == a for o in outcomes) for a in dict.fromkeys(o.action for o in outcomes)}
    print(f"# {args.topic}: " + ", ".join(f"{a} {n}" for a, n in counts.items()))
    return 1 if any(o.action in ("refused", "failed") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
