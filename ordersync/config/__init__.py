"""Every shared setting of ordersync, with one name each, read once per process.

`Settings.from_env()` reads the environment (defaults fit the local stack);
`to_env()` gives the same settings back as variables, so a process started by
the supervisor sees exactly what its parent saw. Libraries (`bus`, `connect`)
read no environment: they take these values as parameters.

Every setting is checked when it is read (and when Settings is built in code): a
value that is not of its kind raises SettingError, whose message names the
variable, the value and the form expected (KAFKA_PORT='notanumber': expected a
port number 1-65535). Ports are 1-65535 and no two parts of the stack share one,
counts at least 1, seconds above 0, ORDER_PORTS distinct, names that end up in a
topic or in SQL of the characters those allow. A process's own settings
(ORDER_PORT, CATALOG_DEADLINE_S, METRICS_PORT, ...) are read the same way, with
`setting()`. An entry point decorated with `exits_on_bad_setting` exits with code 2
and that one line on stderr.

| variable               | default                 | what it moves                                   |
|------------------------|-------------------------|-------------------------------------------------|
| STACK_DIR              | .stack                  | data, logs, pids and config of the local stack  |
| MARIADB_HOST / _PORT   | 127.0.0.1 / 3306        | MariaDB, for the stack, services and connector  |
| MARIADB_USER / _PASSWORD | ordersync / ordersync | the account of services and connector           |
| KAFKA_PORT             | 9092                    | the broker (and KAFKA_BOOTSTRAP with it)        |
| KAFKA_CONTROLLER_PORT  | 9093                    | the KRaft controller                            |
| KAFKA_BOOTSTRAP        | 127.0.0.1:$KAFKA_PORT   | where clients find Kafka                        |
| CONNECT_PORT           | 8083                    | the Connect worker (and CONNECT_URL with it)    |
| CONNECT_URL            | http://127.0.0.1:$CONNECT_PORT | where tools find the Connect REST API    |
| ORDERS_TOPIC           | orders                  | the topic of OrderPlaced events as published;   |
|                        |                         | the gate writes ORDERS_TOPIC.accepted (read by  |
|                        |                         | the sink and the Catalog) and .rejected         |
| ORDERS_DB / ORDERS_TABLE | orders_db / orders    | where the sink writes orders and Order reads    |
| CATALOG_DB             | catalog_db              | the Catalog's products and applied orders       |
| GATE_DB                | gate_db                 | the gate's first event of every order id        |
| CATALOG_GROUP          | catalog-stock           | the Catalog's consumer group                    |
| GATE_GROUP             | orders-gate             | the gate's consumer group and transactional ids |
| SINK_NAME              | orders-sink             | the connector (its dead-letter topic: NAME-dlq) |
| SINK_TASKS             | 1                       | the sink's tasks.max (at most the partitions of |
|                        |                         | ORDERS_TOPIC; see README "Performance")         |
| CATALOG_PORT           | 50061                   | the Catalog's gRPC port                         |
| CATALOG_INSTANCES      | 1                       | Catalogs (on CATALOG_PORT and the next ports)   |
| ORDER_PORTS            | 50051,50052             | one Order instance per port                     |
| GATE_PORT              | 50071                   | the gate's gRPC health port                     |
| GATE_INSTANCES         | 1                       | gates (on GATE_PORT and the next ports)         |
| KAFKA_HOSTS, CONNECT_HOSTS, | 127.0.0.1          | the host of each broker, worker, gate, Catalog, |
| GATE_HOSTS, CATALOG_HOSTS, |                     | Order instance: one for all of its kind, or one |
| ORDER_HOSTS            |                         | per instance (KAFKA_BROKERS, ...); where it     |
|                        |                         | listens and where the others find it            |
| LISTEN_HOST            | 127.0.0.1               | one service process's own listen address (its   |
|                        |                         | gRPC and metrics ports; 0.0.0.0: every one);    |
|                        |                         | the stack sets it from the *_HOSTS              |
| METRICS_PORT_OFFSET    | 1000                    | each service's Prometheus /metrics port: its    |
|                        |                         | gRPC port + this (51051, 51061); 0: none        |
| METRICS_PORT           | (unset)                 | one process's metrics port, over the offset     |
|                        |                         | (private stacks pick a free one per service)    |
| JAVA_HOME              | Debian's Java 17        | the JDK of the broker and the worker            |
| KAFKA_HEAP_OPTS / CONNECT_HEAP_OPTS | 512m / 768m max | their heaps                                |
| STACK_STARTUP_TIMEOUT  | 120                     | seconds a part may take to become healthy       |
| KAFKA_BROKERS          | 1                       | brokers (3: a KRaft cluster on KAFKA_PORT and   |
|                        |                         | the next ports, controllers likewise)           |
| CONNECT_WORKERS        | 1                       | Connect workers (on CONNECT_PORT and the next)  |
| KAFKA_SECURITY_PROTOCOL | PLAINTEXT              | SASL_SSL (cluster): TLS, SCRAM users and ACLs;  |
|                        |                         | also SSL, SASL_PLAINTEXT (SASL: KAFKA_USER and  |
|                        |                         | SECRETS_FILE needed)                            |
| KAFKA_SSL_CA           | (unset)                 | the CA certificate that signed the brokers'     |
| KAFKA_SASL_MECHANISM   | SCRAM-SHA-512           | the SASL mechanism of clients                   |
| KAFKA_USER             | (unset)                 | this process's Kafka principal (with SASL)      |
| SECRETS_FILE           | (unset)                 | 0600 properties file of passwords, one per      |
|                        |                         | account: kafka.<user>=, mariadb.<user>=; when   |
|                        |                         | set, MARIADB_PASSWORD is not used               |
| AUTH_PUBLIC_KEY        | $STACK_DIR/secrets/auth/public-key.pem | the Ed25519 public key the   |
|                        |                         | services check callers' tokens with (PEM)       |
| AUTH_PRIVATE_KEY       | $STACK_DIR/secrets/auth/signing-key.pem | the stack's signing key     |
|                        |                         | (PEM, 0600): ordersync-token and the stack      |
|                        |                         | mint tokens with it; no service reads it        |
| GRPC_TLS_CA            | (unset: plaintext gRPC) | the CA certificate every gRPC client trusts;    |
|                        |                         | when set, every gRPC server is TLS only         |
| GRPC_TLS_CERT / _KEY   | $STACK_DIR/secrets/tls/grpc-server.pem / -key.pem | a server's certificate |
|                        |                         | chain and key (PEM), when GRPC_TLS_CA is set    |
| TRACING                | ON                      | OFF: no spans, and the stack starts no Zipkin   |
| TRACE_SAMPLE_RATIO     | 1.0                     | the share of orders traced (0-1), decided where |
|                        |                         | a trace starts; the other hops follow it        |
| ZIPKIN_HOST / _PORT    | 127.0.0.1 / 9411        | the Zipkin server: the spans' collector, its UI |
| PROMETHEUS_HOST / _PORT | 127.0.0.1 / 9090       | the Prometheus server the stack starts          |
"""

import dataclasses
import functools
import math
import os
import re
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Callable, ParamSpec, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bus import dead_letters
from ordersync.contract.sql import IDENTIFIER

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"  # where every part is unless the settings say otherwise (*_HOSTS, LISTEN_HOST)
# The products' change stream: what connect/products-source.json writes (its route transform) and
# every Order instance follows (order_svc/products.py).
PRODUCTS_TOPIC = "catalog.products"


class SettingError(ValueError):
    """A setting that cannot be used; the message names the variable, its value and the form expected:
    KAFKA_PORT='notanumber': expected a port number 1-65535."""

    def __init__(self, variable: str, value: object, expected: str):
        self.variable, self.value, self.expected = variable, value, expected
        super().__init__(f"{variable}={value!r}: expected {expected}")


@dataclasses.dataclass(frozen=True)
class Kind:
    """How a setting is written: `parse` turns its text into the value (ValueError when it cannot),
    `valid` says whether a value can be used, `expected` says both to a person."""
    expected: str
    parse: Callable[[str], Any] = str
    valid: Callable[[Any], bool] = lambda value: True

    def read(self, variable: str, text: str) -> Any:
        """The value of `variable` written as `text`, or SettingError."""
        try:
            value = self.parse(text)
        except ValueError:
            raise SettingError(variable, text, self.expected) from None
        return self.check(variable, value, text)

    def check(self, variable: str, value: Any, text: str | None = None) -> Any:
        """`value`, or SettingError when it is not valid (`text`: how it was written)."""
        if not self.valid(value):
            raise SettingError(variable, _as_text(value) if text is None else text, self.expected)
        return value


def _as_text(value) -> str:
    """A value as its variable holds it (to_env, SettingError)."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _in_port_range(port: int) -> bool:
    return 1 <= port <= 65535


def _ports(text: str) -> tuple[int, ...]:
    """At least one port: a variable set to none is a mistake (in code, () is no Order instance at all,
    as Topology.private(orders=0) makes)."""
    ports = tuple(int(p) for p in text.split(",") if p.strip())
    if not ports:
        raise ValueError("no port")
    return ports


def _claim(users: dict[int, str], port: int, user: str, variable: str, value: str) -> None:
    """Give `port` to `user`, unless another part of the stack has it (then SettingError on `variable`)."""
    if users.setdefault(port, user) != user:
        raise SettingError(variable, value, f"no port that another part of the stack uses: {users[port]} has {port}")


def one_of(*values: str) -> Kind:
    """One of `values` (upper case), written in any case."""
    return Kind("one of " + ", ".join(values), str.upper, lambda value: value in values)


def _bootstrap_valid(servers: str) -> bool:
    """host:port[,host:port...] as librdkafka reads it (a port is optional, a PROTOCOL:// prefix allowed)."""
    entries = [entry.strip() for entry in servers.split(",")]
    matches = [_BOOTSTRAP_ENTRY.fullmatch(entry) for entry in entries]
    return all(m and (m["port"] is None or _in_port_range(int(m["port"]))) for m in matches)


def _url_valid(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _hosts(text: str) -> tuple[str, ...]:
    hosts = tuple(h.strip() for h in text.split(","))
    if not all(hosts):
        raise ValueError("an empty host")
    return hosts


def _host_valid(host: str) -> bool:
    return bool(_HOST_NAME.fullmatch(host)) and len(host) <= 253


def is_ipv4(host: str) -> bool:
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) <= 255 for p in parts)


_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_BOOTSTRAP_ENTRY = re.compile(r"(?:[A-Za-z_]+://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:,/\[\]]+)(?::(?P<port>\d+))?")
_TOPIC_PART = re.compile(r"[A-Za-z0-9._-]{1,200}")

TEXT = Kind("text")
HOST_NAME = Kind("a host name or an IPv4 address", valid=_host_valid)
HOSTS = Kind("host names or IPv4 addresses, comma-separated: one for every instance, or one each", _hosts,
             lambda hosts: all(map(_host_valid, hosts)))
PATH = Kind("a folder", Path)
PORT = Kind("a port number 1-65535", int, _in_port_range)
PORT_OR_NONE = Kind("a port number 1-65535, or 0 for none", int, lambda port: port == 0 or _in_port_range(port))
PORTS = Kind("one or more distinct port numbers 1-65535, comma-separated", _ports,
             lambda ports: len(set(ports)) == len(ports) and all(map(_in_port_range, ports)))
PORT_OFFSET = Kind("0 (no exporter) or a number 1-65534 added to each gRPC port", int, lambda n: 0 <= n <= 65534)
COUNT = Kind("a whole number, at least 1", int, lambda n: n >= 1)
RATIO = Kind("a number from 0 to 1", float, lambda r: 0 <= r <= 1)
SECONDS = Kind("a number of seconds greater than 0", float, lambda s: 0 < s < math.inf)
TOPIC_PART = Kind("at most 200 letters, digits, '.', '_' or '-' (it names a Kafka topic)",
                  valid=lambda name: bool(_TOPIC_PART.fullmatch(name)) and name not in (".", ".."))
SQL_NAME = Kind("a plain SQL identifier: 1-64 letters, digits or '_'", valid=lambda name: bool(IDENTIFIER.fullmatch(name)))
# Empty: made from CONNECT_PORT, KAFKA_PORT and KAFKA_BROKERS.
URL = Kind("an http:// or https:// URL", valid=lambda url: url == "" or _url_valid(url))
BOOTSTRAP = Kind("host:port[,host:port...], ports 1-65535", valid=lambda servers: servers == "" or _bootstrap_valid(servers))
# Empty: the stack's own, under STACK_DIR/secrets/auth/.
FILE = Kind("a file path (empty: the stack's own)", valid=lambda path: path == path.strip() and "\n" not in path)


def _setting(default, kind: Kind) -> Any:
    """A field of Settings, with the kind its variable is read and checked as."""
    return dataclasses.field(default=default, metadata={"kind": kind})


def setting(env, variable: str, kind: Kind, default):
    """One process's own setting (ORDER_PORT, CATALOG_DEADLINE_S, METRICS_PORT...), read and checked
    like the shared ones: `default` when it is unset or empty, SettingError when it is not of `kind`."""
    text = env.get(variable)
    return default if text is None or text == "" else kind.read(variable, text)


P = ParamSpec("P")
R = TypeVar("R")


def exits_on_bad_setting(entry_point: Callable[P, R]) -> Callable[P, R]:
    """For an entry point (a main(), a service's serve()): a bad setting ends the process with exit
    code 2 and one line on stderr that names the variable, instead of a traceback."""
    @functools.wraps(entry_point)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return entry_point(*args, **kwargs)
        except SettingError as err:
            print(f"bad setting: {err}", file=sys.stderr)
            raise SystemExit(2) from None
    return checked


@dataclasses.dataclass(frozen=True)
class GrpcTls:
    """gRPC's TLS: `ca`, the file of the CA certificate that clients trust (empty: plaintext, on
    loopback only); `cert` and `key`, a server's certificate chain and private key (PEM files)."""
    ca: str = ""
    cert: str = ""
    key: str = ""

    @property
    def on(self) -> bool:
        return bool(self.ca)


PLAINTEXT = GrpcTls()


@dataclasses.dataclass(frozen=True)
class TraceExport:
    """Where a process sends its spans (`zipkin_url`; empty: nowhere, tracing is off) and the share
    of the traces it starts that are kept (a trace that comes in with a call or a record keeps the
    decision made where it started: ordersync.serving.tracing)."""
    zipkin_url: str = ""
    sample_ratio: float = 1.0

    @property
    def on(self) -> bool:
        return bool(self.zipkin_url)


NO_TRACES = TraceExport()


@dataclasses.dataclass(frozen=True)
class Settings:
    stack_dir: Path = _setting(ROOT / ".stack", PATH)
    mariadb_host: str = _setting(HOST, TEXT)
    mariadb_port: int = _setting(3306, PORT)
    mariadb_user: str = _setting("ordersync", TEXT)
    mariadb_password: str = _setting("ordersync", TEXT)
    kafka_port: int = _setting(9092, PORT)
    kafka_controller_port: int = _setting(9093, PORT)
    kafka_bootstrap: str = _setting("", BOOTSTRAP)  # empty: 127.0.0.1:kafka_port
    connect_port: int = _setting(8083, PORT)
    connect_url: str = _setting("", URL)  # empty: http://127.0.0.1:connect_port
    orders_topic: str = _setting("orders", TOPIC_PART)
    orders_db: str = _setting("orders_db", SQL_NAME)
    orders_table: str = _setting("orders", SQL_NAME)
    catalog_db: str = _setting("catalog_db", SQL_NAME)
    gate_db: str = _setting("gate_db", SQL_NAME)
    catalog_group: str = _setting("catalog-stock", TOPIC_PART)  # in its dead-letter topic's name
    gate_group: str = _setting("orders-gate", TEXT)
    sink_name: str = _setting("orders-sink", TOPIC_PART)  # in its dead-letter topic's name
    sink_tasks: int = _setting(1, COUNT)
    catalog_port: int = _setting(50061, PORT)
    catalog_instances: int = _setting(1, COUNT)
    order_ports: tuple[int, ...] = _setting((50051, 50052), PORTS)
    gate_port: int = _setting(50071, PORT)
    gate_instances: int = _setting(1, COUNT)
    metrics_port_offset: int = _setting(1000, PORT_OFFSET)  # 0: no metrics exporter
    # Where each part is (one host for all of a kind, or one per instance).
    kafka_hosts: tuple[str, ...] = _setting((HOST,), HOSTS)
    connect_hosts: tuple[str, ...] = _setting((HOST,), HOSTS)
    gate_hosts: tuple[str, ...] = _setting((HOST,), HOSTS)
    catalog_hosts: tuple[str, ...] = _setting((HOST,), HOSTS)
    order_hosts: tuple[str, ...] = _setting((HOST,), HOSTS)
    # The stack's own processes.
    java_home: str = _setting("/usr/lib/jvm/java-17-openjdk-amd64", TEXT)
    kafka_heap_opts: str = _setting("-Xms256m -Xmx512m", TEXT)
    connect_heap_opts: str = _setting("-Xms256m -Xmx768m", TEXT)
    stack_startup_timeout: float = _setting(120.0, SECONDS)
    # Cluster mode: more brokers and workers, SASL/SCRAM, one account per part.
    kafka_brokers: int = _setting(1, COUNT)
    connect_workers: int = _setting(1, COUNT)
    kafka_security_protocol: str = _setting("PLAINTEXT", one_of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"))
    kafka_sasl_mechanism: str = _setting("SCRAM-SHA-512", one_of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512",
                                                                 "GSSAPI", "OAUTHBEARER"))
    kafka_user: str = _setting("", TEXT)
    kafka_ssl_ca: str = _setting("", TEXT)
    secrets_file: str = _setting("", TEXT)
    # Callers' tokens (ordersync.serving.auth): the key pair the stack makes (stack/keys.py).
    # Empty: under STACK_DIR/secrets/auth/.
    auth_public_key: str = _setting("", FILE)
    auth_private_key: str = _setting("", FILE)
    # gRPC over TLS (ordersync.serving.tls): the CA clients trust, a server's certificate and key.
    # No CA: plaintext gRPC. A certificate or key left empty: the stack's, under STACK_DIR/secrets/tls/.
    grpc_tls_ca: str = _setting("", FILE)
    grpc_tls_cert: str = _setting("", FILE)
    grpc_tls_key: str = _setting("", FILE)
    # Observability: the traces' Zipkin and the metrics' Prometheus, both started by the stack.
    tracing: str = _setting("ON", one_of("ON", "OFF"))
    trace_sample_ratio: float = _setting(1.0, RATIO)
    zipkin_host: str = _setting(HOST, HOST_NAME)
    zipkin_port: int = _setting(9411, PORT)
    prometheus_host: str = _setting(HOST, HOST_NAME)
    prometheus_port: int = _setting(9090, PORT)

    def __post_init__(self):
        object.__setattr__(self, "stack_dir", Path(self.stack_dir).resolve())
        for f in dataclasses.fields(self):
            f.metadata["kind"].check(f.name.upper(), getattr(self, f.name))
        self._check_together()
        if not self.kafka_bootstrap:
            object.__setattr__(self, "kafka_bootstrap", ",".join(self.kafka_addresses))
        if not self.connect_url:
            object.__setattr__(self, "connect_url", self.connect_urls[0])
        for name, file_name in (("auth_public_key", "public-key.pem"), ("auth_private_key", "signing-key.pem")):
            if not getattr(self, name):
                object.__setattr__(self, name, str(self.stack_dir / "secrets" / "auth" / file_name))
        if self.grpc_tls_ca:
            for name, file_name in (("grpc_tls_cert", "grpc-server.pem"), ("grpc_tls_key", "grpc-server-key.pem")):
                if not getattr(self, name):
                    object.__setattr__(self, name, str(self.stack_dir / "secrets" / "tls" / file_name))

    def _check_together(self) -> None:
        """What no setting says alone: each run of ports fits, no two parts share a port, SASL has a user."""
        runs = [("MARIADB_PORT", self.mariadb_port, 1, "MARIADB_PORT"),
                ("KAFKA_PORT", self.kafka_port, self.kafka_brokers, "KAFKA_BROKERS"),
                ("KAFKA_CONTROLLER_PORT", self.kafka_controller_port, self.kafka_brokers, "KAFKA_BROKERS"),
                ("CONNECT_PORT", self.connect_port, self.connect_workers, "CONNECT_WORKERS"),
                ("CATALOG_PORT", self.catalog_port, self.catalog_instances, "CATALOG_INSTANCES"),
                ("GATE_PORT", self.gate_port, self.gate_instances, "GATE_INSTANCES"),
                ("ZIPKIN_PORT", self.zipkin_port, 1, "ZIPKIN_PORT"),
                ("PROMETHEUS_PORT", self.prometheus_port, 1, "PROMETHEUS_PORT")]
        users: dict[int, str] = {}  # port -> who has it, as a message names it
        for variable, first, count, count_variable in runs:
            if first + count - 1 > 65535:
                raise SettingError(variable, str(first), f"a port number 1-{65536 - count}, so that {count_variable}={count} "
                                                         "fit on it and the next ports")
            user = variable if count == 1 else f"{variable} with {count_variable}={count}"
            for port in range(first, first + count):
                _claim(users, port, user, variable, str(first))
        for port in self.order_ports:
            _claim(users, port, "ORDER_PORTS", "ORDER_PORTS", _as_text(self.order_ports))
        for variable, hosts, count, count_variable in (
                ("KAFKA_HOSTS", self.kafka_hosts, self.kafka_brokers, "KAFKA_BROKERS"),
                ("CONNECT_HOSTS", self.connect_hosts, self.connect_workers, "CONNECT_WORKERS"),
                ("GATE_HOSTS", self.gate_hosts, self.gate_instances, "GATE_INSTANCES"),
                ("CATALOG_HOSTS", self.catalog_hosts, self.catalog_instances, "CATALOG_INSTANCES"),
                ("ORDER_HOSTS", self.order_hosts, len(self.order_ports), "the ORDER_PORTS")):
            if len(hosts) not in (1, count):
                raise SettingError(variable, _as_text(hosts), f"one host, or {count}: one for each of {count_variable}")
        if self.kafka_security_protocol.startswith("SASL_"):
            for variable, value, what in (("KAFKA_USER", self.kafka_user, "the Kafka principal of this process"),
                                          ("SECRETS_FILE", self.secrets_file, "the file that holds its password")):
                if not value:
                    raise SettingError(variable, value, f"{what}: KAFKA_SECURITY_PROTOCOL="
                                                        f"{self.kafka_security_protocol} logs in with it")

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        """The settings in `env` (default: os.environ); SettingError names the first one that is not usable."""
        env = os.environ if env is None else env
        values = {f.name: setting(env, f.name.upper(), f.metadata["kind"], f.default) for f in dataclasses.fields(cls)}
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables (for a child process)."""
        return {f.name.upper(): _as_text(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def traced(self) -> bool:
        return self.tracing == "ON"

    @property
    def trace_export(self) -> TraceExport:
        return TraceExport(self.zipkin_url, self.trace_sample_ratio) if self.traced else NO_TRACES

    @property
    def zipkin_url(self) -> str:
        """Zipkin's base URL: its UI, /api/v2/spans (where spans are sent) and /api/v2/trace/<id>."""
        return f"http://{self.zipkin_host}:{self.zipkin_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.prometheus_host}:{self.prometheus_port}"

    @property
    def kafka_ports(self) -> list[int]:
        """One client port per broker: KAFKA_PORT and the next ones."""
        return [self.kafka_port + i for i in range(self.kafka_brokers)]

    @property
    def kafka_addresses(self) -> list[str]:
        """host:port of each broker's client listener."""
        return [f"{host_of(self.kafka_hosts, i)}:{port}" for i, port in enumerate(self.kafka_ports)]

    @property
    def connect_urls(self) -> list[str]:
        """The REST URL of each worker: on its host, CONNECT_PORT and the next ones."""
        return [f"http://{host_of(self.connect_hosts, i)}:{self.connect_port + i}" for i in range(self.connect_workers)]

    @property
    def grpc_tls(self) -> "GrpcTls":
        """How this process's gRPC servers and channels are secured."""
        return GrpcTls(self.grpc_tls_ca, self.grpc_tls_cert, self.grpc_tls_key)

    @property
    def secured(self) -> bool:
        return self.kafka_security_protocol != "PLAINTEXT"

    def secret(self, key: str) -> str:
        """One password from SECRETS_FILE (a Java properties file that Connect's FileConfigProvider
        reads too), read when needed so that it never travels in an environment variable."""
        try:
            lines = Path(self.secrets_file).read_text().splitlines()
        except OSError as err:
            raise SettingError("SECRETS_FILE", self.secrets_file, f"a readable file of passwords ({err.strerror})") from None
        for line in lines:
            name, sep, value = line.partition("=")
            if sep and name.strip() == key:
                return value.strip()
        raise SettingError("SECRETS_FILE", self.secrets_file, f"a file with the password {key}=...")

    def secret_reference(self, key: str) -> str:
        """How Connect configuration names a secret: resolved by the worker, never shown by its REST API."""
        return f"${{file:{self.secrets_file}:{key}}}"

    def kafka_jaas_reference(self) -> str:
        """A Java client's sasl.jaas.config logging in as KAFKA_USER, its password a reference to
        SECRETS_FILE that Connect's FileConfigProvider resolves (the workers' own clients and a
        connector's, like Debezium's schema history): the password is in no rendered file and no
        connector configuration."""
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if self.kafka_sasl_mechanism == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        return (f'{module} required username="{self.kafka_user}" '
                f'password="{self.secret_reference(f"kafka.{self.kafka_user}")}";')

    @property
    def db_password(self) -> str:
        """The password of MARIADB_USER: from SECRETS_FILE when there is one."""
        return self.secret(f"mariadb.{self.mariadb_user}") if self.secrets_file else self.mariadb_password

    def kafka_security(self) -> dict[str, str]:
        """librdkafka settings that authenticate this process as KAFKA_USER ({} on PLAINTEXT);
        for a client's extra_config."""
        if not self.secured:
            return {}
        security = {"security.protocol": self.kafka_security_protocol}
        if self.kafka_ssl_ca:
            security["ssl.ca.location"] = self.kafka_ssl_ca
        if self.kafka_security_protocol.startswith("SASL_"):
            security.update({"sasl.mechanism": self.kafka_sasl_mechanism, "sasl.username": self.kafka_user,
                             "sasl.password": self.secret(f"kafka.{self.kafka_user}")})
        return security

    def kafka_client(self, **config) -> dict:
        """A client configuration: bootstrap servers, this process's credentials, then `config`."""
        return {"bootstrap.servers": self.kafka_bootstrap, **self.kafka_security(), **config}

    @property
    def sink_dlq_topic(self) -> str:
        return f"{self.sink_name}-dlq"

    @property
    def accepted_topic(self) -> str:
        """What the gate accepted of ORDERS_TOPIC, each order once: the sink and the Catalog read it."""
        return f"{self.orders_topic}.accepted"

    @property
    def rejected_topic(self) -> str:
        """What the gate refused of ORDERS_TOPIC, each record once, with the reason in its headers."""
        return f"{self.orders_topic}.rejected"

    @property
    def catalog_dlq_topic(self) -> str:
        return dead_letters.topic_for(self.accepted_topic, self.catalog_group)

    @property
    def gate_ports(self) -> list[int]:
        """The first gate is at GATE_PORT, more follow on the next ports."""
        return [self.gate_port + i for i in range(self.gate_instances)]

    @property
    def catalog_ports(self) -> list[int]:
        """The first Catalog is at CATALOG_PORT, more follow on the next ports."""
        return [self.catalog_port + i for i in range(self.catalog_instances)]

    @property
    def catalog_addresses(self) -> list[str]:
        """host:port of each Catalog."""
        return [f"{host_of(self.catalog_hosts, i)}:{port}" for i, port in enumerate(self.catalog_ports)]

    @property
    def order_addresses(self) -> list[str]:
        """host:port of each Order instance."""
        return [f"{host_of(self.order_hosts, i)}:{port}" for i, port in enumerate(self.order_ports)]

    @property
    def gate_addresses(self) -> list[str]:
        """host:port of each gate's health service."""
        return [f"{host_of(self.gate_hosts, i)}:{port}" for i, port in enumerate(self.gate_ports)]

    @property
    def all_hosts(self) -> list[str]:
        """Every host some part of the stack is on, once each, 127.0.0.1 first."""
        hosts = [HOST, self.mariadb_host, *self.kafka_hosts, *self.connect_hosts, *self.gate_hosts,
                 *self.catalog_hosts, *self.order_hosts]
        return list(dict.fromkeys(hosts))

    def metrics_port(self, grpc_port: int, env) -> int:
        """The metrics port of the service on `grpc_port` (0: no exporter). METRICS_PORT in `env`
        is one process's own, like ORDER_PORT, so it is not a shared setting; it wins when set."""
        port = setting(env, "METRICS_PORT", PORT_OR_NONE, None)
        if port is not None:
            return port
        if not self.metrics_port_offset:
            return 0
        if grpc_port + self.metrics_port_offset > 65535:
            raise SettingError("METRICS_PORT_OFFSET", str(self.metrics_port_offset),
                               f"0 (no exporter) or at most {65535 - grpc_port}: the service on {grpc_port} "
                               "has its metrics on its port + this")
        return grpc_port + self.metrics_port_offset

    def mariadb_url(self, database: str | None = None) -> str:
        """SQLAlchemy URL (PyMySQL driver) of one database (None: no default database)."""
        return (f"mysql+pymysql://{self.mariadb_user}:{self.db_password}"
                f"@{self.mariadb_host}:{self.mariadb_port}/{database or ''}")


def host_of(hosts: tuple[str, ...], index: int) -> str:
    """The host of instance `index` (from 0): its own, or the one of them all."""
    return hosts[index] if len(hosts) > 1 else hosts[0]


def listen_host(env) -> str:
    """LISTEN_HOST: the address one service process listens on (the stack sets it from *_HOSTS)."""
    return setting(env, "LISTEN_HOST", HOST_NAME, HOST)


def _read_key(variable: str, path: str, load: Callable[[bytes], Any], kind: type, what: str):
    try:
        key = load(Path(path).read_bytes())
    except OSError as err:
        raise SettingError(variable, path, f"a readable PEM file of {what} ({err.strerror}; the stack makes "
                                           "it: `make stack-up` or `make services-up`)") from None
    except ValueError:
        key = None
    if not isinstance(key, kind):
        raise SettingError(variable, path, f"a PEM file of {what}")
    return key


def public_key(path: str) -> Ed25519PublicKey:
    """The key of AUTH_PUBLIC_KEY, read from `path`: SettingError when it is no Ed25519 public key."""
    return _read_key("AUTH_PUBLIC_KEY", path, serialization.load_pem_public_key, Ed25519PublicKey,
                     "an Ed25519 public key")


def private_key(path: str) -> Ed25519PrivateKey:
    """The key of AUTH_PRIVATE_KEY, read from `path`: SettingError when it is no Ed25519 private key."""
    return _read_key("AUTH_PRIVATE_KEY", path, lambda pem: serialization.load_pem_private_key(pem, None),
                     Ed25519PrivateKey, "an Ed25519 private key, unencrypted")


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """What every service process (Order, Catalog, gate) has: the address its gRPC server listens
    on, its metrics port (0: no exporter), and the librdkafka settings of all its Kafka clients
    (Settings.kafka_client(): bootstrap servers and this process's credentials)."""
    listen: str
    metrics_port: int
    kafka_client: dict
    grpc_tls: GrpcTls  # its server's certificate, the CA its channels trust (PLAINTEXT: none)
    traces: TraceExport  # where its spans go (TRACING, ZIPKIN_*, TRACE_SAMPLE_RATIO)

    @property
    def listen_host(self) -> str:
        """The host of `listen` (its metrics are served there too)."""
        return self.listen.rsplit(":", 1)[0]
