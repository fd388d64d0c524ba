"""Every shared setting of ordersync, with one name each, read once per process.

`Settings.from_env()` reads the environment (defaults fit the local stack);
`to_env()` gives the same settings back as variables, so a process started by
the supervisor sees exactly what its parent saw. Libraries (`bus`, `connect`)
read no environment: they take these values as parameters.

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
| KAFKA_SECURITY_PROTOCOL | PLAINTEXT              | SASL_SSL (cluster): TLS, SCRAM users and ACLs   |
| KAFKA_SSL_CA           | (unset)                 | the CA certificate that signed the brokers'     |
| KAFKA_SASL_MECHANISM   | SCRAM-SHA-512           | the SASL mechanism of clients                   |
| KAFKA_USER             | (unset)                 | this process's Kafka principal (with SASL)      |
| SECRETS_FILE           | (unset)                 | 0600 properties file of passwords, one per      |
|                        |                         | account: kafka.<user>=, mariadb.<user>=; when   |
|                        |                         | set, MARIADB_PASSWORD is not used               |
"""

import dataclasses
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"  # the local stack binds to loopback only


@dataclasses.dataclass(frozen=True)
class Settings:
    stack_dir: Path = ROOT / ".stack"
    mariadb_host: str = HOST
    mariadb_port: int = 3306
    mariadb_user: str = "ordersync"
    mariadb_password: str = "ordersync"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_bootstrap: str = ""  # empty: 127.0.0.1:kafka_port
    connect_port: int = 8083
    connect_url: str = ""  # empty: http://127.0.0.1:connect_port
    orders_topic: str = "orders"
    orders_db: str = "orders_db"
    orders_table: str = "orders"
    catalog_db: str = "catalog_db"
    gate_db: str = "gate_db"
    catalog_group: str = "catalog-stock"
    gate_group: str = "orders-gate"
    sink_name: str = "orders-sink"
    sink_tasks: int = 1
    catalog_port: int = 50061
    catalog_instances: int = 1
    order_ports: tuple[int, ...] = (50051, 50052)
    gate_port: int = 50071
    gate_instances: int = 1
    metrics_port_offset: int = 1000  # 0: no metrics exporter
    # The stack's own processes.
    java_home: str = "/usr/lib/jvm/java-17-openjdk-amd64"
    kafka_heap_opts: str = "-Xms256m -Xmx512m"
    connect_heap_opts: str = "-Xms256m -Xmx768m"
    stack_startup_timeout: float = 120.0
    # Cluster mode: more brokers and workers, SASL/SCRAM, one account per part.
    kafka_brokers: int = 1
    connect_workers: int = 1
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_user: str = ""
    kafka_ssl_ca: str = ""
    secrets_file: str = ""

    def __post_init__(self):
        if not self.kafka_bootstrap:
            object.__setattr__(self, "kafka_bootstrap",
                               ",".join(f"{HOST}:{port}" for port in self.kafka_ports))
        if not self.connect_url:
            object.__setattr__(self, "connect_url", f"http://{HOST}:{self.connect_port}")
        object.__setattr__(self, "stack_dir", Path(self.stack_dir).resolve())

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f.name.upper())
            if raw is None or raw == "":
                continue
            if f.type is int:
                values[f.name] = int(raw)
            elif f.type is float:
                values[f.name] = float(raw)
            elif f.name == "order_ports":
                values[f.name] = tuple(int(p) for p in raw.split(",") if p.strip())
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]  # each value converted to its field's type above

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables (for a child process)."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            env[f.name.upper()] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        return env

    @property
    def kafka_ports(self) -> list[int]:
        """One client port per broker: KAFKA_PORT and the next ones."""
        return [self.kafka_port + i for i in range(self.kafka_brokers)]

    @property
    def connect_urls(self) -> list[str]:
        """The REST URL of each worker: CONNECT_PORT and the next ones."""
        return [f"http://{HOST}:{self.connect_port + i}" for i in range(self.connect_workers)]

    @property
    def secured(self) -> bool:
        return self.kafka_security_protocol != "PLAINTEXT"

    def secret(self, key: str) -> str:
        """One password from SECRETS_FILE (a Java properties file that Connect's FileConfigProvider
        reads too), read when needed so that it never travels in an environment variable."""
        for line in Path(self.secrets_file).read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip() == key:
                return value.strip()
        raise KeyError(f"no {key} in {self.secrets_file}")

    def secret_reference(self, key: str) -> str:
        """How Connect configuration names a secret: resolved by the worker, never shown by its REST API."""
        return f"${{file:{self.secrets_file}:{key}}}"

    @property
    def db_password(self) -> str:
        """The password of MARIADB_USER: from SECRETS_FILE when there is one."""
        return self.secret(f"mariadb.{self.mariadb_user}") if self.secrets_file else self.mariadb_password

    def kafka_security(self) -> dict[str, str]:
        """librdkafka settings that authenticate this process as KAFKA_USER ({} without SASL);
        for a client's extra_config."""
        if not self.secured:
            return {}
        tls = {"ssl.ca.location": self.kafka_ssl_ca} if self.kafka_ssl_ca else {}
        return {"security.protocol": self.kafka_security_protocol, "sasl.mechanism": self.kafka_sasl_mechanism,
                "sasl.username": self.kafka_user, "sasl.password": self.secret(f"kafka.{self.kafka_user}"), **tls}

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
        # The bus names a consumer's dead-letter topic <topic>.<group>.dlq.
        return f"{self.accepted_topic}.{self.catalog_group}.dlq"

    @property
    def gate_ports(self) -> list[int]:
        """The first gate is at GATE_PORT, more follow on the next ports."""
        return [self.gate_port + i for i in range(self.gate_instances)]

    @property
    def catalog_ports(self) -> list[int]:
        """The first Catalog is at CATALOG_PORT, more follow on the next ports."""
        return [self.catalog_port + i for i in range(self.catalog_instances)]

    @property
    def catalog_address(self) -> str:
        """The gRPC target of the Catalogs: one address, or a list for a client-side balancer."""
        if self.catalog_instances == 1:
            return f"{HOST}:{self.catalog_port}"
        return "ipv4:" + ",".join(f"{HOST}:{port}" for port in self.catalog_ports)

    def metrics_port(self, grpc_port: int, env) -> int:
        """The metrics port of the service on `grpc_port` (0: no exporter). METRICS_PORT in `env`
        is one process's own, like ORDER_PORT, so it is not a shared setting; it wins when set."""
        if env.get("METRICS_PORT"):
            return int(env["METRICS_PORT"])
        return grpc_port + self.metrics_port_offset if self.metrics_port_offset else 0

    def mariadb_url(self, database: str | None = None) -> str:
        """SQLAlchemy URL (PyMySQL driver) of one database (None: no default database)."""
        return (f"mysql+pymysql://{self.mariadb_user}:{self.db_password}"
                f"@{self.mariadb_host}:{self.mariadb_port}/{database or ''}")
