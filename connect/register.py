"""Registers (or updates) a connector from a JSON file and waits until it runs.

    python -m connect.register --wait [--config connect/orders-sink.json] [--timeout 120]

The JSON file is data in Kafka Connect's own format ({"name": ..., "config": {...}}).
Its strings may use ${NAME} for any variable of ordersync.config (ORDERS_TOPIC,
ORDERS_DB, ORDERS_TABLE, SINK_NAME, MARIADB_HOST, ...), ${ACCEPTED_TOPIC} and ${SINK_DLQ_TOPIC}; keys
that start with "_" are comments and are not sent.
"""
import argparse
import json
import sys
import time
from pathlib import Path
from string import Template

from bus import topics
from connect import rest
from ordersync.config import PRODUCTS_TOPIC as PRODUCTS_TOPIC  # re-exported: what products-source.json writes
from ordersync.config import Settings, exits_on_bad_setting

DEFAULT_CONFIG = Path(__file__).resolve().parent / "orders-sink.json"
PRODUCTS_SOURCE = Path(__file__).resolve().parent / "products-source.json"
TOPIC_PARTITIONS = 3  # like the broker's num.partitions; dead-letter topics get 1


class ConnectorError(Exception):
    """The connector could not be registered, failed, or did not start in time."""


def placeholders(settings: Settings) -> dict:
    """The values a connector JSON file may reference as ${NAME}. With SECRETS_FILE, the password
    is a reference the worker resolves (FileConfigProvider): GET /connectors/... never shows it."""
    values = {**settings.to_env(), "SINK_DLQ_TOPIC": settings.sink_dlq_topic,
              "ACCEPTED_TOPIC": settings.accepted_topic}
    if settings.secrets_file:
        values["MARIADB_PASSWORD"] = settings.secret_reference(f"mariadb.{settings.mariadb_user}")
    if settings.kafka_security_protocol.startswith("SASL_"):
        values["KAFKA_JAAS_CONFIG"] = settings.kafka_jaas_reference()
    return values


def load(config: dict | str | Path, settings: Settings) -> tuple[str, dict]:
    """(name, config) from a JSON file or a dict, with ${...} placeholders filled in. On a secured
    stack, the document's "config.secured" (the connector's own Kafka clients' login, which the
    worker's settings do not reach) is added to its config."""
    document: dict = config if isinstance(config, dict) else json.loads(Path(config).read_text())
    body = document.get("config", document)
    if settings.secured and "config.secured" in document:
        body = {**body, **document["config.secured"]}
    values = placeholders(settings)
    try:
        name = Template(document.get("name") or body.get("name") or "").substitute(values)
        filled = {key: Template(value).substitute(values) if isinstance(value, str) else str(value)
                  for key, value in body.items() if not key.startswith("_")}
    except KeyError as err:
        raise ConnectorError(f"connector config uses ${{{err.args[0]}}}, which is no setting") from None
    if not name:
        raise ConnectorError("connector config has no name")
    filled["name"] = name
    return name, filled


def ensure_topics(config: dict, settings: Settings, timeout: float = 30) -> None:
    """Create the connector's topics and its dead-letter topic if they are missing."""
    wanted = {t.strip(): TOPIC_PARTITIONS for t in config.get("topics", "").split(",") if t.strip()}
    dlq = config.get("errors.deadletterqueue.topic.name")
    if dlq:
        wanted[dlq] = 1
    try:
        topics.create_missing(settings.kafka_client(), wanted, timeout)
    except topics.TopicError as err:
        raise ConnectorError(str(err)) from err


def connector_status(url: str, name: str) -> dict | None:
    """The worker's status document for a connector, or None if it does not exist."""
    status, body = rest.call(url, "GET", f"/connectors/{rest.quote(name)}/status")
    if status == 404:
        return None
    if status != 200:
        raise ConnectorError(f"status of {name}: HTTP {status}: {body}")
    return body


def _put_config(url: str, name: str, config: dict, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = rest.call(url, "PUT", f"/connectors/{rest.quote(name)}/config", config)
        except OSError as err:  # worker not reachable
            status, body = None, str(err)
        if status in (200, 201):
            return
        # 409: a rebalance is under way; 503/None: the worker is still starting.
        if status not in (409, 503, None) or time.monotonic() > deadline:
            raise ConnectorError(f"could not register {name}: HTTP {status}: {body}")
        time.sleep(1)


def _causes(trace: str) -> str:
    """The first line of a Java trace and its 'Caused by' lines: usually the real reason."""
    lines = trace.splitlines()
    causes = [line.strip() for line in lines[1:] if line.startswith("Caused by:")]
    return "\n  ".join(lines[:1] + causes)


def _raise_if_failed(name: str, status: dict) -> None:
    """ConnectorError with the trace if the connector or a task of its status document FAILED."""
    failed = [t for t in [status["connector"], *status["tasks"]] if t["state"] == "FAILED"]
    if failed:
        traces = "\n".join(t.get("trace", "(no trace)") for t in failed)
        raise ConnectorError(f"connector {name} FAILED: {_causes(traces)}\n--- trace ---\n{traces}")


def wait_running(url: str, name: str, timeout: float = 120) -> dict:
    """Wait until the connector and all its tasks are RUNNING; returns the status.

    Raises ConnectorError at once if the connector or a task FAILED (with its
    trace), or when the timeout passes.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = connector_status(url, name)
        if last:
            _raise_if_failed(name, last)
            if (last["connector"]["state"] == "RUNNING" and last["tasks"]
                    and all(t["state"] == "RUNNING" for t in last["tasks"])):
                return last
        time.sleep(0.5)
    raise ConnectorError(f"connector {name} not RUNNING after {timeout:.0f}s; last status: {last}")


def source_offsets(url: str, name: str) -> list[dict]:
    """A source connector's committed offsets ([{"partition": ..., "offset": ...}]; GET
    /connectors/<name>/offsets, Kafka 3.6+): what it would resume from after a restart."""
    status, body = rest.call(url, "GET", f"/connectors/{rest.quote(name)}/offsets")
    if status != 200:
        raise ConnectorError(f"offsets of {name}: HTTP {status}: {body}")
    return body.get("offsets", [])


def snapshot_completed(offsets: list[dict]) -> bool:
    """Whether a Debezium source's committed offsets say its initial snapshot is done: there is
    one, and it carries no snapshot marker (while the snapshot runs, Debezium's offset holds
    "snapshot" and "snapshot_completed": false; afterwards only the binlog position). Nothing
    committed means nothing captured yet: the worker commits a source's offsets only for records
    the broker acknowledged (every offset.flush.interval.ms)."""
    def done(offset: dict) -> bool:
        return (offset.get("snapshot") in (None, False, "false")
                and offset.get("snapshot_completed") in (None, True, "true"))
    return bool(offsets) and all(done(o.get("offset") or {}) for o in offsets)


def wait_snapshot_done(url: str, name: str, timeout: float = 120) -> list[dict]:
    """Wait until a Debezium source connector's initial snapshot is committed (snapshot_completed);
    returns its offsets. RUNNING is not enough: a source whose account cannot read its table
    runs, snapshots nothing, commits nothing and captures no change. Raises ConnectorError at once
    if it FAILED, and when the timeout passes, with its last offsets."""
    deadline = time.monotonic() + timeout
    offsets: list[dict] = []
    while time.monotonic() < deadline:
        status = connector_status(url, name)
        if status is None:
            raise ConnectorError(f"connector {name} does not exist")
        _raise_if_failed(name, status)
        offsets = source_offsets(url, name)
        if snapshot_completed(offsets):
            return offsets
        time.sleep(1)
    raise ConnectorError(f"connector {name} has no completed snapshot after {timeout:.0f}s (committed offsets: "
                         f"{offsets or 'none'}): it runs but has captured nothing")


def register(config: dict | str | Path, settings: Settings, wait: bool = True,
             timeout: float = 120) -> str:
    """Create or update a connector (idempotent PUT); returns its name."""
    name, body = load(config, settings)
    ensure_topics(body, settings)
    _put_config(settings.connect_url, name, body, timeout)
    if wait:
        wait_running(settings.connect_url, name, timeout)
    return name


def delete(url: str, name: str) -> bool:
    """Delete a connector; False if it did not exist."""
    status, body = rest.call(url, "DELETE", f"/connectors/{rest.quote(name)}")
    if status == 404:
        return False
    if status not in (200, 204):
        raise ConnectorError(f"could not delete {name}: HTTP {status}: {body}")
    return True


@exits_on_bad_setting
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m connect.register", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="connector JSON file")
    parser.add_argument("--wait", action="store_true", help="wait until it and its tasks run")
    parser.add_argument("--timeout", type=float, default=120, help="seconds (default 120)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        name = register(args.config, settings, wait=args.wait, timeout=args.timeout)
    except (ConnectorError, OSError) as err:
        print(f"register failed: {err}", file=sys.stderr)
        return 1
    print(f"connector {name}: {'RUNNING' if args.wait else 'registered'} on {settings.connect_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
