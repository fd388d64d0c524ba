"""The cluster tests' one fixture: a private secured cluster, like `make cluster-up` but on free
ports under .stack/private/<run>: three KRaft brokers (RF 3, min ISR 2), two Connect workers,
two gates and two Catalogs, each pair in one group, two Order instances, SASL/SCRAM with ACLs and
one MariaDB account per part, gRPC over TLS, and every part on a loopback address of its own
(127.0.11.1 the first broker, 127.0.14.2 the second Catalog, ...: stack.topology.loopback_hosts),
so that anything that still assumes 127.0.0.1 fails. Deleted after the session (KEEP_TEST_STACK=1 keeps it).
"""

import pytest

from stack.topology import Topology
from tests.support.session import session_topology

CLUSTER = {"orders": 2, "catalogs": 2, "gate_instances": 2, "secured": True, "own_hosts": True, "kafka_brokers": 3,
           "connect_workers": 2, "sink_tasks": 3,
           "kafka_heap_opts": "-Xms128m -Xmx384m", "connect_heap_opts": "-Xms128m -Xmx512m"}


@pytest.fixture(scope="session")
def cluster():
    yield from session_topology(Topology.private(**CLUSTER), "cluster")
