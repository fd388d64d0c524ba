"""The course's hand-written envelope, as its note has it (part 2, "Using a single database with
Kafka Connect"): the demo publishes it too."""

import json

from ordersync.config import ROOT

COURSE_ENVELOPE = (ROOT / "demo" / "course-envelope.json").read_text()
KEY = ("order_id",)


def corrected_course() -> dict:
    env = json.loads(COURSE_ENVELOPE)
    fields = env["schema"]["fields"]
    fields[0]["type"], fields[3]["field"], fields[5]["field"] = "string", "qty", "unit_price"
    return env
