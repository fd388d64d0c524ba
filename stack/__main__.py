"""Start, stop and report the local stack and the services.

    python -m stack up            MariaDB, Kafka, Connect, the tables and the connector
    python -m stack services-up   one Catalog and an Order instance per ORDER_PORTS entry
    python -m stack services-down
    python -m stack down          services, then the stack (Connect first, MariaDB last)
    python -m stack status        each part: pid, port, health; exit 1 if one is down
    python -m stack reset         the demo's data emptied on the running stack (stack/reset.py)

Every setting comes from the environment (ordersync.config): STACK_DIR, the
ports, topic, databases and table; KAFKA_BROKERS, CONNECT_WORKERS, CATALOG_INSTANCES
and the SASL/TLS settings make it a cluster (`make cluster-up` sets them).
"""
import sys

from connect.register import ConnectorError
from ordersync.config import Settings, exits_on_bad_setting
from stack import reset
from stack.process import StackError
from stack.topology import Topology

COMMANDS = ("up", "down", "status", "services-up", "services-down", "reset")


@exits_on_bad_setting
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(f"usage: python -m stack {'|'.join(COMMANDS)}", file=sys.stderr)
        return 2
    topology = Topology(Settings.from_env())
    try:
        if argv[0] == "up":
            topology.infra_up()
        elif argv[0] == "services-up":
            topology.services_up()
        elif argv[0] == "services-down":
            topology.services_down()
        elif argv[0] == "down":
            topology.down()
        elif argv[0] == "reset":
            reset.reset(topology)
        else:
            report = topology.status()
            for part in report:
                state = "healthy" if part["healthy"] else ("running, NOT healthy" if part["pid"] else "stopped")
                print(f"{part['name']:10} {state:20} pid {part['pid'] or '-':<8} {part['address']}")
            return 0 if topology.healthy(report) else 1
    except (StackError, ConnectorError, OSError) as err:
        print(f"stack {argv[0]} failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
