"""What a failed message handler tells the consumer: retry it later, or dead-letter it now.

A handler raises PermanentError for a message that can never succeed (it breaks
the rules, names something that does not exist): the consumer dead-letters it at
once. It raises TransientError for a failure that passes with time (database
down, lock wait timeout, deadlock): the consumer retries the same message until
it passes. Any other exception counts as transient, by decision: dead-lettering a
message that could succeed later silently breaks the sync, whereas a consumer
stuck on one message is visible (health NOT_SERVING, growing lag) and heals by
itself once the cause is gone.
"""

import random

from bus.envelope import EnvelopeError


class PermanentError(Exception):
    """This message can never succeed: dead-letter it with this reason."""


class TransientError(Exception):
    """This message failed for now and should pass later: retry it."""


def is_permanent(error: BaseException) -> bool:
    """Whether `error` means the message goes to the dead-letter topic (undecodable ones do)."""
    return isinstance(error, (PermanentError, EnvelopeError))


def backoff_delay(attempt: int, first: float, cap: float, rand=random.random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...).

    "Full jitter": uniform between 0 and first * 2**(attempt - 1), capped at
    `cap`, so that many consumers failing together do not retry in lockstep.
    """
    ceiling = min(cap, first * 2 ** min(attempt - 1, 32))  # no float overflow after days
    return rand() * ceiling
