"""A service's metrics, scraped once from its exporter (the demo and the tests read them)."""

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from ordersync.config import Settings
from stack.process import Part


class Scraped(dict):
    """A service's metrics, one scrape: {(sample name, frozenset of labels): value}."""

    def value(self, name: str, **labels) -> float | None:
        return self.get((name, frozenset(labels.items())))

    def samples(self, name: str) -> dict[frozenset, float]:
        return {labels: v for (n, labels), v in self.items() if n == name}


def scrape(part: Part) -> Scraped:
    """GET /metrics of a service part: on METRICS_PORT (private stacks), else its port + the offset."""
    port = Settings.from_env(part.env).metrics_port(part.port, part.env)  # as the process reads its own
    with urllib.request.urlopen(f"http://{part.host}:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return Scraped({(s.name, frozenset(s.labels.items())): s.value
                    for family in text_string_to_metric_families(text) for s in family.samples})


def view_read_past(part: Part, since: float) -> bool:
    """Whether an Order instance's product view has read its whole topic as it was at `since`
    (time.monotonic() of this process), by its ordersync_product_view_behind_seconds: the view
    held all of the topic `behind` seconds before the scrape, so `behind` <= (asked - since)
    means after `since`. Only durations are compared, each on its own process's clock."""
    asked = time.monotonic()
    behind = scrape(part).value("ordersync_product_view_behind_seconds")
    return behind is not None and behind <= asked - since
