"""The products' change stream as a stack brings it up: the source connector's MariaDB account
checked, the connector (connect/products-source.json) registered, and the stack gated on its
completed snapshot.

RUNNING is not the health of a source: with a grant missing, the Debezium task runs, snapshots
nothing, commits no offset and captures no change. So the gate is what the connector has done:
its committed offsets say the initial snapshot is complete (connect.register.wait_snapshot_done);
only an empty table, which has no snapshot to commit, is gated on RUNNING.
Before registering, the account is tried as the connector will use it (missing_rights), so a
start that cannot work fails at once, naming the grant, instead of after the whole timeout.
"""

import dataclasses
import time
from pathlib import Path

import pymysql

from connect import register
from ordersync.config import Settings
from stack import accounts
from stack.process import StackError

GRANTS_FILE = "stack/config/mariadb-cdc.sql"


def account(settings: Settings) -> Settings:
    """The settings the source connector is registered with: its binlog account catalog_cdc (its
    own password from SECRETS_FILE when secured) and, secured, the workers' Kafka principal, as
    which its own clients (the schema history's) log in."""
    return dataclasses.replace(accounts.acting_as(settings, accounts.CDC), mariadb_user=accounts.CDC.mariadb_user)


def missing_rights(settings: Settings, table: str) -> list[str]:
    """What the account of `settings` (mariadb_user, db_password) lacks to capture `table`
    ("db.table") from the binlog, each named as the grant or setting to add; [] when nothing."""
    user = settings.mariadb_user
    try:
        conn = _connect(settings)
    except pymysql.MySQLError as err:
        return [f"a login: {user} cannot log in to MariaDB at {settings.mariadb_host}:{settings.mariadb_port} "
                f"({err.args[-1]})"]
    missing = []
    try:
        with conn.cursor() as cur:
            database, _, name = table.partition(".")
            try:
                cur.execute(f"SELECT 1 FROM `{database}`.`{name}` LIMIT 1")
            except pymysql.MySQLError:
                missing.append(f"SELECT on {table} (the snapshot reads it; without it the connector "
                               "runs, sees no table and captures nothing)")
            try:
                cur.execute("SHOW MASTER STATUS")
                if cur.fetchone() is None:
                    missing.append("the binlog (log_bin is off: stack/config/my.cnf)")
            except pymysql.MySQLError:
                missing.append("BINLOG MONITOR (SHOW MASTER STATUS: where the binlog is)")
            cur.execute("SELECT @@binlog_format, @@binlog_row_image")
            row_format = cur.fetchone()
            if row_format != ("ROW", "FULL"):
                missing.append(f"binlog_format=ROW and binlog_row_image=FULL (the server has {row_format})")
            cur.execute("SHOW GRANTS")
            grants = " ".join(row[0] for row in cur.fetchall()).upper()
            if not any(g in grants for g in ("REPLICATION SLAVE", "REPLICATION REPLICA", "ALL PRIVILEGES ON *.*")):
                missing.append("REPLICATION SLAVE (the binlog dump)")
    finally:
        conn.close()
    return missing


def has_rows(settings: Settings, table: str) -> bool:
    """Whether `table` ("db.table") has a row, asked as the account of `settings`."""
    database, _, name = table.partition(".")
    conn = _connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT 1 FROM `{database}`.`{name}` LIMIT 1")
            return cur.fetchone() is not None
    finally:
        conn.close()


def _connect(settings: Settings):
    """A connection as the account of `settings` (mariadb_user, db_password), as the connector makes it."""
    return pymysql.connect(host=settings.mariadb_host, port=settings.mariadb_port, user=settings.mariadb_user,
                           password=settings.db_password, connect_timeout=5)


def source_up(settings: Settings, config: dict | str | Path, timeout: float) -> str:
    """Register the source connector of `config` as the account of `settings` and wait until its
    snapshot is complete, all within `timeout`; returns its name. Raises StackError naming what
    is missing (a grant, the binlog) or why it did not get there."""
    deadline = time.monotonic() + timeout
    name, body = register.load(config, settings)
    table = body["table.include.list"]
    missing = missing_rights(settings, table)
    if missing:
        raise StackError(f"source connector {name}: the MariaDB account {settings.mariadb_user} lacks "
                         f"{'; '.join(missing)} ({GRANTS_FILE})")
    try:
        register.register(config, settings, timeout=max(1.0, deadline - time.monotonic()))
        if not has_rows(settings, table):
            # Nothing to snapshot, so nothing committed to gate on (the worker commits offsets only
            # with records): RUNNING is all there is. The first row's record commits the position.
            return name
        register.wait_snapshot_done(settings.connect_url, name, max(1.0, deadline - time.monotonic()))
    except register.ConnectorError as err:
        missing = missing_rights(settings, table)  # lost since the check? name it
        cause = f"; the account {settings.mariadb_user} now lacks {'; '.join(missing)}" if missing else ""
        raise StackError(f"source connector {name}: {err}{cause}") from err
    return name
