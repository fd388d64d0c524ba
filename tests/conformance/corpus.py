"""The conformance corpus (order_placed.jsonl, written by build_corpus.py) as the tests read it."""

import base64
import dataclasses
import json
import secrets
import string
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "order_placed.jsonl"
PRODUCTS = {"CONF-A": 100, "CONF-B": 2500}  # what the catalog must hold for the corpus (unit prices)
TOKEN = b"RUN00"


@dataclasses.dataclass(frozen=True)
class Record:
    case: str
    cls: str
    what: str
    key: str
    value: bytes | None
    verdict: str
    reason: str | None
    words: str | None
    event: dict | None

    def __str__(self) -> str:
        return f"{self.case} [{self.cls}] {self.what}"


def records(token: bytes = TOKEN) -> list[Record]:
    """Every record in file order; `token` (5 characters of [A-Z0-9]) replaces RUN00 in ids, so
    that a run on a shared stack has order ids of its own."""
    assert len(token) == len(TOKEN) and token.isalnum() and token.upper() == token, token
    out = []
    for line in CORPUS.read_text().splitlines():
        d = json.loads(line)
        if "base64" in d:
            value = base64.b64decode(d["base64"])
        else:
            value = None if d["text"] is None else d["text"].encode("utf-8")
        if value is not None:
            value = value.replace(TOKEN, token)
        event = d.get("event")
        if event is not None:
            event = {**event, "order_id": event["order_id"].replace(TOKEN.decode(), token.decode())}
        out.append(Record(d["case"], d["class"], d["what"], d["key"].replace(TOKEN.decode(), token.decode()),
                          value, d["verdict"], d.get("reason"), d.get("words"), event))
    return out


def fresh_token() -> bytes:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(len(TOKEN))).encode()


def by_case(recs: list[Record]) -> dict[str, list[Record]]:
    cases: dict[str, list[Record]] = {}
    for r in recs:
        cases.setdefault(r.case, []).append(r)
    return cases
