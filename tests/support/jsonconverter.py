"""Envelopes through Kafka Connect's real JsonConverter (tests/java/EnvelopeCheck.java)."""

import json
import shutil
import subprocess

from ordersync.config import ROOT
from stack.infra import KAFKA_LIBS


def envelope_check(envelopes: list[bytes]) -> list[dict]:
    """Each envelope (one line of bytes) through Kafka Connect's real JsonConverter
    (tests/java/EnvelopeCheck.java): its answer per envelope, {"value": ..., "envelope": ...} when
    the converter reads it (and "error" too when it cannot write it back), {"error": ...} when not.
    Needs Java 17 and the jars of `make jars`; missing tools fail the test rather than skip it."""
    assert shutil.which("java"), "java not found"
    assert list(KAFKA_LIBS.glob("connect-json-*.jar")), f"no Kafka jars in {KAFKA_LIBS}: run `make jars`"
    assert all(b"\n" not in e for e in envelopes), "one envelope per line"
    out = subprocess.run(["java", "-cp", f"{KAFKA_LIBS}/*", str(ROOT / "tests" / "java" / "EnvelopeCheck.java")],
                         input=b"\n".join(envelopes) + b"\n", capture_output=True, timeout=120, check=True)
    # split("\n"), not splitlines(): strings may hold U+2028 and friends, raw.
    answers = [json.loads(line) for line in out.stdout.decode().split("\n") if line]
    assert len(answers) == len(envelopes), out.stderr.decode()
    return answers
