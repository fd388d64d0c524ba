"""Start, check and stop the gRPC services as background processes (pids and logs under .stack/).

    python -m demo.services up | down | status
"""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".stack" / "run"
LOG_DIR = ROOT / ".stack" / "logs"


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port: int
    env: dict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def demo_services() -> list[Service]:
    """One Catalog and two Order instances, on the ports from the environment."""
    catalog_port = int(os.environ.get("CATALOG_PORT", "50061"))
    catalog = Service("catalog", "catalog_svc", catalog_port, {"CATALOG_PORT": str(catalog_port)})
    orders = [
        Service(f"order-{i}", "order_svc", port,
                {"ORDER_PORT": str(port), "ORDER_INSTANCE": f"order-{i}",
                 "CATALOG_ADDRESS": catalog.address})
        for i, port in enumerate(_ports("ORDER_PORTS", "50051,50052"), start=1)
    ]
    return [catalog, *orders]


def _ports(var: str, default: str) -> list[int]:
    return [int(p) for p in os.environ.get(var, default).split(",")]


def _pid_file(svc: Service) -> Path:
    return RUN_DIR / f"{svc.name}.pid"


def running_pid(svc: Service) -> int | None:
    try:
        pid = int(_pid_file(svc).read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def healthy(svc: Service, timeout: float = 1.0) -> bool:
    with grpc.insecure_channel(svc.address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def start(svc: Service, timeout: float = 30.0) -> int:
    """Start the service unless it already runs, then wait until its health check says SERVING."""
    pid = running_pid(svc)
    if pid is None:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"{svc.name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", svc.module], cwd=ROOT, env={**os.environ, **svc.env},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        pid = proc.pid
        _pid_file(svc).write_text(str(pid))
        print(f"  {svc.name}: started (pid {pid}) on {svc.address}", flush=True)
    deadline = time.monotonic() + timeout
    while not healthy(svc):
        if running_pid(svc) is None or _exited(pid):
            raise RuntimeError(f"{svc.name} exited during start-up; last log lines:\n{log_tail(svc)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{svc.name} not healthy on {svc.address} after {timeout:.0f}s; "
                               f"last log lines:\n{log_tail(svc)}")
        time.sleep(0.2)
    return pid


def _exited(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:  # not our child: it was started by an earlier command
        return False


def stop(svc: Service, timeout: float = 20.0) -> None:
    """SIGTERM (the service finishes in-flight calls, flushes and commits), then SIGKILL if it lingers."""
    pid = running_pid(svc)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while running_pid(svc) is not None and not _exited(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if running_pid(svc) is not None and not _exited(pid):
            os.kill(pid, signal.SIGKILL)
        print(f"  {svc.name}: stopped (pid {pid})", flush=True)
    _pid_file(svc).unlink(missing_ok=True)


def log_tail(svc: Service, lines: int = 30) -> str:
    try:
        return "\n".join((LOG_DIR / f"{svc.name}.log").read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    services = demo_services()
    if command == "up":
        for svc in services:
            start(svc)
    elif command == "down":
        for svc in reversed(services):
            stop(svc)
    elif command == "status":
        for svc in services:
            pid = running_pid(svc)
            state = "SERVING" if pid and healthy(svc) else ("running, not serving" if pid else "stopped")
            print(f"  {svc.name:10} {svc.address:18} {state}" + (f" (pid {pid})" if pid else ""))
    else:
        print("usage: python -m demo.services up|down|status", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
