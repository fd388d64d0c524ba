"""An Order instance whose every publish is held until its test lets it go, for
tests/integration/test_shutdown.py only (never started by the stack): calls stay in flight,
inside CreateOrder, for as long as the test wants.

    .venv/bin/python -m tests.support.held_order        (an Order instance's environment)

SIGUSR1 lets the held publishes go; each then publishes through the real producer. The instance
logs one line per call held ("publish held") and one when it goes on ("released by SIGUSR1", or
"released by the bound" after HOLD_S), which is how the test counts them.
"""

import logging
import signal
import threading

from order_svc.server import serve
from tests.doubles import HeldProducer

HOLD_S = 120  # only keeps a broken test from hanging: the test releases the calls long before
HELD, BY_SIGNAL, BY_BOUND = "publish held", "released by SIGUSR1", "released by the bound"

log = logging.getLogger("held_order")


def held(producer) -> HeldProducer:
    release = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: release.set())
    return HeldProducer(
        producer, release, HOLD_S,
        on_held=lambda event: log.info("order %s: %s", event.order_id, HELD),
        on_released=lambda event, by_release: log.info("order %s: %s", event.order_id,
                                                       BY_SIGNAL if by_release else BY_BOUND))


if __name__ == "__main__":
    serve(publish_through=held)
