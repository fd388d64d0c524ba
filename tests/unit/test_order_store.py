"""OrderStore gives up quickly on a MariaDB that does not answer (no server needed)."""

import socket
import threading
import time

import pymysql
import pytest

from order_svc import store as order_store
from order_svc.store import DEFAULT_TIMEOUT_S, OrderStore, StoreUnavailable


@pytest.fixture
def silent_server():
    """Accepts TCP connections and never says a word, like a hung MariaDB."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_hung_database_is_unavailable_within_the_default_bound(silent_server):
    assert 1 <= DEFAULT_TIMEOUT_S <= 2
    store = OrderStore(f"mysql+pymysql://u:p@127.0.0.1:{silent_server}/orders_db")
    outcome = []

    def read():
        started = time.monotonic()
        try:
            store.get("o-1")
        except StoreUnavailable:
            outcome.append(time.monotonic() - started)

    # A thread, so that the test fails instead of hanging when there is no bound.
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(DEFAULT_TIMEOUT_S + 3)
    store.close()
    assert outcome and outcome[0] < DEFAULT_TIMEOUT_S + 1


@pytest.mark.parametrize("error, dead", [
    (pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"), True),
    (pymysql.err.OperationalError(2006, "MySQL server has gone away"), True),
    (pymysql.err.OperationalError(4031, "disconnected by the server because of inactivity"), True),
    (pymysql.err.InterfaceError(0, ""), True),
    (pymysql.err.OperationalError(1054, "Unknown column 'qty'"), False),  # not sunk in that shape yet
    (pymysql.err.OperationalError(1142, "SELECT command denied"), False),
])
def test_only_a_failed_connection_is_discarded_not_one_the_server_answered_on(error, dead):
    assert order_store._client_side(error) is dead
