"""Envelope doctor: whether the running system takes a hand-written record of the orders topic
(a Connect JSON envelope, {"schema": ..., "payload": ...}), and if not, why and how to fix it.

    python -m ops.doctor FILE | -  [--table NAME] [--offline] [--connector connect/orders-sink.json] [--fix]
    python -m ops.doctor --topic T --offset P:O [--bootstrap HOST:PORT] [...]

It asks what really decides. The gate (gate.verdict) reads every record of the orders topic
before anything writes it: the doctor asks it the same question, with what the real database
holds now (gate.first_events.ReadOnlyLookups: the catalog's products, the order ids accepted
before; nothing is written). For an event the gate accepts it reads the real orders table's
columns (information_schema) for the row the sink writes from it. "accepted" means the sink and
the Catalog both take it.

Output, one line per problem: first what plain JsonConverter and the JDBC sink would make of the
envelope as written (ops.connect_json: levels converter, sink, silent; they explain and carry the
fixes, but the gate re-encodes what it accepts, so they never decide), then
  gate   the gate refuses it (the reason, as on orders.rejected); for an envelope it cannot read,
         also what its payload lacks of the contract and what the gate says of the payload
         with the contract's schema (the gate itself stops at its first reason);
  table  the table cannot hold the row: a NOT NULL column without a default that the event does
         not fill, a value longer than its column, a column whose type cannot hold the field;
then one verdict line. When MariaDB cannot be reached, a line says so (its address, `make
stack-up`), and only what needs no database is checked.

Exit codes: 0 accepted, or a duplicate of an order accepted before with the same content
(nothing changes); 1 refused, a table problem, or MariaDB not reachable (within DB_TIMEOUT
seconds); 2 usage or unreadable input. --offline asks no database: only what needs none is
checked (decoding and the event rules), and an event valid on its own exits 0.

--fix writes the contract's schema when the payload's keys are exactly the contract's fields,
then applies the unambiguous fixes of ops.connect_json, prints the envelope, and exits 0 only
when the gate then takes it (1 otherwise, saying on stderr what still stops it).

The library functions take the envelope and the lookups as parameters; only main() reads files,
stdin, Kafka, Settings or the database.
"""

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from confluent_kafka import KafkaException

from bus.envelope import to_envelope
from bus.envelope.schema import TIMESTAMP, connect_schema
from bus.topic_reader import NoSuchPartition, NoSuchTopic, ReadTimeout, read_range
from ops.connect_json import Problem, diagnose, dumps, fix, key_fields, parse
from ops.kafka_errors import explain
from ordersync.config import ROOT, Settings, exits_on_bad_setting
from ordersync.contract import sql
from ordersync.gate.first_events import ReadOnlyLookups
from ordersync.gate.verdict import (
    ACCEPTED,
    BREAKS_RULES,
    DUPLICATE,
    NOT_AN_EVENT,
    ORDER_ID_REUSED,
    UNKNOWN_PRODUCT,
    FirstEvents,
    KnownProducts,
    Origin,
    Refused,
    decide,
    read_event,
)
from ordersync.order.v1.order_event_pb2 import OrderPlaced

GATE = "gate"    # the gate refuses the record: orders.rejected gets it, the table and the stock do not
TABLE = "table"  # the gate accepts it, the orders table cannot hold the row the sink writes

DEFAULT_CONNECTOR = ROOT / "connect" / "orders-sink.json"
DB_TIMEOUT = 2  # seconds to reach MariaDB
FILE_ORIGIN: Origin = ("ops.doctor", -1, -1)  # no record's: the gate would record an order id not seen yet for it
CONTRACT = connect_schema(OrderPlaced)
FIXES = {
    NOT_AN_EVENT: "write an envelope of the contract, ordersync.order.v1.OrderPlaced (as bus.envelope.encode does)",
    BREAKS_RULES: "follow the event rules (ordersync/contract/event_rules.py)",
    UNKNOWN_PRODUCT: "name a product the catalog has, in its exact case",
    ORDER_ID_REUSED: "give a new order an order_id of its own",
}


# ------------------------------------------------------------------ what the database holds

@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the orders table, as information_schema.columns has it."""
    name: str
    data_type: str            # "varchar", "int", "datetime", ...
    column_type: str          # "varchar(64)", "int(10) unsigned", ...
    nullable: bool
    has_default: bool         # a default, auto_increment or generated: an INSERT may leave it out
    max_length: int | None = None  # characters, of a text column
    precision: int | None = None   # digits of a decimal column
    scale: int | None = None


@dataclasses.dataclass(frozen=True)
class Database:
    """What the doctor asks the database, as the gate would answer now (gate.verdict's two lookups)
    and the columns of a table of the orders database ([] when there is no such table)."""
    known_products: KnownProducts
    first_events: FirstEvents
    columns: Callable[[str], list[Column]]


def mariadb(settings: Settings) -> Database:
    """The real database of the settings, read only; its calls raise sqlalchemy's DBAPIError
    when MariaDB cannot be reached within DB_TIMEOUT seconds."""
    engine = sa.create_engine(settings.mariadb_url(settings.gate_db), poolclass=sa.pool.NullPool,
                              connect_args={"connect_timeout": DB_TIMEOUT, "read_timeout": 5 * DB_TIMEOUT})
    lookups = ReadOnlyLookups(engine, settings.catalog_db)
    return Database(lookups.known_products, lookups.first_events,
                    lambda table: table_columns(engine, settings.orders_db, table))


def table_columns(engine: sa.Engine, database: str, table: str) -> list[Column]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT column_name AS name, data_type, column_type, is_nullable, column_default, extra,"
            " character_maximum_length, numeric_precision, numeric_scale FROM information_schema.columns"
            " WHERE table_schema = :d AND table_name = :t ORDER BY ordinal_position"), {"d": database, "t": table})
        return [Column(r.name, r.data_type.lower(), r.column_type, r.is_nullable == "YES",
                       r.column_default is not None or "auto_increment" in r.extra or "GENERATED" in r.extra.upper(),
                       r.character_maximum_length, r.numeric_precision, r.numeric_scale) for r in rows]


# ------------------------------------------------------------------ the orders table

TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}
INTEGER_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "bigint": 64}
# The column types the sink writes each kind of field of the contract into without loss.
HOLDERS = {"string": TEXT_TYPES, "int32": {*INTEGER_BITS, "decimal", "double"},
           "int64": {*INTEGER_BITS, "decimal"}, TIMESTAMP: {"datetime", "timestamp"}}
KIND_NAMES = {"string": "a string", "int32": "an int32", "int64": "an int64", TIMESTAMP: "epoch milliseconds"}
TIMESTAMP_COLUMN_MILLIS = (1_000, 2_147_483_647_999)  # what a MariaDB TIMESTAMP column holds (1970 to 2038)


def sink_row(event: OrderPlaced) -> dict[str, tuple[str, Any]]:
    """The row the sink writes from an accepted event: {column: (kind of the field, value)}, from
    the canonical envelope the gate re-encodes it as."""
    envelope = to_envelope(event)
    return {f["field"]: (f.get("name", f["type"]), envelope["payload"][f["field"]])
            for f in envelope["schema"]["fields"]}


def table_problems(event: OrderPlaced, columns: list[Column], table: str) -> list[Problem]:
    """What stops the table from holding the row the sink writes from the event."""
    if not columns:
        return [Problem(TABLE, (), f"there is no table {table}",
                        "the sink would create one without the rules' CHECK constraints",
                        "run `make stack-up` (it creates the table), or name the table with --table")]
    row = sink_row(event)
    problems = []
    for column in columns:
        if column.name in row:
            kind, value = row[column.name]
            why = _cannot_hold(column, kind, value)
            if why:
                problems.append(Problem(TABLE, ("payload", column.name), why, "the sink cannot write the row",
                                        f"make the column {column.name} fit the contract (stack/schema.py)"))
        elif not column.nullable and not column.has_default:
            problems.append(Problem(
                TABLE, (), f"column {column.name} ({column.column_type}) is NOT NULL without a default, and "
                           "the event does not fill it", "the sink cannot insert the row",
                f"give {column.name} a default, or let it be NULL"))
    return problems


def _cannot_hold(column: Column, kind: str, value) -> str | None:
    """Why the column cannot hold the field's value, or None."""
    held = f"a {column.column_type} column"
    if column.data_type not in HOLDERS.get(kind, {column.data_type}):  # a kind the contract lacks: not checked
        return f"{held} cannot hold {KIND_NAMES.get(kind, kind)}"
    if kind == "string" and column.max_length is not None and len(value) > column.max_length:
        return f"{value!r} is {len(value)} characters long, more than {held} holds"
    if column.data_type in INTEGER_BITS:
        bits = INTEGER_BITS[column.data_type]
        low, high = (0, 2**bits - 1) if "unsigned" in column.column_type else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if not low <= value <= high:
            return f"{value} is out of the range of {held} ({low} to {high})"
    if column.data_type == "decimal" and column.precision is not None:
        if len(str(abs(value))) > column.precision - (column.scale or 0):
            return f"{value} has more digits than {held} holds"
    if column.data_type == "timestamp" and not TIMESTAMP_COLUMN_MILLIS[0] <= value <= TIMESTAMP_COLUMN_MILLIS[1]:
        return f"{value} ms is outside what {held} holds (1970 to 2038)"
    return None


# ------------------------------------------------------------------ the gate's verdict

def judge(value: bytes | None, database: Database | None, settings: Settings, table: str | None = None,
          origin: Origin = FILE_ORIGIN) -> tuple[list[Problem], str, int]:
    """(the gate's and the table's problems with a record, the verdict line, the exit code).
    database None: only what needs no database (decoding and the event rules). Raises
    sqlalchemy's DBAPIError when the database does not answer."""
    table = table or settings.orders_table
    refused_as = f"the gate writes it to {settings.rejected_topic}; neither the table nor the stock gets it"
    if database is None:
        try:
            read_event(value)
        except Refused as e:
            return _refusal(value, e.reason, str(e), refused_as), _refused(e.reason, settings), 1
        return [], "verdict: valid on its own; the product and the order id not checked", 0
    [verdict] = decide([(value, origin)], database.known_products, database.first_events)
    if verdict.event is None:
        return _refusal(value, verdict.reason, verdict.message, refused_as), _refused(verdict.reason, settings), 1
    order_id = verdict.event.order_id
    if verdict.outcome == DUPLICATE:
        return [], (f"verdict: a duplicate of order {order_id}, accepted before with the same content: "
                    "nothing changes"), 0
    assert verdict.outcome == ACCEPTED
    where = f"{settings.orders_db}.{table}"
    problems = table_problems(verdict.event, database.columns(table), where)
    if problems:
        return problems, (f"verdict: the gate accepts it, but {where} CANNOT HOLD it: the Catalog takes its stock "
                          f"and the table does not get the row [{len(problems)} table]"), 1
    return [], (f"verdict: accepted: the gate passes it to {settings.accepted_topic}, the sink writes it to {where} "
                "and the Catalog takes its stock"), 0


def _refused(reason: str, settings: Settings) -> str:
    return (f"verdict: REFUSED by the gate ({reason}): it goes to {settings.rejected_topic}; neither the table "
            "nor the stock gets it")


def _refusal(value: bytes | None, reason: str, message: str, refused_as: str) -> list[Problem]:
    """The gate's refusal, and for an envelope it cannot read, what else stops its payload."""
    problems = [Problem(GATE, (), f"{reason}: {message}", refused_as, FIXES[reason])]
    envelope = parse(value)[0] if value is not None and reason == NOT_AN_EVENT else None
    if not (isinstance(envelope, dict) and isinstance(envelope.get("payload"), dict)):
        return problems
    payload = envelope["payload"]
    fields = {f["field"]: f for f in CONTRACT["fields"]}
    missing = [f for name, f in fields.items() if name not in payload]
    for f in missing:
        problems.append(Problem(
            GATE, ("payload",), f'no "{f["field"]}", a field of the contract',
            "the gate refuses an OrderPlaced without it",
            f'add "{f["field"]}" ({KIND_NAMES.get(f.get("name", f["type"]))}); with every field of the contract '
            "in the payload, --fix writes the contract's schema"))
    if envelope.get("schema") != CONTRACT and all(f["optional"] for f in missing):
        ours = {"schema": CONTRACT, "payload": {k: v for k, v in payload.items() if k in fields}}
        try:
            read_event(dumps(ours).encode())
        except Refused as e:
            if str(e) != message:
                problems.append(Problem(GATE, ("payload",), f"with the contract's schema: {e.reason}: {e}",
                                        "the gate refuses it still", FIXES[e.reason]))
    return problems


def fix_envelope(envelope: bytes, keys: tuple[str, ...]) -> tuple[Any, list[Problem]]:
    """(the envelope with every unambiguous fix, the JsonConverter-level problems left without one);
    (None, its problems) when it is no JSON object. A payload whose keys are exactly the
    contract's fields gets the contract's own schema first."""
    value = parse(envelope)[0]
    if not isinstance(value, dict):
        return fix(envelope, keys)
    payload = value.get("payload")
    if isinstance(payload, dict) and set(payload) == {f["field"] for f in CONTRACT["fields"]}:
        value["schema"] = connect_schema(OrderPlaced)
        envelope = dumps(value).encode()
    fixed, left = fix(envelope, keys)
    return (value if fixed is None else fixed), left


# ------------------------------------------------------------------ command line

class InputError(Exception):
    """The envelope or the connector could not be read."""


def _position(text: str) -> tuple[int, int]:
    """argparse type of --offset: "P:O" with two non-negative integers."""
    partition, _, offset = text.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not PARTITION:OFFSET, e.g. 0:42")
    return int(partition), int(offset)


def _table(text: str) -> str:
    """argparse type of --table: a plain SQL identifier."""
    if not sql.IDENTIFIER.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain SQL identifier")
    return text


def read_record(client: dict, topic: str, partition: int, offset: int, timeout: float = 20.0) -> bytes | None:
    """The value of one record (None: a tombstone); `client`: Settings.kafka_client()."""
    try:
        for m in read_range(client, topic, {partition: offset}, {partition: offset + 1}, timeout):
            return m.value()
    except (NoSuchTopic, NoSuchPartition, ReadTimeout) as e:
        raise InputError(f"{e} at {client['bootstrap.servers']}") from None
    raise InputError(f"no record at {topic}[{partition}]@{offset}: past the end of the partition, before its "
                     "start, or no record there (a transaction marker)")


@exits_on_bad_setting
def main(argv=None, database: Database | None = None, read=None) -> int:
    """The command line; `database` stands in for the real one of the settings, `read` for
    read_record (tests)."""
    read = read or read_record
    parser = argparse.ArgumentParser(
        prog="python -m ops.doctor",
        description="Say whether the system takes a Connect JSON envelope on the orders topic (the gate's verdict "
                    "with the real database, and the orders table's columns), and how to fix what stops it.",
        epilog="Exit codes: 0 accepted (or a duplicate: nothing changes), 1 refused, a table problem or MariaDB "
               "not reachable, 2 usage or unreadable input.")
    parser.add_argument("file", nargs="?", metavar="FILE", help='the envelope; "-" for stdin')
    parser.add_argument("--topic", help="read the envelope from this topic instead (with --offset)")
    parser.add_argument("--offset", type=_position, metavar="P:O", help="the record at partition P, offset O")
    parser.add_argument("--bootstrap", help="Kafka bootstrap address (default: KAFKA_BOOTSTRAP of the settings)")
    parser.add_argument("--table", type=_table, help="the orders table to check the row against "
                                                     "(default: ORDERS_TABLE of the settings, in ORDERS_DB)")
    parser.add_argument("--offline", action="store_true",
                        help="ask no database: check only decoding and the event rules")
    parser.add_argument("--connector", default=str(DEFAULT_CONNECTOR),
                        help="sink connector JSON whose upsert key to check (default: connect/orders-sink.json)")
    parser.add_argument("--fix", action="store_true",
                        help="print the envelope with every unambiguous fix; exit 0 only if the gate then takes it")
    args = parser.parse_args(argv)
    if (args.file is None) == (args.topic is None):
        parser.error("give FILE, - (stdin) or --topic T --offset P:O")
    if (args.topic is None) != (args.offset is None):
        parser.error("--topic and --offset go together")
    if args.bootstrap and not args.topic:
        parser.error("--bootstrap only applies with --topic")

    settings = Settings.from_env()
    try:
        try:
            with open(args.connector, encoding="utf-8") as f:
                connector = json.load(f)
            if not isinstance(connector, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the connector {args.connector}: {e}") from None
        keys = key_fields(connector)
        origin = FILE_ORIGIN
        if args.topic:
            client = settings.kafka_client(**({"bootstrap.servers": args.bootstrap} if args.bootstrap else {}))
            origin = (args.topic, *args.offset)
            try:
                envelope = read(client, args.topic, *args.offset)
            except KafkaException as e:
                raise InputError(f"cannot read {args.topic}: {explain(e, settings)}") from None
        elif args.file == "-":
            envelope = sys.stdin.buffer.read()
        else:
            try:
                with open(args.file, "rb") as given:
                    envelope = given.read()
            except OSError as e:
                raise InputError(f"cannot read {args.file}: {e}") from None
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.offline and database is None:
        database = mariadb(settings)

    def truth(value: bytes | None) -> tuple[list[str], int]:
        """The lines of the gate's and the table's problems and the verdict; the exit code."""
        try:
            problems, verdict, code = judge(value, None if args.offline else database, settings, args.table, origin)
            unreachable = []
        except sa.exc.DBAPIError as e:
            unreachable = [f"database  cannot ask MariaDB at {settings.mariadb_host}:{settings.mariadb_port} within "
                           f"{DB_TIMEOUT} s ({e.orig}): start it with `make stack-up`, or give --offline"]
            problems, verdict, code = judge(value, None, settings, args.table, origin)
            code = code or 1
        return [*unreachable, *(p.line() for p in problems), verdict], code

    if not args.fix:
        lines, code = truth(envelope)
        for line in [*(p.line() for p in diagnose(envelope, keys)), *lines]:
            print(line)
        return code
    if envelope is None:
        print("cannot fix a tombstone: there is no envelope", file=sys.stderr)
        return 1
    fixed, left = fix_envelope(envelope, keys)
    if fixed is not None:
        print(dumps(fixed, indent=2))
        envelope = dumps(fixed).encode()
    lines, code = truth(envelope)
    for line in [*(f"no unambiguous fix: {p.line()}" for p in left if code), *lines]:
        print(line, file=sys.stderr)
    return code

if __name__ == "__main__":
    sys.exit(main())
