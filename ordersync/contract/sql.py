"""How the contract's rules read in SQL: the id columns.

Ids are compared byte for byte everywhere (ordersync.contract.ids): in Python with ==, in MariaDB by
the collation of every id column, key and foreign key. MariaDB's default collations ignore case
and trailing spaces ('CATALOG-001' = 'catalog-001 '), so an id column must say its own.
"""

import re

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from ordersync.contract.ids import MAX_ID_LENGTH

# Binary and NO PAD: equal only when every byte is (ids are ASCII: ordersync.contract.ids.ID_PATTERN).
ID_CHARSET, ID_COLLATION = "ascii", "ascii_nopad_bin"
ID_COLUMN_DDL = f"VARCHAR({MAX_ID_LENGTH}) CHARACTER SET {ID_CHARSET} COLLATE {ID_COLLATION}"
IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,64}")


def id_type() -> sa.types.TypeEngine:
    """The SQLAlchemy type of an id column: ID_COLUMN_DDL on MariaDB, a plain (binary-comparing)
    string elsewhere (the unit tests' SQLite)."""
    return sa.String(MAX_ID_LENGTH).with_variant(
        mysql.VARCHAR(MAX_ID_LENGTH, charset=ID_CHARSET, collation=ID_COLLATION), "mysql", "mariadb")
