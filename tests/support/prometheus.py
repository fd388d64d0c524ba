"""Asking a stack's Prometheus (its HTTP API), as the alert tests do: every answer checked."""

import json
import urllib.parse
import urllib.request

from ordersync.config import Settings


def prometheus(settings: Settings, path: str, **params) -> dict:
    """The "data" of one answer of Prometheus's HTTP API (/api/v1/...); anything but success fails."""
    url = f"{settings.prometheus_url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.load(reply)
    assert body["status"] == "success", f"{url}: {body}"
    return body["data"]


def query(settings: Settings, expression: str) -> list[dict]:
    """The instant vector of a PromQL expression: [{"metric": {...}, "value": [time, "text"]}]."""
    return prometheus(settings, "/api/v1/query", query=expression)["result"]


def alerts(settings: Settings, alertname: str, state: str | None = None, **labels: str) -> list[dict]:
    """The active alerts of that name whose labels include `labels`: pending or firing, or in `state`."""
    return [a for a in prometheus(settings, "/api/v1/alerts")["alerts"]
            if a["labels"].get("alertname") == alertname and all(a["labels"].get(k) == v for k, v in labels.items())
            and state in (None, a["state"])]
