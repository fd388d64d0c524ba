"""The infrastructure parts of a stack, built from one Settings: MariaDB, KAFKA_BROKERS KRaft nodes
(one: the single-node stack; more: a secured cluster), CONNECT_WORKERS Connect workers, the sink's watchdog,
Zipkin (the traces; not with TRACING=OFF) and Prometheus (the metrics and the alerts).

Each is a plain process on its host (MARIADB_HOST, KAFKA_HOSTS, CONNECT_HOSTS) with its data, config and log under the
settings' stack_dir; the jars and tools that `make setup` fetched are shared by
every stack and live in the repository's .stack/.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from string import Template

from connect import rest
from ordersync.config import ROOT, Settings, host_of
from stack import accounts, tls
from stack.process import Part, StackError, say

TOOLS_DIR = ROOT / ".stack"  # what `make setup` fetched: jars, plugins, grpcurl, buf
KAFKA_LIBS = TOOLS_DIR / "kafka" / "libs"
PLUGIN_DIR = TOOLS_DIR / "plugins"
TEMPLATES = Path(__file__).resolve().parent / "config"
JDBC_SINK_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"
MARIADB_SOURCE_CLASS = "io.debezium.connector.mariadb.MariaDbConnector"
CONNECT_GROUP = "ordersync-connect"


def _http_ok(url: str, timeout: float = 3) -> bool:
    """Whether GET `url` answers 200 (a part's health endpoint)."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _render(settings: Settings, template: str, target: str | None = None, **values) -> Path:
    """A template of stack/config/ filled in, under <stack_dir>/conf/ (0600: some hold passwords)."""
    path = settings.stack_dir / "conf" / (target or template)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    path.chmod(0o600)
    path.write_text(Template((TEMPLATES / template).read_text()).substitute(values))
    return path


def _numbered(name: str, index: int, count: int) -> str:
    # One node keeps the single-node names ("kafka", "connect"); a cluster numbers them.
    return name if count == 1 else f"{name}-{index}"


def _java(settings: Settings) -> str:
    java = Path(settings.java_home) / "bin" / "java"
    if java.exists():
        return str(java)
    found = shutil.which("java")
    if not found:
        raise StackError("java not found: set JAVA_HOME to a Java 17+ JDK")
    return found


def _kafka_classpath() -> str:
    if not any(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        raise StackError(f"no Kafka jars in {KAFKA_LIBS}: run `make setup`")
    return f"{KAFKA_LIBS}/*"


def _jvm_options(settings: Settings, heap: str) -> list[str]:
    log4j = _render(settings, "log4j2.properties")
    return [*heap.split(), "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={settings.stack_dir / 'logs'}"]


def _run_once(what: str, cmd: list[str], timeout: float) -> None:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StackError(f"{what} did not finish within {timeout:.0f}s: {' '.join(cmd)}") from None
    if result.returncode != 0:
        raise StackError(f"{what} failed:\n{result.stdout}\n{result.stderr}")


# ---------------------------------------------------------------- MariaDB

def _system_binary(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")
    if not found:
        raise StackError(f"{name} not found: run `make setup` (stack/install_system.sh)")
    return found


def _as_root() -> list[str]:
    # mariadbd refuses to run as root unless told to; our datadir is root's anyway.
    return ["--user=root"] if os.geteuid() == 0 else []


def mariadb(settings: Settings) -> Part:
    home = settings.stack_dir / "data" / "mariadb"

    def command() -> list[str]:
        datadir = home / "datadir"
        if not (datadir / "mysql").is_dir():
            say(f"mariadb: initialising datadir {datadir}")
            shutil.rmtree(datadir, ignore_errors=True)
            datadir.mkdir(parents=True)
            try:
                _run_once("mariadb-install-db",
                          [_system_binary("mariadb-install-db"), f"--datadir={datadir}", "--skip-test-db",
                           "--auth-root-authentication-method=socket", *_as_root()],
                          settings.stack_startup_timeout)
            except StackError:
                shutil.rmtree(datadir, ignore_errors=True)
                raise
        init_file = _render(settings, "mariadb-init.sql", USER=settings.mariadb_user,
                            PASSWORD=settings.db_password.replace("'", "''"),
                            ORDERS_DB=settings.orders_db, CATALOG_DB=settings.catalog_db,
                            GATE_DB=settings.gate_db)
        if settings.secrets_file:  # one account per part, each with only what it needs
            init_file.write_text(init_file.read_text() + _render(
                settings, "mariadb-accounts.sql", **accounts.mariadb_grants(settings)).read_text())
        # The source connector's binlog account, in every stack.
        init_file.write_text(init_file.read_text() + _render(
            settings, "mariadb-cdc.sql", **accounts.cdc_grants(settings)).read_text())
        cnf = _render(settings, "my.cnf", DATADIR=datadir, SOCKET=settings.stack_dir / "run" / "mariadb.sock",
                      PIDFILE=home / "mariadbd.pid", HOST=settings.mariadb_host, PORT=settings.mariadb_port,
                      LOGFILE=settings.stack_dir / "logs" / "mariadb.log", INIT_FILE=init_file)
        # --defaults-file must come first.
        return [_system_binary("mariadbd"), f"--defaults-file={cnf}", *_as_root()]

    def healthy() -> bool:
        import pymysql
        try:
            conn = pymysql.connect(host=settings.mariadb_host, port=settings.mariadb_port,
                                   user=settings.mariadb_user, password=settings.db_password,
                                   database=settings.orders_db, connect_timeout=2)
        except pymysql.MySQLError:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone() == (1,)
        finally:
            conn.close()

    return Part("mariadb", settings.mariadb_port, "MARIADB_PORT", command, healthy, cwd=settings.stack_dir,
                host=settings.mariadb_host)


# ---------------------------------------------------------------- Kafka broker

def _cluster_id(id_file: Path) -> str:
    if id_file.exists():
        return id_file.read_text().strip()
    # Like Kafka's Uuid.randomUuid(): 16 random bytes, base64url without padding,
    # never starting with '-' (it would read as a command-line option).
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    id_file.parent.mkdir(parents=True, exist_ok=True)
    id_file.write_text(cluster_id + "\n")
    return cluster_id


def brokers(settings: Settings) -> list[Part]:
    """KAFKA_BROKERS nodes, each broker and controller; one: the single-node stack, unsecured."""
    return [_broker(settings, i) for i in range(1, settings.kafka_brokers + 1)]


def _broker(settings: Settings, node_id: int) -> Part:
    name = _numbered("kafka", node_id, settings.kafka_brokers)
    data = settings.stack_dir / "data" / name
    port = settings.kafka_port + node_id - 1
    address = settings.kafka_addresses[node_id - 1]

    def command() -> list[str]:
        cp = _kafka_classpath()
        conf, scram = _broker_config(settings, node_id, name, data)
        if not (data / "meta.properties").exists():
            say(f"{name}: formatting storage {data}")
            data.mkdir(parents=True, exist_ok=True)
            _run_once("kafka storage format",
                      [_java(settings), "-Xmx256m", "-cp", cp, "kafka.tools.StorageTool", "format",
                       f"--cluster-id={_cluster_id(settings.stack_dir / 'data' / 'kafka-cluster.id')}",
                       f"--config={conf}", "--ignore-formatted", *scram], settings.stack_startup_timeout)
        return [_java(settings), *_jvm_options(settings, settings.kafka_heap_opts), "-cp", cp,
                "kafka.Kafka", str(conf)]

    def healthy() -> bool:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient
        # Asked alone, the node answers once it is registered with the quorum.
        admin = AdminClient({**settings.kafka_client(), "bootstrap.servers": address, "log_level": 0})
        try:
            brokers = admin.list_topics(timeout=3).brokers
        except KafkaException:
            return False
        return node_id in brokers if settings.kafka_brokers > 1 else len(brokers) > 0

    return Part(name, port, "KAFKA_PORT", command, healthy, cwd=settings.stack_dir,
                host=host_of(settings.kafka_hosts, node_id - 1))


def _broker_config(settings: Settings, node_id: int, name: str, data: Path) -> tuple[Path, list[str]]:
    """The node's server.properties, and what `kafka-storage format` adds (the admin's SCRAM credential)."""
    host = host_of(settings.kafka_hosts, node_id - 1)
    if settings.kafka_brokers == 1:
        return _render(settings, "server.properties", HOST=host, PORT=settings.kafka_port,
                       CONTROLLER_PORT=settings.kafka_controller_port, DATA_DIR=data), []
    if settings.kafka_security_protocol != "SASL_SSL" or not settings.kafka_ssl_ca:
        raise StackError("a cluster is secured: set KAFKA_SECURITY_PROTOCOL=SASL_SSL, KAFKA_SSL_CA and "
                         "SECRETS_FILE (make cluster-up does)")
    admin_password = settings.secret(f"kafka.{accounts.KAFKA_ADMIN}")
    voters = ",".join(f"{i}@{host_of(settings.kafka_hosts, i - 1)}:{settings.kafka_controller_port + i - 1}"
                      for i in range(1, settings.kafka_brokers + 1))
    conf = _render(settings, "server-cluster.properties", f"{name}/server.properties", NODE_ID=node_id,
                   VOTERS=voters, HOST=host, PORT=settings.kafka_port + node_id - 1,
                   CONTROLLER_PORT=settings.kafka_controller_port + node_id - 1, DATA_DIR=data,
                   ADMIN_PASSWORD=admin_password,
                   CONTROLLER_PASSWORD=settings.secret(f"kafka.{accounts.KAFKA_CONTROLLER}"),
                   KEYSTORE=tls.keystore(settings), KEYSTORE_PASSWORD=settings.secret("tls.keystore"),
                   CA=settings.kafka_ssl_ca)
    return conf, [f"--add-scram={settings.kafka_sasl_mechanism}=[name={accounts.KAFKA_ADMIN},"
                  f"password={admin_password}]"]


# ---------------------------------------------------------------- Kafka Connect

def workers(settings: Settings) -> list[Part]:
    """CONNECT_WORKERS workers in one distributed group."""
    return [_worker(settings, i) for i in range(1, settings.connect_workers + 1)]


def _worker(settings: Settings, index: int) -> Part:
    name = _numbered("connect", index, settings.connect_workers)
    port = settings.connect_port + index - 1
    host = host_of(settings.connect_hosts, index - 1)
    url = settings.connect_urls[index - 1]

    def command() -> list[str]:
        cp = _kafka_classpath()
        for jar in ("debezium-connector-jdbc", "debezium-connector-mariadb"):
            if not any(PLUGIN_DIR.glob(f"*/{jar}-*.jar")):
                raise StackError(f"{jar} missing in {PLUGIN_DIR}: run `make setup`")
        conf = _render(settings, "connect-distributed.properties", f"{name}/connect-distributed.properties",
                       BOOTSTRAP=settings.kafka_bootstrap, GROUP_ID=CONNECT_GROUP, HOST=host, PORT=port,
                       PLUGIN_PATH=PLUGIN_DIR, REPLICATION_FACTOR=min(settings.kafka_brokers, 3))
        # Exactly-once sources (KIP-618): a source task's records and its offsets are written in
        # one transaction, so a worker killed between an offset flush and the next does not
        # replay what it had sent (at-least-once would send a product's older prices again
        # after newer ones: tests/faults/test_products_source_faults.py). Secured: the workers'
        # principal has the transactional ids this needs (stack/acl.py).
        conf.write_text(conf.read_text() + "exactly.once.source.support=enabled\n")
        if settings.secured:
            # Each client of the worker (its own, the tasks' consumers and producers, the admin
            # that creates topics) logs in as the Connect principal; the password is read from
            # SECRETS_FILE by FileConfigProvider, not written here.
            jaas = accounts.acting_as(settings, accounts.SINK).kafka_jaas_reference()
            sasl = _render(settings, "connect-sasl.properties", f"{name}/connect-sasl.properties",
                           PROTOCOL=settings.kafka_security_protocol, MECHANISM=settings.kafka_sasl_mechanism,
                           JAAS=jaas, CA=settings.kafka_ssl_ca)
            conf.write_text(conf.read_text() + sasl.read_text())
        return [_java(settings), *_jvm_options(settings, settings.connect_heap_opts), "-cp", cp,
                "org.apache.kafka.connect.cli.ConnectDistributed", str(conf)]

    def healthy() -> bool:
        try:
            status, plugins = rest.call(url, "GET", "/connector-plugins", timeout=3)
            listed = {p.get("class") for p in plugins} if status == 200 else set()
            if not {JDBC_SINK_CLASS, MARIADB_SOURCE_CLASS} <= listed:
                return False
            # /connectors answers only once the herder has joined the group and read its config.
            return rest.call(url, "GET", "/connectors", timeout=3)[0] == 200
        except OSError:  # not listening yet, or timed out
            return False

    return Part(name, port, "CONNECT_PORT", command, healthy, cwd=settings.stack_dir, host=host)


# ---------------------------------------------------------------- the sink's watchdog

def watchdog(settings: Settings) -> Part:
    heartbeat = settings.stack_dir / "run" / "sink-watchdog.alive"

    def command() -> list[str]:
        heartbeat.unlink(missing_ok=True)
        return [sys.executable, "-m", "connect.watchdog"]

    def healthy() -> bool:
        try:
            return time.time() - heartbeat.stat().st_mtime < 30
        except OSError:
            return False

    # Its exporter (connect.exporter) on CONNECT_PORT + METRICS_PORT_OFFSET (a private stack gives a free one).
    metrics_port = settings.metrics_port(settings.connect_port, {})
    return Part("sink-watchdog", 0, "", command, healthy, cwd=ROOT,
                env={**accounts.env_for(settings, accounts.SINK), "METRICS_PORT": str(metrics_port)})


# ---------------------------------------------------------------- Zipkin, the traces

ZIPKIN_DIR = TOOLS_DIR / "zipkin"
ZIPKIN_HEAP = "-Xms64m -Xmx512m"
# In memory, the oldest traces go first. 50,000 spans (about 6,000 orders' traces) fit its heap:
# with 200,000 of the services' spans (about 1.2 kB of tags each) it ran out of its 512 MB and
# answered 500, then nothing (seen after the cluster's load tests; a load of such spans alone did it too).
ZIPKIN_MAX_SPANS = 50_000


def zipkin(settings: Settings) -> Part:
    """The Zipkin server (io.zipkin:zipkin-server, the course's), in-memory storage, its UI and API on
    ZIPKIN_HOST:ZIPKIN_PORT; healthy when /health answers."""
    def command() -> list[str]:
        jars = sorted(ZIPKIN_DIR.glob("zipkin-server-*-exec.jar"))
        if not jars:
            raise StackError(f"no Zipkin server jar in {ZIPKIN_DIR}: run `make setup`")
        return [_java(settings), *ZIPKIN_HEAP.split(), "-Djava.awt.headless=true", "-jar", str(jars[-1]),
                f"--armeria.ports[0].ip={settings.zipkin_host}", f"--armeria.ports[0].port={settings.zipkin_port}",
                "--armeria.ports[0].protocols=http"]

    return Part("zipkin", settings.zipkin_port, "ZIPKIN_PORT", command,
                lambda: _http_ok(f"{settings.zipkin_url}/health"),
                env={"STORAGE_TYPE": "mem", "MEM_MAX_SPANS": str(ZIPKIN_MAX_SPANS)},
                cwd=settings.stack_dir, host=settings.zipkin_host)


# ---------------------------------------------------------------- Prometheus, the metrics and alerts

SCRAPE_EVERY_S = 5
ALERT_RULES = TEMPLATES / "prometheus-alerts.yml"


def prometheus_targets_dir(settings: Settings) -> Path:
    """Where Prometheus finds what it scrapes (file_sd: a file per group of targets, read again when it
    changes): the stack writes stack.json; a test adds one for a process of its own."""
    return settings.stack_dir / "conf" / "prometheus" / "targets"


def write_targets(settings: Settings, name: str, targets: list[tuple[str, str, str]]) -> Path:
    """targets/<name>.json: each (service, part, host:port) to scrape on /metrics."""
    folder = prometheus_targets_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    groups = [{"targets": [address], "labels": {"service": service, "part": part}}
              for service, part, address in targets]
    temporary = path.with_suffix(".tmp")  # renamed: Prometheus never reads half a file
    temporary.write_text(json.dumps(groups, indent=1) + "\n")
    temporary.replace(path)
    return path


def prometheus(settings: Settings, targets) -> Part:
    """Prometheus (Debian's package), scraping every service and the watchdog's exporter (targets():
    their (service, part, host:port), from the same settings that place them), Zipkin and itself,
    every SCRAPE_EVERY_S, and evaluating the alert rules of stack/config/prometheus-alerts.yml."""
    data = settings.stack_dir / "data" / "prometheus"

    def command() -> list[str]:
        write_targets(settings, "stack", targets())
        zipkin_job = (f"  - job_name: zipkin\n    metrics_path: /prometheus\n    static_configs:\n"
                      f"      - targets: ['{settings.zipkin_host}:{settings.zipkin_port}']\n") if settings.traced else ""
        conf = _render(settings, "prometheus.yml", "prometheus/prometheus.yml", SCRAPE_EVERY=f"{SCRAPE_EVERY_S}s",
                       RULES=ALERT_RULES, SELF=f"{settings.prometheus_host}:{settings.prometheus_port}",
                       TARGETS=prometheus_targets_dir(settings), ZIPKIN_JOB=zipkin_job)
        data.mkdir(parents=True, exist_ok=True)
        return [_system_binary("prometheus"), f"--config.file={conf}", f"--storage.tsdb.path={data}",
                f"--web.listen-address={settings.prometheus_host}:{settings.prometheus_port}",
                "--storage.tsdb.retention.time=2d", "--log.level=warn"]

    return Part("prometheus", settings.prometheus_port, "PROMETHEUS_PORT", command,
                lambda: _http_ok(f"{settings.prometheus_url}/-/ready"), cwd=settings.stack_dir,
                host=settings.prometheus_host)
