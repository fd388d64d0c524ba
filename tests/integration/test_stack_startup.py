"""How long `stack up` takes when the stack is already up (warm) and after `down` (cold).

The cold case stops the whole stack and starts it again with its data kept, so it
must leave everything up and the shared connector running for the tests after it.
The numbers go to .stack/startup-times.txt and to the terminal.
"""
import time

import connect.register
import connect.stack
from connect import settings

TIMES_FILE = settings.STACK_DIR / "startup-times.txt"


def timed(action) -> float:
    began = time.monotonic()
    action()
    return time.monotonic() - began


def test_warm_and_cold_start(stack, sink_connector, capsys):
    warm = timed(connect.stack.up)
    stopping = timed(connect.stack.down)
    stopped = connect.stack.status()
    assert all(stopped[part.name]["pid"] is None for part in connect.stack.PARTS), stopped
    cold = timed(connect.stack.up)
    connector_back = timed(lambda: connect.register.wait_running(sink_connector, timeout=120))

    report = connect.stack.status()
    assert all(report[part.name]["healthy"] for part in connect.stack.PARTS), report
    assert report["connectors"][sink_connector]["state"] == "RUNNING", report
    assert warm < cold, (warm, cold)

    line = (f"{time.strftime('%Y-%m-%d %H:%M:%S')}  stack up warm {warm:.2f}s  "
            f"down {stopping:.2f}s  cold {cold:.2f}s  "
            f"{sink_connector} RUNNING again after {connector_back:.2f}s more")
    with TIMES_FILE.open("a") as f:
        f.write(line + "\n")
    with capsys.disabled():
        print(f"\n{line}  (also in {TIMES_FILE})")
