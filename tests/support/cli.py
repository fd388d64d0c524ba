"""The `ordersync` command line as a user runs it: the installed console script in a subprocess,
with a stack's settings in its environment (tests.support.tools.tool_env), nothing of the shell's."""

import subprocess

from ordersync.config import ROOT, Settings
from tests.support.tools import tool_env

CLI = ROOT / ".venv" / "bin" / "ordersync"


def cli_env(settings: Settings) -> dict[str, str]:
    """The stack's settings, and no ORDERSYNC_TOKEN of the shell's."""
    assert CLI.exists(), "the console script is missing: `make protos` installs the project"
    env = tool_env(settings)
    env.pop("ORDERSYNC_TOKEN", None)
    return env


def ordersync(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `ordersync *args`; never a traceback on its stderr."""
    result = subprocess.run([str(CLI), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result
