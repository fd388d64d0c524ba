"""A private stack or cluster (a stack.topology.Topology) as a session fixture."""

import os

import pytest

from connect import register
from stack.process import StackError


def session_topology(topology, what: str):
    """Yield `topology` once it is up, for a session fixture. A start that fails fails the
    tests with its reason (not an error per test); it is destroyed afterwards unless
    KEEP_TEST_STACK is set."""
    try:
        try:
            topology.up()
        except (StackError, register.ConnectorError) as err:
            pytest.fail(f"the tests' private {what} did not come up: {err}", pytrace=False)
        yield topology
    finally:
        if os.environ.get("KEEP_TEST_STACK"):
            print(f"\nkept the test {what} in {topology.settings.stack_dir}")
        else:
            topology.destroy()
