"""How long a stack takes to start: from nothing, when it is already up (warm), and after a stop (cold).

It runs on a stack of its own (own data dir and free ports), never on the one `make run`
uses nor on the tests' shared one. The figures are printed, not asserted: on a busy
2-core machine they vary too much to compare.
"""
import time

from stack.topology import Topology


def timed(action) -> float:
    began = time.monotonic()
    action()
    return time.monotonic() - began


def test_start_from_nothing_warm_and_cold(capsys):
    topo = Topology.private(orders=0)
    try:
        first = timed(topo.infra_up)
        warm = timed(topo.infra_up)
        stopping = timed(topo.down)
        assert all(part["pid"] is None for part in topo.status())
        cold = timed(topo.infra_up)
        infra = {part.name for part in topo.infra}
        report = [part for part in topo.status() if part["name"] in infra]
        assert len(report) == len(infra) and all(part["healthy"] for part in report), report
    finally:
        topo.destroy()
    assert not topo.settings.stack_dir.exists()
    with capsys.disabled():
        print(f"\nstack up from nothing {first:.1f}s, warm {warm:.2f}s, down {stopping:.1f}s, "
              f"cold {cold:.1f}s (each includes the tables and the RUNNING connector)")
