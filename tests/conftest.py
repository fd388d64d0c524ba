"""The one fixture module: integration and fault tests run on a private stack of their own.

`topology` (session) starts MariaDB, Kafka, Connect, the tables, the orders-sink
connector, one Catalog and two Order instances under .stack/private/<run>/ on free
ports, so a test run never sees or changes what `make run` shows, and two runs
never share a process. It is deleted after the session (KEEP_TEST_STACK=1 keeps it).

Fixtures: topology, stack (its Settings), sink_connector (its name), orders_db,
kafka_bootstrap, producer, temp_connector (private sink copies), services, tokens (signed with
the stack's key), order_stubs and catalog_stub (each call with a token of the user its request
names: tests.support.tokens). Helpers live in tests/support/ (one module per topic), the test
doubles in tests/doubles.py.

The order of a run (pytest_collection_modifyitems below), by folder: unit/ first (no servers,
seconds), then integration/, then conformance/, then faults/ last, so that no kill -9 of the
fault tests runs before an integration test on the stack the whole run shares. Within a folder
the order stays pytest's. cluster/ has a private cluster of its own (tests/cluster/conftest.py)
and runs apart (`make test-cluster`; `make test` leaves it out); named with the others, it runs
after them.
"""
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from connect import register
from ordersync.catalog.v1 import catalog_service_pb2_grpc
from ordersync.order.v1 import order_service_pb2_grpc
from stack.topology import Topology
from tests.support.kafka import Producer
from tests.support.session import session_topology
from tests.support.sinks import create_private_sink, remove_private_sink
from tests.support.tokens import Tokens

# Folders in the order they run; a folder not named here runs before faults/.
RUN_ORDER = ("unit", "integration", "conformance", "", "faults", "cluster")
TESTS = Path(__file__).parent


def run_rank(item: pytest.Item) -> int:
    """Where an item's folder (the first below tests/) comes in RUN_ORDER."""
    parts = item.path.relative_to(TESTS).parts
    folder = parts[0] if len(parts) > 1 else ""
    return RUN_ORDER.index(folder) if folder in RUN_ORDER else RUN_ORDER.index("")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=run_rank)  # stable: within a folder, pytest's order


@pytest.fixture(scope="session")
def topology():
    yield from session_topology(Topology.private(orders=2, catalogs=1), "stack")


@pytest.fixture(scope="session")
def stack(topology):
    """The Settings of the private stack."""
    return topology.settings


@pytest.fixture(scope="session")
def sink_connector(stack) -> str:
    """The private stack's orders-sink connector (RUNNING); its name."""
    return stack.sink_name


@pytest.fixture(scope="session")
def orders_db(stack) -> sa.Engine:
    engine = sa.create_engine(stack.mariadb_url(stack.orders_db), pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def kafka_bootstrap(stack) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def producer(kafka_bootstrap) -> Producer:
    p = Producer(kafka_bootstrap)
    yield p
    p.close()


@pytest.fixture
def temp_connector(stack, orders_db):
    """Factory: make(overrides=None, base=orders-sink.json) -> the config of a private sink copy
    (own name, topic, table, DLQ; its table created by the sink), removed after the test."""
    made = []

    def make(overrides: dict | None = None, base: str | Path = register.DEFAULT_CONFIG) -> dict:
        made.append(create_private_sink(stack, overrides, base))
        return made[-1]

    yield make
    for config in made:
        remove_private_sink(stack, config)


@pytest.fixture(scope="session")
def services(topology):
    """The private stack's Catalog and Order instances, with what tests need to know of them."""
    s = topology.settings
    engine = sa.create_engine(s.mariadb_url(s.catalog_db), pool_pre_ping=True)
    yield SimpleNamespace(catalog=topology.catalogs[0], orders=topology.orders, catalog_db=s.catalog_db,
                          consumer_group=s.catalog_group, orders_topic=s.orders_topic,
                          accepted_topic=s.accepted_topic, catalog_dlq_topic=s.catalog_dlq_topic,
                          gate_group=s.gate_group,
                          orders_table=s.orders_table, catalog_engine=engine)
    engine.dispose()


@pytest.fixture(scope="session")
def tokens(stack) -> Tokens:
    return Tokens(stack)


@pytest.fixture(scope="session")
def order_stubs(services, tokens):
    channels = [tokens.channel(svc.address) for svc in services.orders]
    yield [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
    for c in channels:
        c.close()


@pytest.fixture(scope="session")
def catalog_stub(services, tokens):
    with tokens.channel(services.catalog.address) as channel:
        yield catalog_service_pb2_grpc.CatalogServiceStub(channel)
