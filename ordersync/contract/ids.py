"""The id format every reader and writer accepts (user, product and order ids), checked in one place.

Ids are case-sensitive and compared byte for byte everywhere: "erin" and "Erin" are two users,
"catalog-001" is not the product "CATALOG-001". Python compares with ==; every id column, key
and foreign key in MariaDB has a binary collation (ordersync.contract.sql), so no comparison made by
the database can differ (MariaDB's default collations ignore case and trailing spaces).
"""

import re

MAX_ID_LENGTH = 64
# Also the CHECK constraint of the orders table (stack.schema): keep it plain POSIX ERE.
ID_PATTERN = "[A-Za-z0-9._-]+"
_ID = re.compile(ID_PATTERN)


class InvalidInput(ValueError):
    """A request field is wrong; the message says which and why."""


def check_id(name: str, value: str) -> str:
    if not value:
        raise InvalidInput(f"{name} is required")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInput(f"{name} is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed")
    if not _ID.fullmatch(value):
        raise InvalidInput(f"{name} {value!r} may only contain letters, digits, '.', '_' and '-'")
    return value
