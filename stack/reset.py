"""`make reset` (python -m stack reset): the demo's data emptied on the running stack of STACK_DIR.

Emptied: the records of the orders topic, of what the gate accepted and refused and of the two
dead-letter topics (Kafka's DeleteRecords up to each partition's end: the topics, their settings
and the consumer groups' offsets stay, and every consumer reads on from the new start); the rows
of the orders table, the gate's first events and the Catalog's applied orders; and the seed
products are back at their seed stock and price (other products are left as they are), in one
MariaDB transaction. Kept: the topics, the tables, the connector, the accounts and all that
`make setup` fetched (.stack/kafka, .stack/plugins, .stack/bin, .venv, gen).

Nothing may write the tables meanwhile, or an order could be half emptied (in the stock, not in
the table): the sink connector is stopped through Connect's REST API (its tasks commit and end,
its configuration stays) and resumed afterwards, and the gates and the Catalogs that run are
stopped and started again, each with the environment it ran with, health-gated. The Order
instances keep running: an order placed during the reset is emptied with the rest, or goes
through the pipeline once the gate and the Catalog are back, like any other.
"""

import dataclasses
import time
from pathlib import Path

import sqlalchemy as sa
from confluent_kafka import OFFSET_END, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy.dialects import mysql

from catalog_svc import stock
from connect import register, rest
from ordersync.config import Settings
from ordersync.gate import first_events
from stack.process import Part, StackError, say
from stack.topology import Topology


def data_topics(settings: Settings) -> list[str]:
    """The topics whose records are the demo's data."""
    return [settings.orders_topic, settings.accepted_topic, settings.rejected_topic, settings.catalog_dlq_topic,
            settings.sink_dlq_topic]


def reset(topology: Topology) -> None:
    """Empty the demo's data (see the module's docstring); raises StackError or ConnectorError."""
    settings, timeout = topology.settings, topology.settings.stack_startup_timeout
    down = [part["name"] for part in topology.status()
            if part["name"] in {p.name for p in [topology.mariadb, *topology.brokers, *topology.workers]}
            and not part["healthy"]]
    if down:
        raise StackError(f"{', '.join(down)} not running: `make stack-up` starts the stack; nothing was reset")
    say(f"reset: the demo's data of {settings.stack_dir}")
    sink_stopped = stop_sink(settings.connect_url, settings.sink_name, timeout)
    stopped = stop_writers(topology)
    try:
        for topic in empty_topics(settings, data_topics(settings), timeout):
            say(f"topic {topic}: emptied")
        for what, count in empty_tables(settings).items():
            say(f"{what}: {count}")
    finally:
        for part in stopped:
            topology.supervisor.ensure_up(part, timeout)
        if sink_stopped:
            resume_sink(settings.connect_url, settings.sink_name, timeout)
    say("reset: done")


# ---------------------------------------------------------------- what writes the tables

def stop_sink(url: str, name: str, timeout: float) -> bool:
    """Stop the connector (STOPPED: no tasks, its configuration kept); False when there is none."""
    if register.connector_status(url, name) is None:
        say(f"connector {name}: none registered")
        return False
    _connector_call(url, name, "stop", timeout)
    _wait_for(lambda: _stopped(register.connector_status(url, name)), timeout, f"connector {name} to stop")
    say(f"connector {name}: STOPPED")
    return True


def resume_sink(url: str, name: str, timeout: float) -> None:
    _connector_call(url, name, "resume", timeout)
    register.wait_running(url, name, timeout)
    say(f"connector {name}: RUNNING")


def _stopped(status: dict | None) -> bool:
    return status is not None and status["connector"]["state"] == "STOPPED" and not status["tasks"]


def _connector_call(url: str, name: str, action: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, body = rest.call(url, "PUT", f"/connectors/{rest.quote(name)}/{action}")
        if status in (200, 202, 204):
            return
        # 409: a rebalance is under way.
        if status != 409 or time.monotonic() > deadline:
            raise register.ConnectorError(f"could not {action} {name}: HTTP {status}: {body}")
        time.sleep(1)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StackError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def stop_writers(topology: Topology) -> list[Part]:
    """Stop the gates and the Catalogs that run; returns them, each as it was started (to start again)."""
    stopped = []
    for part in [*topology.gates, *topology.catalogs]:
        pid = topology.supervisor.pid(part)
        if pid is None:
            continue
        # Private stacks give each service a METRICS_PORT of its own: it starts again with the same.
        again = dataclasses.replace(part, env=process_environment(pid) or part.env)
        topology.supervisor.stop(part, grace=20)
        stopped.append(again)
    return stopped


def process_environment(pid: int) -> dict[str, str]:
    """The environment a process runs with ({} when it cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


# ---------------------------------------------------------------- the data

def empty_topics(settings: Settings, topics: list[str], timeout: float) -> list[str]:
    """Delete every record of those of `topics` that exist; returns their names."""
    admin = AdminClient(settings.kafka_client())
    try:
        existing = admin.list_topics(timeout=timeout).topics
        ends = [TopicPartition(topic, p, OFFSET_END) for topic in topics if topic in existing
                for p in existing[topic].partitions]
        if ends:
            for future in admin.delete_records(ends, request_timeout=timeout, operation_timeout=timeout).values():
                future.result()
    except KafkaException as err:
        raise StackError(f"could not empty the topics {', '.join(topics)}: {err}") from err
    return [topic for topic in topics if topic in existing]


def empty_tables(settings: Settings) -> dict[str, str]:
    """Delete the orders, the first events and the applied orders, and put the seed products back at
    their seed stock and price, in one transaction; returns what was done, for a person."""
    orders = sa.table(settings.orders_table, schema=settings.orders_db)
    applied = stock.applied_orders.to_metadata(sa.MetaData(), schema=settings.catalog_db)
    products = stock.products.to_metadata(sa.MetaData(), schema=settings.catalog_db)
    firsts = first_events.first_events.to_metadata(sa.MetaData(), schema=settings.gate_db)
    seed = mysql.insert(products).values(stock.SEED_PRODUCTS)
    engine = sa.create_engine(settings.mariadb_url())
    try:
        with engine.begin() as conn:
            done = {f"{settings.orders_db}.{settings.orders_table}": f"rows deleted: {conn.execute(orders.delete()).rowcount}",
                    f"{settings.gate_db}.first_events": f"rows deleted: {conn.execute(firsts.delete()).rowcount}",
                    f"{settings.catalog_db}.applied_orders": f"rows deleted: {conn.execute(applied.delete()).rowcount}"}
            conn.execute(seed.on_duplicate_key_update({c: seed.inserted[c] for c in ("product_name", "stock", "unit_price")}))
    except sa.exc.DBAPIError as err:
        raise StackError(f"could not empty the tables (nothing was changed in them): {err.orig}") from err
    finally:
        engine.dispose()
    done[f"{settings.catalog_db}.products"] = "seed stock " + ", ".join(
        f"{p['product_id']}={p['stock']}" for p in stock.SEED_PRODUCTS)
    return done
