"""`make help` lists every target of the Makefile, each on a line of its own."""

import re
import subprocess

from ordersync.config import ROOT


def makefile_targets() -> set[str]:
    """The named targets of the Makefile's rules (not its files, variables or special targets)."""
    rules = re.findall(r"^([A-Za-z][A-Za-z0-9_-]*)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    return set(rules)


def test_help_lists_every_target_once():
    result = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    listed = [line.split()[1] for line in result.stdout.splitlines()]
    assert all(line.startswith("make ") and len(line.split()) > 2 for line in result.stdout.splitlines())
    assert sorted(listed) == sorted(makefile_targets()), set(listed) ^ makefile_targets()
    assert {"setup", "protos", "lint", "unit", "clean", "reset", "go-plugins"} <= set(listed)
