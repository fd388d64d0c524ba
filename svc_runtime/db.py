"""Where the services find MariaDB: one URL built from the same variables as the stack's."""

import os


def mariadb_url(database: str) -> str:
    """SQLAlchemy URL (PyMySQL driver) of `database` on the local stack's MariaDB by default."""
    return "mysql+pymysql://{user}:{password}@{host}:{port}/{database}".format(
        user=os.environ.get("MARIADB_USER", "ordersync"),
        password=os.environ.get("MARIADB_PASSWORD", "ordersync"),
        host=os.environ.get("MARIADB_HOST", "127.0.0.1"),
        port=os.environ.get("MARIADB_PORT", "3306"),
        database=database,
    )
