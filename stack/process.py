"""The one process supervisor: start, health-gate, stop and kill background processes.

Every part of a stack (MariaDB, the broker, the Connect worker, each service) is
a `Part`: a command, a port and a health check. Its pid file under
<stack_dir>/run/ holds the pid *and* the process start time, so a reused pid, or
a process of another stack, is never taken for ours.
"""

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class StackError(Exception):
    """A part could not be started or stopped, or is misconfigured."""


@dataclass
class Part:
    name: str                           # unique within one stack dir
    port: int                           # 0: it listens on none
    env_var: str                        # the variable that moves its port
    command: Callable[[], list[str]]    # writes what the part needs, returns its command line
    healthy: Callable[[], bool]
    env: dict = field(default_factory=dict)  # extra environment of the process
    cwd: Path | None = None
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def say(message: str) -> None:
    print(message, flush=True)


class Supervisor:
    """Runs the parts of one stack directory: pids in run/, logs in logs/."""

    def __init__(self, stack_dir: Path):
        self.run_dir = Path(stack_dir) / "run"
        self.log_dir = Path(stack_dir) / "logs"
        # Processes this Python process started, so their exit is noticed (and reaped) at once.
        self._children: dict[str, subprocess.Popen] = {}

    def pid_file(self, part: Part) -> Path:
        return self.run_dir / f"{part.name}.pid"

    def log_file(self, part: Part) -> Path:
        return self.log_dir / f"{part.name}.log"

    # ------------------------------------------------------------ state

    def pid(self, part: Part) -> int | None:
        """The recorded pid if that very process still runs; removes a stale pid file."""
        try:
            pid_text, started = self.pid_file(part).read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if self._alive(part.name, pid, started):
            return pid
        self.pid_file(part).unlink(missing_ok=True)
        return None

    def _alive(self, name: str, pid: int, started: str) -> bool:
        child = self._children.get(name)
        if child is not None and child.pid == pid:
            return child.poll() is None  # also reaps it
        stat = _stat(pid)
        return stat is not None and stat[0] not in ("Z", "X") and stat[1] == started

    def port_open(self, part: Part) -> bool:
        import socket
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex((part.host, part.port)) == 0

    def log_tail(self, part: Part, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file(part).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ------------------------------------------------------------ actions

    def ensure_up(self, part: Part, timeout: float) -> None:
        """Start the part unless it runs, then wait until it is healthy. Raises StackError."""
        began = time.monotonic()
        pid = self.pid(part)
        if pid is None:
            pid = self.start(part)
        elif not part.healthy():
            say(f"{part.name}: running (pid {pid}) but not healthy yet, waiting")
        self.wait_healthy(part, pid, timeout)
        say(f"{part.name}: healthy on {part.address} ({time.monotonic() - began:.1f}s)")

    def ensure_all_up(self, parts: list[Part], timeout: float) -> None:
        """ensure_up for parts that only become healthy together (a KRaft quorum): start each
        that does not run, then wait for each."""
        began = time.monotonic()
        pids = [self.pid(part) or self.start(part) for part in parts]
        for part, pid in zip(parts, pids):
            self.wait_healthy(part, pid, max(1.0, timeout - (time.monotonic() - began)))
            say(f"{part.name}: healthy on {part.address} ({time.monotonic() - began:.1f}s)")

    def start(self, part: Part) -> int:
        """Start the part's process (it must not run); returns its pid without waiting."""
        if part.port and self.port_open(part):
            raise StackError(
                f"{part.name}: port {part.port} is already in use by a process this stack did not "
                f"start (a system service, or another stack). Stop it, or set {part.env_var} to a "
                f"free port.")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = part.command()
        log_path = self.log_file(part)
        if log_path.exists():
            log_path.replace(log_path.with_suffix(".log.1"))
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=part.cwd, env={**os.environ, **part.env},
                                    start_new_session=True)  # survives our exit and Ctrl-C
        self._children[part.name] = proc
        self.pid_file(part).write_text(process_token(proc.pid) + "\n")
        say(f"{part.name}: started pid {proc.pid} on {part.address} (log {log_path})")
        return proc.pid

    def wait_healthy(self, part: Part, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not part.healthy():
            if self.pid(part) != pid:
                raise self._failure(part, f"exited during startup (pid {pid})")
            if time.monotonic() > deadline:
                raise self._failure(part, f"not healthy after {timeout:.0f}s (pid {pid} left running: "
                                          "`make stack-down` stops it, `make stack-up` waits again)")
            time.sleep(0.3)

    def stop(self, part: Part, grace: float = 30) -> None:
        """SIGTERM, then SIGKILL if it is still running after `grace` seconds."""
        self.stop_all([part], grace)

    def stop_all(self, parts: list[Part], grace: float = 30) -> None:
        """stop() several parts at once (the nodes of a quorum: stopped one by one, the last
        ones would wait for a majority that is gone)."""
        running = [(part, pid) for part in parts if (pid := self.pid(part)) is not None]
        for part, pid in running:
            say(f"{part.name}: stopping pid {pid}")
            self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for part, pid in running:
            while self.pid(part) == pid and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.pid(part) == pid:
                say(f"{part.name}: still running after {grace:.0f}s, killing")
                self.kill(part)
            self.pid_file(part).unlink(missing_ok=True)
            self._children.pop(part.name, None)

    def wait_exit(self, part: Part, timeout: float) -> int:
        """The exit code of a part this supervisor started (raises TimeoutExpired)."""
        return self._children[part.name].wait(timeout)

    def kill(self, part: Part) -> int | None:
        """kill -9, and wait until it is gone (fault tests use this); returns the pid."""
        pid = self.pid(part)
        if pid is None:
            return None
        self._signal(pid, signal.SIGKILL)
        while self.pid(part) == pid:
            time.sleep(0.05)
        self.pid_file(part).unlink(missing_ok=True)
        return pid

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:  # it went away on its own just now
            pass

    def _failure(self, part: Part, why: str) -> StackError:
        return StackError(f"{part.name} {why}\n--- last lines of {self.log_file(part)} ---\n"
                          f"{self.log_tail(part)}")


def process_token(pid: int | None = None) -> str:
    """"<pid> <start time>" of a process (default: this one): it names that process and no other."""
    pid = pid or os.getpid()
    stat = _stat(pid)
    if stat is None:
        raise StackError(f"process {pid} is gone")
    return f"{pid} {stat[1]}"


def token_alive(token: str) -> bool:
    try:
        pid, started = token.split()
        stat = _stat(int(pid))
    except ValueError:
        return False
    return stat is not None and stat[0] not in ("Z", "X") and stat[1] == started


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process, or None when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], fields[19]
