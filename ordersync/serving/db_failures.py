"""Which MariaDB errors pass with time (bus.failures' taxonomy, for the database): the Catalog's
stock and the gate's state sort what their database answers with it."""

import pymysql
import sqlalchemy as sa

from bus.failures import PermanentError, TransientError

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
