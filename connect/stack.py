"""Starts, stops and reports the local stack: MariaDB, one Kafka broker, one Connect worker.

    python -m connect.stack up|down|status

Each part is a plain background process bound to 127.0.0.1 with its data and
log under .stack/ and its pid in .stack/run/<part>.pid. `up` starts only what
is down and waits until each part is really healthy; `down` stops only the
processes recorded there.
"""
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Callable

from connect import rest, settings

RUN_DIR = settings.STACK_DIR / "run"
LOG_DIR = settings.STACK_DIR / "logs"
CONF_DIR = settings.STACK_DIR / "conf"
KAFKA_LIBS = settings.STACK_DIR / "kafka" / "libs"
PLUGIN_DIR = settings.STACK_DIR / "plugins"

# Processes this Python process started, so that their exit is noticed (and reaped) at once.
_children: dict[str, subprocess.Popen] = {}


class StackError(Exception):
    """A part of the stack could not be started or is misconfigured."""


@dataclass
class Part:
    name: str
    port: int
    env_var: str               # the variable that moves its port
    cmdline_marker: str        # program or main class expected in /proc/<pid>/cmdline
    prepare: Callable[[], list[str]]   # writes config, returns the command line
    healthy: Callable[[], bool]

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return LOG_DIR / f"{self.name}.log"


# ---------------------------------------------------------------- helpers

def _render(template_name: str, target: Path, **values) -> Path:
    text = Template((settings.CONFIG_TEMPLATES / template_name).read_text()).substitute(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def _port_open(port: int, host: str = settings.HOST) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _read_pid(part: Part) -> int | None:
    try:
        return int(part.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_alive(part: Part, pid: int) -> bool:
    """True if pid is a live (not zombie) process running this part of *this* stack."""
    child = _children.get(part.name)
    if child is not None and child.pid == pid:
        # Our own child: poll() also reaps it, and right after the fork its cmdline
        # is still Python's, so the marker check below would be wrong.
        return child.poll() is None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    # Every part is started with a config file from our CONF_DIR: that tells our
    # processes from a reused pid or from a stack started in another folder.
    return state not in ("Z", "X") and part.cmdline_marker in cmdline and str(CONF_DIR) in cmdline


def _running_pid(part: Part) -> int | None:
    """The recorded pid if that process still runs; removes a stale pid file."""
    pid = _read_pid(part)
    if pid is None:
        return None
    if _pid_alive(part, pid):
        return pid
    part.pid_file.unlink(missing_ok=True)
    return None


def _log_tail(part: Part, lines: int = 40) -> str:
    try:
        return "\n".join(part.log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _say(message: str) -> None:
    print(message, flush=True)


def _java() -> str:
    java = Path(settings.JAVA_HOME) / "bin" / "java"
    if java.exists():
        return str(java)
    found = shutil.which("java")
    if not found:
        raise StackError("java not found: set JAVA_HOME to a Java 17+ JDK")
    return found


def _kafka_classpath() -> str:
    if not any(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        raise StackError(f"no Kafka jars in {KAFKA_LIBS}: run `make jars` (connect/fetch_jars.sh)")
    return f"{KAFKA_LIBS}/*"


def _jvm_options(heap: str) -> list[str]:
    log4j = _render("log4j2.properties", CONF_DIR / "log4j2.properties")
    return [*heap.split(), "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={LOG_DIR}"]


# ---------------------------------------------------------------- MariaDB

MARIADB_DIR = settings.STACK_DIR / "mariadb"


def _system_binary(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")
    if not found:
        raise StackError(f"{name} not found: run `make system` (connect/install_system.sh)")
    return found


def _as_root() -> list[str]:
    # mariadbd refuses to run as root unless told to; our datadir is root's anyway.
    return ["--user=root"] if os.geteuid() == 0 else []


def _prepare_mariadb() -> list[str]:
    datadir = MARIADB_DIR / "data"
    if not (datadir / "mysql").is_dir():
        _say(f"mariadb: initialising datadir {datadir}")
        shutil.rmtree(datadir, ignore_errors=True)
        datadir.mkdir(parents=True)
        result = subprocess.run(
            [_system_binary("mariadb-install-db"), f"--datadir={datadir}", "--skip-test-db",
             "--auth-root-authentication-method=socket", *_as_root()],
            capture_output=True, text=True, timeout=settings.STARTUP_TIMEOUT)
        if result.returncode != 0:
            shutil.rmtree(datadir, ignore_errors=True)
            raise StackError(f"mariadb-install-db failed:\n{result.stdout}\n{result.stderr}")
    init_file = _render("mariadb-init.sql", CONF_DIR / "mariadb-init.sql",
                        USER=settings.MARIADB_USER,
                        PASSWORD=settings.MARIADB_PASSWORD.replace("'", "''"))
    init_file.chmod(0o600)
    cnf = _render("my.cnf", CONF_DIR / "my.cnf",
                  DATADIR=datadir, SOCKET=RUN_DIR / "mariadb.sock",
                  PIDFILE=MARIADB_DIR / "mariadbd.pid", PORT=settings.MARIADB_PORT,
                  LOGFILE=LOG_DIR / "mariadb.log", INIT_FILE=init_file)
    # --defaults-file must come first; log-error writes into the part's log file.
    return [_system_binary("mariadbd"), f"--defaults-file={cnf}", *_as_root()]


def _mariadb_healthy() -> bool:
    import pymysql
    try:
        conn = pymysql.connect(host=settings.MARIADB_HOST, port=settings.MARIADB_PORT,
                               user=settings.MARIADB_USER, password=settings.MARIADB_PASSWORD,
                               database="orders_db", connect_timeout=2)
    except pymysql.MySQLError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    finally:
        conn.close()


# ---------------------------------------------------------------- Kafka broker

KAFKA_DATA = settings.STACK_DIR / "kafka" / "data"
CLUSTER_ID_FILE = settings.STACK_DIR / "kafka" / "cluster.id"


def _cluster_id() -> str:
    if CLUSTER_ID_FILE.exists():
        return CLUSTER_ID_FILE.read_text().strip()
    # Like Kafka's Uuid.randomUuid(): 16 random bytes, base64url without padding,
    # never starting with '-' (it would read as a command-line option).
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    CLUSTER_ID_FILE.write_text(cluster_id + "\n")
    return cluster_id


def _prepare_kafka() -> list[str]:
    cp = _kafka_classpath()
    conf = _render("server.properties", CONF_DIR / "server.properties",
                   PORT=settings.KAFKA_PORT, CONTROLLER_PORT=settings.KAFKA_CONTROLLER_PORT,
                   DATA_DIR=KAFKA_DATA)
    if not (KAFKA_DATA / "meta.properties").exists():
        _say(f"kafka: formatting storage {KAFKA_DATA}")
        KAFKA_DATA.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [_java(), "-Xmx256m", "-cp", cp, "kafka.tools.StorageTool", "format",
             f"--cluster-id={_cluster_id()}", f"--config={conf}", "--ignore-formatted"],
            capture_output=True, text=True, timeout=settings.STARTUP_TIMEOUT)
        if result.returncode != 0:
            raise StackError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")
    return [_java(), *_jvm_options(settings.KAFKA_HEAP_OPTS), "-cp", cp,
            "kafka.Kafka", str(conf)]


def _kafka_healthy() -> bool:
    if not _port_open(settings.KAFKA_PORT):
        return False
    from confluent_kafka.admin import AdminClient
    from confluent_kafka import KafkaException
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP, "log_level": 0})
    try:
        return len(admin.list_topics(timeout=3).brokers) > 0
    except KafkaException:
        return False


# ---------------------------------------------------------------- Kafka Connect

def _prepare_connect() -> list[str]:
    cp = _kafka_classpath()
    if not any(PLUGIN_DIR.glob("*/debezium-connector-jdbc-*.jar")):
        raise StackError(f"Debezium JDBC sink missing in {PLUGIN_DIR}: run `make jars`")
    conf = _render("connect-distributed.properties", CONF_DIR / "connect-distributed.properties",
                   BOOTSTRAP=settings.KAFKA_BOOTSTRAP, GROUP_ID=settings.CONNECT_GROUP_ID,
                   PORT=settings.CONNECT_PORT, PLUGIN_PATH=PLUGIN_DIR)
    return [_java(), *_jvm_options(settings.CONNECT_HEAP_OPTS), "-cp", cp,
            "org.apache.kafka.connect.cli.ConnectDistributed", str(conf)]


def _connect_healthy() -> bool:
    try:
        status, plugins = rest.call("GET", "/connector-plugins", timeout=3)
        if status != 200 or not any(p.get("class") == settings.JDBC_SINK_CLASS for p in plugins):
            return False
        # /connectors answers only once the herder has joined the group and read its config.
        return rest.call("GET", "/connectors", timeout=3)[0] == 200
    except OSError:  # not listening yet, or timed out
        return False


# ---------------------------------------------------------------- the parts, in start order

PARTS = [
    Part("mariadb", settings.MARIADB_PORT, "MARIADB_PORT", "mariadbd",
         _prepare_mariadb, _mariadb_healthy),
    Part("kafka", settings.KAFKA_PORT, "KAFKA_PORT", "kafka.Kafka",
         _prepare_kafka, _kafka_healthy),
    Part("connect", settings.CONNECT_PORT, "CONNECT_PORT", "ConnectDistributed",
         _prepare_connect, _connect_healthy),
]


def _fail(part: Part, why: str) -> StackError:
    return StackError(f"{part.name} {why}\n--- last lines of {part.log_file} ---\n{_log_tail(part)}")


def _wait_healthy(part: Part, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if part.healthy():
            return
        if not _pid_alive(part, pid):
            part.pid_file.unlink(missing_ok=True)
            raise _fail(part, f"exited during startup (pid {pid})")
        if time.monotonic() > deadline:
            raise _fail(part, f"not healthy after {timeout:.0f}s (pid {pid} left running: "
                              f"`python -m connect.stack down` stops it, `up` waits again)")
        time.sleep(0.5)


def _start(part: Part, timeout: float) -> None:
    if _port_open(part.port):
        raise StackError(
            f"{part.name}: port {part.port} is already in use by a process this stack did not "
            f"start (a system service, or a stack from another folder). Stop it, or set "
            f"{part.env_var} to a free port.")
    for d in (RUN_DIR, LOG_DIR, CONF_DIR):
        d.mkdir(parents=True, exist_ok=True)
    cmd = part.prepare()
    if part.log_file.exists():
        part.log_file.replace(part.log_file.with_suffix(".log.1"))
    with open(part.log_file, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=settings.STACK_DIR,
                                start_new_session=True)  # survives our exit and Ctrl-C
    _children[part.name] = proc
    part.pid_file.write_text(f"{proc.pid}\n")
    _say(f"{part.name}: started pid {proc.pid} on 127.0.0.1:{part.port}, "
         f"waiting until healthy (log {part.log_file})")
    _wait_healthy(part, proc.pid, timeout)


def up(timeout: float = settings.STARTUP_TIMEOUT) -> None:
    """Start whatever part is down and wait until all are healthy. Raises StackError."""
    settings.STACK_DIR.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        began = time.monotonic()
        pid = _running_pid(part)
        if pid is None:
            _start(part, timeout)
        elif not part.healthy():
            _say(f"{part.name}: running (pid {pid}) but not healthy yet, waiting")
            _wait_healthy(part, pid, timeout)
        _say(f"{part.name}: healthy on 127.0.0.1:{part.port} "
             f"({time.monotonic() - began:.1f}s)")


def _stop(part: Part, grace: float = 30) -> None:
    pid = _running_pid(part)
    if pid is None:
        _say(f"{part.name}: not running")
        return
    _say(f"{part.name}: stopping pid {pid}")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # it went away on its own just now
        pass
    deadline = time.monotonic() + grace
    while _pid_alive(part, pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _pid_alive(part, pid):
        _say(f"{part.name}: still running after {grace:.0f}s, killing")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while _pid_alive(part, pid):
            time.sleep(0.1)
    part.pid_file.unlink(missing_ok=True)
    _children.pop(part.name, None)


def down() -> None:
    """Stop the processes recorded in .stack/run/, Connect first, MariaDB last."""
    for part in reversed(PARTS):
        _stop(part)


def status() -> dict:
    """Print and return each part's state, and each connector's and task's state."""
    report = {}
    for part in PARTS:
        pid = _running_pid(part)
        healthy = pid is not None and part.healthy()
        report[part.name] = {"pid": pid, "port": part.port, "healthy": healthy}
        state = "healthy" if healthy else ("running, NOT healthy" if pid else "stopped")
        _say(f"{part.name:8} {state:20} pid {pid or '-':<8} 127.0.0.1:{part.port}")
    if report["connect"]["healthy"]:
        try:
            _, connectors = rest.call("GET", "/connectors?expand=status")
        except OSError as err:
            _say(f"connectors: could not list them: {err}")
            connectors = {}
        report["connectors"] = {}
        for name, info in sorted((connectors or {}).items()):
            st = info["status"]
            tasks = {t["id"]: t["state"] for t in st.get("tasks", [])}
            report["connectors"][name] = {"state": st["connector"]["state"], "tasks": tasks}
            task_text = ", ".join(f"task {i} {s}" for i, s in sorted(tasks.items())) or "no tasks"
            _say(f"connector {name}: {st['connector']['state']} ({task_text})")
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("up", "down", "status"):
        print("usage: python -m connect.stack up|down|status", file=sys.stderr)
        return 2
    try:
        if argv[0] == "up":
            up()
        elif argv[0] == "down":
            down()
        else:
            report = status()
            return 0 if all(report[p.name]["healthy"] for p in PARTS) else 1
    except (StackError, subprocess.TimeoutExpired) as err:
        print(f"stack {argv[0]} failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
