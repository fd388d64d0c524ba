"""Heals the JDBC sink where Connect's own settings cannot: one refused record must not stop it.

    python -m connect.watchdog          (the stack starts it next to the worker)

Debezium's JDBC sink 3.5 fails its task when the database refuses one record of
a batch (too long, out of range, a CHECK or foreign key, a null schema), and
`errors.tolerance` covers only converters and transforms. Debezium's own fix
("unroll and retry", reporting through the errant record reporter) is in no
release that Maven Central serves here, so this does the same from outside:

1. Every few seconds it reads the status of each sink connector on the worker.
2. For a FAILED task it reads, per partition, the records after the committed
   offsets and writes them one by one, in order, as the sink would (upsert on
   the primary key), each in a savepoint of one transaction.
3. The first record the database refuses is the poison: the records before it
   are committed, the poison goes to the connector's dead-letter topic with
   Connect's context headers and the reason, the connector's offset is moved
   just past it (stop, PATCH offsets, resume), and the sink goes on.
4. When no record is refused, the failure passed (the database was down, a
   lock timed out): the task is restarted, with a growing pause while it keeps
   failing. Transient failures are never dead-lettered.
"""

import base64
import json
import logging
import sys
import time
from datetime import datetime, timezone
from urllib.parse import urlparse

import pymysql
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from connect import rest
from svc_runtime.settings import Settings

log = logging.getLogger("connect.watchdog")

CHECK_EVERY_S = 3
MAX_PROBE = 5_000  # records read per partition when looking for the poison
MAX_DEAD_LETTER_BYTES = 512 * 1024  # below the broker's default message.max.bytes, with room for headers
TRUNCATED_BYTES = 64 * 1024
# MariaDB errors that pass with time: no connection, lost connection, lock wait, deadlock, too many connections.
TRANSIENT_DB_ERRORS = {1040, 1205, 1213, 2002, 2003, 2006, 2013}
TIMESTAMP = "org.apache.kafka.connect.data.Timestamp"
DECIMAL = "org.apache.kafka.connect.data.Decimal"


class Poison(Exception):
    """A record that the database (or the sink) can never accept."""


class Transient(Exception):
    """A failure that passes with time: retry later."""


# ------------------------------------------------------------------ records -> rows

def record_row(value: bytes | None) -> dict | None:
    """The column values the sink would write for one Connect JSON record (flat structs only),
    or None for a tombstone, which the sink skips (delete.enabled=false)."""
    if value is None:
        return None
    try:
        envelope = json.loads(value)
    except (ValueError, RecursionError) as e:
        raise Poison(f"not JSON: {str(e)[:200]}") from None
    schema = envelope.get("schema") if isinstance(envelope, dict) else None
    payload = envelope.get("payload") if isinstance(envelope, dict) else None
    if not isinstance(schema, dict) or schema.get("type") != "struct" or not isinstance(payload, dict):
        raise Poison("the record is no Connect struct with a schema: the JDBC sink needs one")
    row = {}
    for field in schema.get("fields") or []:
        name = field.get("field")
        row[name] = _column_value(field, payload.get(name))
    return row


def _column_value(field: dict, v):
    if v is None:
        return None
    name, kind = field.get("name"), field.get("type")
    try:
        if name == TIMESTAMP:
            return datetime.fromtimestamp(int(v) / 1000, tz=timezone.utc).replace(tzinfo=None)
        if name == DECIMAL:
            return v if isinstance(v, int) else int.from_bytes(base64.b64decode(v), "big", signed=True)
        if kind == "bytes":
            return base64.b64decode(v)
        if kind in ("int8", "int16", "int32", "int64"):
            # JsonConverter reads a non-number as 0 (Jackson's intValue()), so the sink writes 0.
            return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0
    except (ValueError, OverflowError, OSError, TypeError) as e:
        raise Poison(f"{field.get('field')}: {v!r} cannot be written: {e}") from None
    return v


# ------------------------------------------------------------------ the probe

def _db_code(error: pymysql.MySQLError) -> int | None:
    return error.args[0] if error.args and isinstance(error.args[0], int) else None


def _upsert(cur, table: str, row: dict, key_fields: list[str]) -> None:
    cols = list(row)
    updates = ", ".join(f"`{c}` = VALUES(`{c}`)" for c in cols if c not in key_fields) or \
        f"`{cols[0]}` = `{cols[0]}`"
    cur.execute(f"INSERT INTO `{table}` ({', '.join(f'`{c}`' for c in cols)}) "
                f"VALUES ({', '.join(['%s'] * len(cols))}) ON DUPLICATE KEY UPDATE {updates}",
                [row[c] for c in cols])


def write_until_poison(conn, table: str, key_fields: list[str], records: list) -> tuple | None:
    """Write records in order; commit those before the first refused one and return
    (that record, the reason), or None (all written). Raises Transient."""
    with conn.cursor() as cur:
        cur.execute(f"SHOW COLUMNS FROM `{table}`")
        columns = {r[0] for r in cur.fetchall()}
        for record in records:
            try:
                row = record_row(record.value())
            except Poison as e:
                conn.commit()
                return record, str(e)
            if row is None:
                continue
            missing = [c for c in row if c not in columns]
            if missing:
                # Schema evolution is the sink's job: let it write from this record on.
                conn.commit()
                raise Transient(f"{table} lacks columns {missing}: the sink adds them")
            cur.execute("SAVEPOINT probe")
            try:
                _upsert(cur, table, row, key_fields)
            except pymysql.MySQLError as e:
                if _db_code(e) in TRANSIENT_DB_ERRORS or isinstance(e, pymysql.InterfaceError):
                    raise Transient(f"database: {e}") from None
                cur.execute("ROLLBACK TO SAVEPOINT probe")
                conn.commit()
                return record, f"{type(e).__name__}: {e}"
    conn.commit()
    return None


# ------------------------------------------------------------------ the loop

class Watchdog:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = settings.connect_url
        self._pause: dict[str, float] = {}  # connector -> seconds to wait before the next restart
        self._next_try: dict[str, float] = {}
        self._dlq = Producer(settings.kafka_client(**{"acks": "all", "enable.idempotence": True}))

    def check_all(self) -> None:
        status, names = self._ask_a_worker("/connectors?expand=status&expand=info")
        if status != 200:
            return
        for name, info in names.items():
            config = info["info"]["config"]
            if not config.get("connector.class", "").endswith("JdbcSinkConnector"):
                continue
            failed = [t for t in info["status"]["tasks"] if t["state"] == "FAILED"]
            if failed and time.monotonic() >= self._next_try.get(name, 0):
                self.heal(name, config, failed)

    def _ask_a_worker(self, path: str):
        """GET from the first worker that answers (any worker of the group forwards or answers),
        and keep talking to that one."""
        error = OSError("no Connect worker to ask")
        for url in dict.fromkeys([self.url, *self.settings.connect_urls]):
            try:
                answer = rest.call(url, "GET", path)
            except OSError as e:
                error = e
                continue
            self.url = url
            return answer
        raise error

    def heal(self, name: str, config: dict, failed: list) -> None:
        trace = (failed[0].get("trace") or "").splitlines()[:1]
        log.warning("sink %s: task %s FAILED (%s); looking for a refused record", name,
                    ",".join(str(t["id"]) for t in failed), trace[0] if trace else "no trace")
        try:
            poison = self.find_and_skip_poison(name, config)
        except Transient as e:
            poison = None
            log.warning("sink %s: the failure is transient (%s)", name, e)
        if poison is None:
            pause = self._pause.get(name, 2)
            for task in failed:
                rest.call(self.url, "POST", f"/connectors/{rest.quote(name)}/tasks/{task['id']}/restart")
            log.warning("sink %s: restarted the failed task; next try in %.0f s if it fails again", name, pause)
            self._next_try[name] = time.monotonic() + pause
            self._pause[name] = min(pause * 2, 30)
        else:
            self._pause.pop(name, None)
            self._next_try.pop(name, None)

    def find_and_skip_poison(self, name: str, config: dict):
        _, offsets = rest.call(self.url, "GET", f"/connectors/{rest.quote(name)}/offsets")
        committed = {(o["partition"]["kafka_topic"], o["partition"]["kafka_partition"]): o["offset"]["kafka_offset"]
                     for o in (offsets or {}).get("offsets", [])}
        table_format = config.get("collection.name.format", "${topic}")
        key_fields = [f.strip() for f in config.get("primary.key.fields", "").split(",") if f.strip()]
        database = urlparse(config["connection.url"].removeprefix("jdbc:")).path.lstrip("/").split("?")[0]
        try:
            conn = pymysql.connect(host=self.settings.mariadb_host, port=self.settings.mariadb_port,
                                   user=self.settings.mariadb_user, password=self.settings.db_password,
                                   database=database, connect_timeout=3, autocommit=False)
        except pymysql.MySQLError as e:
            raise Transient(f"database: {e}") from None
        try:
            for topic in [t.strip() for t in config.get("topics", "").split(",") if t.strip()]:
                table = table_format.replace("${topic}", topic)
                for partition, start in self._partitions(topic, committed):
                    records = self._read(topic, partition, start)
                    found = write_until_poison(conn, table, key_fields, records)
                    if found:
                        record, reason = found
                        self._dead_letter(name, config, record, reason)
                        self._move_offset(name, topic, partition, record.offset() + 1)
                        return record
        finally:
            conn.close()
        return None

    def _partitions(self, topic: str, committed: dict) -> list[tuple[int, int]]:
        c = Consumer(self.settings.kafka_client(**{"group.id": "watchdog-probe"}))
        try:
            partitions = c.list_topics(topic, timeout=10).topics[topic].partitions
            out = []
            for p in sorted(partitions):
                low, _ = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                out.append((p, committed.get((topic, p), low)))
            return out
        finally:
            c.close()

    def _read(self, topic: str, partition: int, start: int) -> list:
        c = Consumer(self.settings.kafka_client(**{"group.id": "watchdog-probe", "enable.auto.commit": False}))
        try:
            _, end = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            end = min(end, start + MAX_PROBE)
            if start >= end:
                return []
            c.assign([TopicPartition(topic, partition, start)])
            records, deadline = [], time.monotonic() + 30
            while time.monotonic() < deadline:
                m = c.poll(1)
                if m is None or m.error():
                    continue
                records.append(m)
                if (m.offset() or 0) >= end - 1:
                    break
            return records
        finally:
            c.close()

    def _dead_letter(self, name: str, config: dict, record, reason: str) -> None:
        topic = config.get("errors.deadletterqueue.topic.name")
        if not topic:
            raise Transient(f"sink {name} has no dead-letter topic: cannot set the record aside")
        headers = list(record.headers() or []) + [
            ("__connect.errors.topic", record.topic()),
            ("__connect.errors.partition", str(record.partition())),
            ("__connect.errors.offset", str(record.offset())),
            ("__connect.errors.connector.name", name),
            ("__connect.errors.stage", "TASK_PUT"),
            ("__connect.errors.exception.class.name", "ordersync.connect.watchdog.RefusedRecord"),
            ("__connect.errors.exception.message", reason[:2000]),
        ]
        value = record.value()
        if value is not None and len(value) > MAX_DEAD_LETTER_BYTES:
            # Too big for the topic (as it was for Connect's own dead-letter write): keep the head.
            headers += [("dlq.truncated", "true"), ("dlq.original.size", str(len(value)))]
            value = value[:TRUNCATED_BYTES]
        outcome = []
        try:
            self._dlq.produce(topic, key=record.key(), value=value, headers=headers,
                              on_delivery=lambda err, msg: outcome.append(err))
        except KafkaException as e:
            raise Transient(f"could not write to {topic}: {e}") from None
        self._dlq.flush(30)
        if not outcome or outcome[0] is not None:
            raise Transient(f"could not write to {topic}: {outcome[0] if outcome else 'timeout'}")
        log.error("sink %s: %s[%d]@%d key=%s refused by the database, moved to %s: %s", name,
                  record.topic(), record.partition(), record.offset(),
                  (record.key() or b"").decode(errors="replace"), topic, reason)

    def _move_offset(self, name: str, topic: str, partition: int, offset: int) -> None:
        quoted = rest.quote(name)
        rest.call(self.url, "PUT", f"/connectors/{quoted}/stop")
        body = {"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": partition},
                             "offset": {"kafka_offset": offset}}]}
        deadline = time.monotonic() + 60
        while True:  # the group must be empty first: retry while the tasks stop
            status, answer = rest.call(self.url, "PATCH", f"/connectors/{quoted}/offsets", body)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(1)
        rest.call(self.url, "PUT", f"/connectors/{quoted}/resume")
        if status != 200:
            raise Transient(f"could not move the offset of {name}: HTTP {status} {answer}")
        log.warning("sink %s: resumed after %s[%d]@%d", name, topic, partition, offset - 1)


def main() -> int:
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sink-watchdog %(levelname)s %(message)s")
    heartbeat = settings.stack_dir / "run" / "sink-watchdog.alive"
    watchdog = Watchdog(settings)
    log.info("watching the sink connectors of %s", settings.connect_url)
    while True:
        try:
            watchdog.check_all()
        except OSError as e:  # the worker is down or restarting: it will come back
            log.debug("worker not reachable: %s", e)
        except Exception:  # never die: a watchdog that stops watching heals nothing
            log.exception("check failed; trying again")
        heartbeat.touch()
        time.sleep(CHECK_EVERY_S)


if __name__ == "__main__":
    sys.exit(main())
