"""The operator tools as an operator runs them: a subprocess with a stack's settings in its
environment and none of the tests' own, as `python -m ops.<tool>` or through make.

    result = run_tool("ops.dead_letters", "list", env=tool_env(cluster.settings))
    result = run_make("status", *cluster_make(cluster.settings))     # make -s status CLUSTER=1 ...
"""

import os
import subprocess
import sys

from ordersync.config import ROOT, Settings
from stack import accounts

# Every variable the settings read: left out of a tool's environment unless a stack's settings give it.
SETTING_VARIABLES = frozenset(Settings().to_env())
# What a make that runs the tests (make test-cluster) passes on: its flags and command-line variables.
OUTER_MAKE = frozenset({"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"})


def clean_env() -> dict[str, str]:
    """This process's environment without any setting (KAFKA_BOOTSTRAP of the shell that started
    the tests, say, would point a tool elsewhere)."""
    return {name: value for name, value in os.environ.items() if name not in SETTING_VARIABLES}


def tool_env(settings: Settings, account: accounts.Account | None = None) -> dict[str, str]:
    """The environment of a tool run on `settings`'s stack: as its admin, or as `account`."""
    return {**clean_env(), **accounts.env_for(settings, account)}


def run_tool(module: str, *args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def cluster_make(settings: Settings) -> list[str]:
    """make's command-line variables that run a tool target on `settings`'s cluster instead of
    .stack/cluster: CLUSTER=1, where the cluster is (CLUSTER_DIR), its ports (CLUSTER_PORTS) and
    the host of each part (CLUSTER_HOSTS: the tests' cluster has a loopback address per part).
    Everything else (its size, SASL_SSL, the admin, the CA and secrets under the dir) is the
    Makefile's own CLUSTER_ENV: what `make cluster-up` makes, and the tests' cluster."""
    ports = {"MARIADB_PORT": settings.mariadb_port, "KAFKA_PORT": settings.kafka_port,
             "KAFKA_CONTROLLER_PORT": settings.kafka_controller_port, "CONNECT_PORT": settings.connect_port,
             "CATALOG_PORT": settings.catalog_port, "ORDER_PORTS": ",".join(map(str, settings.order_ports)),
             "GATE_PORT": settings.gate_port, "ZIPKIN_PORT": settings.zipkin_port,
             "PROMETHEUS_PORT": settings.prometheus_port}
    env = settings.to_env()
    hosts = {name: env[name] for name in ("MARIADB_HOST", "KAFKA_HOSTS", "CONNECT_HOSTS", "GATE_HOSTS",
                                          "CATALOG_HOSTS", "ORDER_HOSTS", "ZIPKIN_HOST", "PROMETHEUS_HOST")}
    return ["CLUSTER=1", f"CLUSTER_DIR={settings.stack_dir}",
            "CLUSTER_PORTS=" + " ".join(f"{name}={value}" for name, value in ports.items()),
            "CLUSTER_HOSTS=" + " ".join(f"{name}={value}" for name, value in hosts.items())]


def run_make(target: str, *variables: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`make -s target VARIABLE=value...` in the project, with no setting in its environment."""
    env = {name: value for name, value in clean_env().items() if name not in OUTER_MAKE}
    return subprocess.run(["make", "-s", "--no-print-directory", target, *variables], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
