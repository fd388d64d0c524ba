"""A minimal client for the Kafka Connect REST API (stdlib only)."""
import json
import urllib.error
import urllib.parse
import urllib.request


def call(base_url: str, method: str, path: str, body: dict | None = None, timeout: float = 10):
    """One REST call; returns (HTTP status, parsed JSON body or text, or None when empty).

    Raises OSError (URLError) only when the worker cannot be reached at all.
    """
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def quote(name: str) -> str:
    """A connector name as a URL path segment."""
    return urllib.parse.quote(name, safe="")
