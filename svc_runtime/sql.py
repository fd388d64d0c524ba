"""How our rules read in SQL: the id columns, and which database errors pass with time.

Ids are compared byte for byte everywhere (svc_runtime.ids): in Python with ==, in MariaDB by
the collation of every id column, key and foreign key. MariaDB's default collations ignore case
and trailing spaces ('CATALOG-001' = 'catalog-001 '), so an id column must say its own.
"""

import re

import pymysql
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from bus.failures import PermanentError, TransientError
from svc_runtime.ids import MAX_ID_LENGTH

# Binary and NO PAD: equal only when every byte is (ids are ASCII: svc_runtime.ids.ID_PATTERN).
ID_CHARSET, ID_COLLATION = "ascii", "ascii_nopad_bin"
ID_COLUMN_DDL = f"VARCHAR({MAX_ID_LENGTH}) CHARACTER SET {ID_CHARSET} COLLATE {ID_COLLATION}"
IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,64}")


def id_type() -> sa.types.TypeEngine:
    """The SQLAlchemy type of an id column: ID_COLUMN_DDL on MariaDB, a plain (binary-comparing)
    string elsewhere (the unit tests' SQLite)."""
    return sa.String(MAX_ID_LENGTH).with_variant(
        mysql.VARCHAR(MAX_ID_LENGTH, charset=ID_CHARSET, collation=ID_COLLATION), "mysql", "mariadb")


# MariaDB error codes that pass with time: the server comes back, a lock is released.
TRANSIENT_DB_ERRORS = {
    1040: "too many connections",
    1053: "server shutdown in progress",
    1205: "lock wait timeout",
    1213: "deadlock",
    1927: "connection killed",
    2002: "cannot connect",
    2003: "cannot connect",
    2006: "server has gone away",
    2013: "lost connection",
    4031: "disconnected by the server",
}


def db_failure(error: sa.exc.DBAPIError, what: str = "database") -> Exception:
    """What a database error means for the work at hand: TransientError if it passes with time,
    PermanentError for data that can never be stored, else the error itself (which the callers
    treat as transient: a stuck consumer shows, a lost event does not)."""
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    if (error.connection_invalidated or code in TRANSIENT_DB_ERRORS
            or isinstance(error.orig, pymysql.err.InterfaceError)):
        reason = TRANSIENT_DB_ERRORS.get(code, "connection lost") if isinstance(code, int) else "connection lost"
        return TransientError(f"{what}: {reason}: {error.orig}")
    if isinstance(error, (sa.exc.DataError, sa.exc.IntegrityError)):
        return PermanentError(f"{what} refuses it: {error.orig}")
    return error
