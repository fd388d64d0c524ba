"""Whether a consumer is serving, said once per change: to its on_health callback and in one log line.

A consumer stuck retrying (its database down, say) tells its service, which answers NOT_SERVING
to health checks meanwhile: what the service serves no longer follows the topic.
"""

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class Health:
    def __init__(self, on_health: Callable[[bool, str], None] | None = None, serving: bool | None = True,
                 logger: logging.Logger = log):
        """serving=None: not yet (until ready() or stuck()); the lines go to the owner's `logger`."""
        self._on_health = on_health
        self.serving = serving
        self._log = logger

    def ready(self, reason: str) -> None:
        """Serving from now on, whatever it was (a processor registered, say)."""
        self.serving = True
        self._report(True, reason)

    def stuck(self, reason: str) -> None:
        """Not serving: told (and logged as a warning) only when it was serving or not yet."""
        if self.serving is False:
            self._log.debug("%s", reason)
            return
        self.serving = False
        self._log.warning("%s", reason)
        self._report(False, reason)

    def recovered(self, reason: str) -> None:
        """Serving again: told (and logged) only when it was stuck."""
        if self.serving is not False:
            return
        self.serving = True
        self._log.info("%s", reason)
        self._report(True, reason)

    def _report(self, serving: bool, reason: str) -> None:
        if self._on_health is None:
            return
        try:
            self._on_health(serving, reason)
        except Exception:  # a broken callback must not stop the consumption
            self._log.exception("on_health callback failed")
