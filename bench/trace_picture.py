"""The README's picture of one order's trace: placed with the command line on the running stack
(`make run`'s, or the settings' in the environment), followed with `ordersync trace` (which adds the
row-landing span), then Zipkin's own UI taken by Debian's Chromium, headless.

    make trace-picture                       (installs chromium first)
    .venv/bin/python bench/trace_picture.py [--out bench/results/zipkin-trace.png]

Prints the order id, the trace's URL and the journey; writes the PNG.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from ordersync.config import ROOT, Settings

ORDERSYNC = ROOT / ".venv" / "bin" / "ordersync"
OUT = ROOT / "bench" / "results" / "zipkin-trace.png"
# What Chromium needs here: no sandbox as root, and none of its calls home (the network is closed).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1500,900", "--virtual-time-budget=15000"]


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} ... failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    opts = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium is not installed: `make trace-picture` installs it (Debian's package)", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    user_id = f"picture-{uuid.uuid4().hex[:6]}"
    created = run(str(ORDERSYNC), "--json", "--user", user_id, "order", "create", "--product", "CATALOG-002", "--qty", "1")
    order_id = json.loads(created.stdout)["order"]["order_id"]
    journey = run(str(ORDERSYNC), "trace", order_id, "--wait", "60", "--json")
    trace_url = json.loads(journey.stdout)["trace_url"]
    text = run(str(ORDERSYNC), "trace", order_id).stdout
    print(text)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        run(chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={opts.out}", trace_url)
    print(f"order {order_id}: {trace_url}\nwrote {opts.out} (Zipkin at {settings.zipkin_url})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
