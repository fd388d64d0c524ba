"""Load through a fault and count: the opening every fault and node-loss test shares.

load_through_fault runs an OrderLoad on the Order instances, injects a fault and recovers from
it (functions given, e.g. a PartFault's), lets the load go on, waits until every acknowledged
order is in the table and the stock, checks that every service still runs, prints one row of
the fault table and returns the ledger and the times. The test asserts the counts.
"""

import dataclasses
import os
import signal
import time
from collections.abc import Callable

from stack.topology import Topology
from tests.support.ledger import settled_ledger
from tests.support.load import OrderLoad
from tests.support.tables import stock_of


@dataclasses.dataclass
class PartFault:
    """A part of a topology lost and brought back: "kill" (kill -9, the supervisor starts it
    again), "term" (SIGTERM with a grace period, then started again) or "freeze" (SIGSTOP, then
    SIGCONT and healthy again). `timeout`: how long it may take to be back."""

    topology: Topology
    name: str
    how: str = "kill"
    timeout: float = 180

    def inject(self) -> None:
        supervisor, part = self.topology.supervisor, self.topology.part(self.name)
        if self.how == "kill":
            assert supervisor.kill(part), f"{self.name} was not running"
        elif self.how == "term":
            supervisor.stop(part, grace=30)
        else:
            pid = supervisor.pid(part)
            assert pid, f"{self.name} was not running"
            os.kill(pid, signal.SIGSTOP)

    def recover(self) -> None:
        supervisor, part = self.topology.supervisor, self.topology.part(self.name)
        if self.how == "freeze":
            pid = supervisor.pid(part)
            assert pid, f"{self.name} is gone while frozen"
            os.kill(pid, signal.SIGCONT)
            supervisor.wait_healthy(part, pid, timeout=self.timeout)
        else:
            supervisor.ensure_up(part, timeout=self.timeout)


@dataclasses.dataclass
class FaultRun:
    """What load_through_fault saw; times are time.monotonic()."""

    load: OrderLoad
    ledger: dict  # tests.support.ledger.sync_ledger, once settled
    injected_at: float = 0.0  # the fault injected
    acked_while_down: int = 0  # orders acknowledged between the fault and the recovery
    longest_pause: float = 0.0  # the longest time without an acknowledgement in that while
    recovered_at: float = 0.0  # the recovery done
    stopped_at: float = 0.0  # the load stopped
    settled_at: float = 0.0  # every acknowledged order in the table and the stock (or the deadline)
    row: str = ""  # what was printed


def ledger_row(label: str, ledger: dict, refused: dict) -> str:
    """The counts of a row of a fault table."""
    return (f"{label:26} | acked {ledger['acked']:5} | lost {ledger['lost']} | dup {ledger['duplicated']} | "
            f"missing {ledger['missing']} | double {ledger['double']} | refused {sum(refused.values()):4}")


def load_through_fault(topology: Topology, product_id: str, label: str, fault: Callable[[], object],
                       recovery: Callable[[], object], *, capsys, before_s: float, down_s: float, after_s: float,
                       settle_s: float, while_down: Callable[[], object] | None = None,
                       figures: Callable[[FaultRun], list[str]] = lambda run: [], clients: int = 4,
                       healthy_within: float | None = None) -> FaultRun:
    """`clients` place 1-unit orders of product_id on every Order instance: for before_s, then
    fault() and while_down() (e.g. wait until the others took over), down_s more, recovery(),
    after_s more. Then the ledger once settled (settle_s at the most), every service still
    running (and healthy within `healthy_within` seconds, if given), and one row printed: the
    counts, then `figures(run)`, each after a " | "."""
    settings, supervisor = topology.settings, topology.supervisor
    before = stock_of(settings, product_id)
    with OrderLoad(topology, product_id, clients=clients) as load:
        run = FaultRun(load, {})
        time.sleep(before_s)
        fault()
        run.injected_at = time.monotonic()
        acked_at_fault = len(load.acked)
        if while_down is not None:
            while_down()
        time.sleep(down_s)
        run.acked_while_down = len(load.acked) - acked_at_fault
        run.longest_pause = load.longest_pause(run.injected_at, time.monotonic())
        recovery()
        run.recovered_at = time.monotonic()
        time.sleep(after_s)
    run.stopped_at = time.monotonic()
    acked = list(load.acked)
    assert acked, f"no order was acknowledged at all ({load.refused})"

    run.ledger = settled_ledger(settings, acked, product_id, before, settle_s)
    run.settled_at = time.monotonic()
    for service in topology.services:  # every service alive (and serving) again
        pid = supervisor.pid(service)
        assert pid, f"{service.name} died"
        if healthy_within is not None:
            supervisor.wait_healthy(service, pid, timeout=healthy_within)
    run.row = ledger_row(label, run.ledger, load.refused) + "".join(f" | {f}" for f in figures(run))
    with capsys.disabled():  # the figures belong in every run's output
        print("\n" + run.row)
    return run
