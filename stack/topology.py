"""One topology builder for the demo, the tests and the benches: a stack, its connector, N Orders, M Catalogs.

    topo = Topology(settings, orders=2, catalogs=1)
    topo.up()            # infrastructure, schema, connector, services; each health-gated
    topo.down()          # services, then infrastructure

`Topology.private()` makes a private stack (own data dir and free ports), so a
test run or a bench never touches what `make run` shows.

The settings say how big it is: KAFKA_BROKERS brokers (with as many KRaft
controllers), CONNECT_WORKERS workers in one group; with TLS and SASL (cluster
mode, stack/tls.py; gRPC over TLS too) every part acts as its own account (stack/accounts.py) with only the rights
that stack/acl.py and stack/config/mariadb-accounts.sql give it. In every mode the services check
callers' tokens against the stack's key pair (stack/keys.py).
"""

import contextlib
import dataclasses
import random
import shutil
import socket
import sys
import time
import uuid

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bus import topics
from connect import register
from ordersync.config import HOST, PLAINTEXT, ROOT, GrpcTls, Settings, host_of
from ordersync.serving.channels import open_channel
from stack import accounts, acl, cdc, infra, keys, schema, tls
from stack.process import Part, StackError, Supervisor, process_token, say, token_alive

PRIVATE_STACKS = ROOT / ".stack" / "private"


def pipeline_topics(settings: Settings) -> dict[str, int]:
    """Every topic of the pipeline with its partitions (the sink's dead-letter topic is made when
    the connector is registered), made before anything runs."""
    partitions = register.TOPIC_PARTITIONS
    return {settings.orders_topic: partitions, settings.accepted_topic: partitions,
            settings.rejected_topic: 1, settings.catalog_dlq_topic: 1}


def free_port(taken: set[int] | None = None) -> int:
    """A port free now and not in `taken` (the ports already chosen for a stack that has not
    bound them yet); it is added there."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if taken is None or port not in taken:
            break
    if taken is not None:
        taken.add(port)
    return port


def grpc_serving(address: str, tls: GrpcTls = PLAINTEXT, timeout: float = 1.0) -> bool:
    """Whether a gRPC server answers its overall health check with SERVING (public: no token)."""
    with open_channel(address, tls=tls) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


# The variable each service reads its own port from, and the account it acts as.
PORT_VARS = {"catalog_svc": "CATALOG_PORT", "order_svc": "ORDER_PORT", "ordersync.gate": "GATE_PORT"}
ACCOUNTS = {"catalog_svc": accounts.CATALOG, "order_svc": accounts.ORDER, "ordersync.gate": accounts.GATE}


def service_part(settings: Settings, name: str, module: str, port: int, env: dict | None = None,
                 host: str = HOST) -> Part:
    """A gRPC service process on host:port (LISTEN_HOST), healthy when its health check says
    SERVING."""
    address = f"{host}:{port}"
    port_var = PORT_VARS[module]
    account = ACCOUNTS[module]

    return Part(name, port, env_var=port_var, command=lambda: [sys.executable, "-m", module],
                healthy=lambda: grpc_serving(address, settings.grpc_tls),
                env={**accounts.env_for(settings, account), **(env or {}), port_var: str(port), "LISTEN_HOST": host},
                cwd=ROOT, host=host)


def loopback_hosts(brokers: int, workers: int, gates: int, catalogs: int, orders: int) -> dict:
    """Settings that put every part on an address of its own: 127.0.K.N for the N-th of kind K
    (MariaDB 10, brokers 11, workers 12, gates 13, Catalogs 14, Orders 15, Zipkin 16, Prometheus 17). The whole 127.0.0.0/8
    is this machine's loopback, so nothing needs setting up; a part that is still looked for on
    127.0.0.1 is not found there."""
    def run(kind: int, count: int) -> tuple[str, ...]:
        return tuple(f"127.0.{kind}.{n}" for n in range(1, count + 1))
    return {"mariadb_host": "127.0.10.1", "kafka_hosts": run(11, brokers), "connect_hosts": run(12, workers),
            "gate_hosts": run(13, gates), "catalog_hosts": run(14, catalogs), "order_hosts": run(15, max(orders, 1)),
            "zipkin_host": "127.0.16.1", "prometheus_host": "127.0.17.1"}


def free_port_run(count: int, taken: set[int] | None = None) -> int:
    """The first of `count` consecutive free ports, none in `taken` (which gets them): a
    cluster's nodes sit on consecutive ports."""
    if count == 1:
        return free_port(taken)
    for _ in range(200):
        first = random.randrange(20_000, 60_000)
        if taken is not None and taken & set(range(first, first + count)):
            continue
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + count):
                    s = held.enter_context(socket.socket())
                    s.bind((HOST, port))
        except OSError:
            continue
        if taken is not None:
            taken.update(range(first, first + count))
        return first
    raise StackError(f"no {count} consecutive free ports found")


class Topology:
    def __init__(self, settings: Settings, orders: int | None = None, catalogs: int | None = None):
        if catalogs is not None and catalogs != settings.catalog_instances:
            settings = dataclasses.replace(settings, catalog_instances=catalogs)  # the Orders ask each
        self.settings = settings
        self.supervisor = Supervisor(settings.stack_dir)
        self.mariadb = infra.mariadb(settings)
        self.brokers = infra.brokers(settings)
        self.workers = infra.workers(settings)
        self.watchdog = infra.watchdog(settings)
        self.zipkin = infra.zipkin(settings) if settings.traced else None
        self.prometheus = infra.prometheus(settings, self.scrape_targets)
        # Zipkin first: the spans of the first orders have somewhere to go.
        self.observers = [*([self.zipkin] if self.zipkin else []), self.prometheus]
        self.infra = [self.mariadb, *self.brokers, *self.workers, self.watchdog, *self.observers]
        ports = settings.order_ports[:orders] if orders is not None else settings.order_ports
        if len(ports) < (orders or 0):
            raise ValueError(f"{orders} Order instances need {orders} ORDER_PORTS, got {ports}")
        # Several Catalogs share their group as named members (catalog_svc.config._membership).
        named = settings.catalog_instances > 1
        self.catalogs = [service_part(settings, f"catalog-{i}", "catalog_svc", port,
                                      {"CATALOG_INSTANCE": f"catalog-{i}"} if named else {},
                                      host_of(settings.catalog_hosts, i - 1))
                         for i, port in enumerate(settings.catalog_ports, start=1)]
        self.orders = [service_part(settings, f"order-{i}", "order_svc", port, {"ORDER_INSTANCE": f"order-{i}"},
                                    host_of(settings.order_hosts, i - 1))
                       for i, port in enumerate(ports, start=1)]
        self.gates = [service_part(settings, f"gate-{i}", "ordersync.gate", port, {"GATE_INSTANCE": f"gate-{i}"},
                                   host_of(settings.gate_hosts, i - 1))
                      for i, port in enumerate(settings.gate_ports, start=1)]

    @classmethod
    def private(cls, orders: int = 2, catalogs: int = 1, secured: bool = False, reap: bool = True,
                grpc_tls: bool = False, own_hosts: bool = False, **changes) -> "Topology":
        """A private stack under .stack/private/<run>, on free ports, owned by this process
        (tests and benches: it never touches what `make run` shows). `secured`: SASL, one
        account per part, secrets generated into the stack dir, gRPC over TLS (what `make
        cluster-up` does). `grpc_tls`: gRPC over TLS without the rest.
        `own_hosts`: every part on a loopback address of its own (loopback_hosts), as if each
        were on a machine of its own: what still assumes 127.0.0.1 fails."""
        if reap:  # reap=False: make the topology only, stop nothing (tests of its settings)
            reap_abandoned_private_stacks()
        run = uuid.uuid4().hex[:8]
        stack_dir = PRIVATE_STACKS / run
        stack_dir.mkdir(parents=True)
        (stack_dir / "owner").write_text(process_token() + "\n")
        ca = str(tls.tls_dir(stack_dir) / "ca.pem")
        if grpc_tls:
            changes = {"grpc_tls_ca": ca, **changes}
        if secured:
            changes = {"kafka_security_protocol": "SASL_SSL", "kafka_user": accounts.KAFKA_ADMIN,
                       "secrets_file": str(accounts.secrets_path(stack_dir)), "kafka_ssl_ca": ca,
                       "grpc_tls_ca": ca, **changes}
        brokers, workers = changes.get("kafka_brokers", 1), changes.get("connect_workers", 1)
        if own_hosts:
            changes = {**loopback_hosts(brokers, workers, changes.get("gate_instances", 1), catalogs, orders), **changes}
        taken: set[int] = set()  # chosen, not yet bound: no two parts may get the same port
        settings = Settings(
            stack_dir=stack_dir, mariadb_port=free_port(taken), kafka_port=free_port_run(brokers, taken),
            kafka_controller_port=free_port_run(brokers, taken), connect_port=free_port_run(workers, taken),
            catalog_port=free_port_run(catalogs, taken), catalog_instances=catalogs,
            order_ports=tuple(free_port(taken) for _ in range(orders)),
            gate_port=free_port_run(changes.get("gate_instances", 1), taken), zipkin_port=free_port(taken),
            prometheus_port=free_port(taken), **changes)
        topology = cls(settings, orders=orders, catalogs=catalogs)
        for part in [*topology.services, topology.watchdog]:  # port + METRICS_PORT_OFFSET could be taken: a free one each
            part.env["METRICS_PORT"] = str(free_port(taken))
        return topology

    def scrape_targets(self) -> list[tuple[str, str, str]]:
        """What Prometheus scrapes: (service, part, host:port of its /metrics) of every service and the
        watchdog, from the settings and ports that place them."""
        # The services are named <kind>-<n>: order-1, catalog-1, gate-1. Each port is the one the
        # process itself serves on (METRICS_PORT in its environment, else its port + the offset; 0: none).
        kinds = [*((p.name.rsplit("-", 1)[0], p) for p in self.services), ("sink-watchdog", self.watchdog)]
        return [(kind, p.name, f"{p.host}:{port}") for kind, p in kinds
                if (port := self.settings.metrics_port(p.port, p.env))]

    @property
    def services(self) -> list[Part]:
        """In start order: the gates first (nothing reaches the sink or the Catalog without them)."""
        return [*self.gates, *self.catalogs, *self.orders]

    def part(self, name: str) -> Part:
        return next(p for p in [*self.infra, *self.services] if p.name == name)

    # ------------------------------------------------------------ lifecycle

    def infra_up(self) -> None:
        """MariaDB, the brokers and the workers, then the schema and the connector."""
        settings, timeout = self.settings, self.settings.stack_startup_timeout
        settings.stack_dir.mkdir(parents=True, exist_ok=True)
        keys.ensure_key_pair(settings)
        if settings.secured:
            accounts.ensure_secrets(settings)
        if settings.kafka_brokers > 1:
            tls.ensure_certificates(settings)
        self.supervisor.ensure_up(self.mariadb, timeout)
        # Started together: no node of a KRaft quorum is healthy before a majority runs.
        self.supervisor.ensure_all_up(self.brokers, timeout)
        if settings.secured:
            acl.provision(settings)  # the workers log in as their own principal
        try:
            topics.create_missing(settings.kafka_client(), pipeline_topics(settings), timeout)
        except topics.TopicError as err:
            raise StackError(str(err)) from err
        for part in [*self.workers, self.watchdog]:
            self.supervisor.ensure_up(part, timeout)
        for part in self.observers:
            self.supervisor.ensure_up(part, timeout)
        schema.prepare(settings)
        began = time.monotonic()
        # The sink writes as its own MariaDB account; the stack creates its topics as the admin.
        sink = dataclasses.replace(settings, mariadb_user=accounts.SINK.mariadb_user) if settings.secured else settings
        register.register(register.DEFAULT_CONFIG, sink, timeout=timeout)
        say(f"connector {settings.sink_name}: RUNNING ({time.monotonic() - began:.1f}s)")
        self.products_source_up(timeout)
        if self.zipkin is not None:
            say(f"traces: Zipkin's UI at {settings.zipkin_url}/zipkin/")
        say(f"metrics and alerts: Prometheus at {settings.prometheus_url}/alerts")

    def products_source_up(self, timeout: float) -> None:
        """The products' change stream: its compacted topic and its schema history topic, made here
        as the admin (before anything can ask for the first and get the broker's auto-created one;
        on a cluster the connector's principal may create neither), then the source connector, as
        its binlog account, healthy once its snapshot is committed (stack/cdc.py: RUNNING alone
        proves nothing)."""
        settings = self.settings
        account = cdc.account(settings)
        history = register.load(register.PRODUCTS_SOURCE, account)[1]["schema.history.internal.kafka.topic"]
        # The history as Debezium would make it: one partition (its order is the DDL's), kept forever.
        configs = {register.PRODUCTS_TOPIC: {"cleanup.policy": "compact"},
                   history: {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}}
        try:
            topics.create_missing(settings.kafka_client(), {register.PRODUCTS_TOPIC: register.TOPIC_PARTITIONS,
                                                            history: 1}, timeout, configs=configs)
        except topics.TopicError as err:
            raise StackError(str(err)) from err
        began = time.monotonic()
        name = cdc.source_up(account, register.PRODUCTS_SOURCE, timeout)
        say(f"connector {name}: RUNNING, snapshot complete ({time.monotonic() - began:.1f}s)")

    def services_up(self, timeout: float = 60) -> None:
        keys.ensure_key_pair(self.settings)  # the services check tokens with its public key
        tls.ensure_grpc_certificate(self.settings)
        for part in self.services:  # Catalogs before Orders: an Order asks them about every product
            self.supervisor.ensure_up(part, timeout)

    def up(self) -> None:
        self.infra_up()
        self.services_up()

    def services_down(self) -> None:
        for part in reversed(self.services):
            self.supervisor.stop(part, grace=20)

    def down(self) -> None:
        self.services_down()
        for part in reversed(self.observers):
            self.supervisor.stop(part)
        self.supervisor.stop(self.watchdog)
        self.supervisor.stop_all(self.workers)  # Connect first, MariaDB last
        self.supervisor.stop_all(self.brokers)
        self.supervisor.stop(self.mariadb)

    def destroy(self) -> None:
        """down(), then delete the stack dir (private stacks only)."""
        self.down()
        shutil.rmtree(self.settings.stack_dir, ignore_errors=True)

    def status(self) -> list[dict]:
        """Each part: name, pid, port, address, healthy."""
        report = []
        for part in [*self.infra, *self.services]:
            pid = self.supervisor.pid(part)
            report.append({"name": part.name, "pid": pid, "port": part.port, "address": part.address,
                           "healthy": pid is not None and part.healthy()})
        return report

    def healthy(self, report: list[dict]) -> bool:
        """Whether a status() report is healthy: every infrastructure part, and every service that runs."""
        needed = {part.name for part in self.infra}
        return all(p["healthy"] for p in report if p["pid"] or p["name"] in needed)


def reap_abandoned_private_stacks() -> None:
    """Stop and delete the private stacks whose owner died without cleaning up (e.g. killed)."""
    for stack_dir in PRIVATE_STACKS.glob("*/"):
        owner = stack_dir / "owner"
        if owner.exists() and token_alive(owner.read_text().strip()):
            continue  # a live run (maybe a concurrent one) owns it
        say(f"removing the abandoned private stack {stack_dir}")
        supervisor = Supervisor(stack_dir)
        last = {"connect": 1, "kafka": 2, "mariadb": 3}  # services first, MariaDB last
        for pid_file in sorted((stack_dir / "run").glob("*.pid"),
                               key=lambda f: last.get(f.stem.split("-")[0], 0)):
            supervisor.stop(Part(pid_file.stem, 0, "", list, lambda: False), grace=10)
        shutil.rmtree(stack_dir, ignore_errors=True)
