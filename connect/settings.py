"""Settings of the local stack, read from environment variables with local defaults.

Every other module in connect/ (and the integration tests) takes ports,
paths and credentials from here.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = Path(os.environ.get("STACK_DIR", ROOT / ".stack")).resolve()
CONFIG_TEMPLATES = ROOT / "connect" / "config"

HOST = "127.0.0.1"  # everything binds to loopback only

MARIADB_HOST = os.environ.get("MARIADB_HOST", HOST)
MARIADB_PORT = int(os.environ.get("MARIADB_PORT", "3306"))
MARIADB_USER = os.environ.get("MARIADB_USER", "ordersync")
MARIADB_PASSWORD = os.environ.get("MARIADB_PASSWORD", "ordersync")
MARIADB_DATABASES = ("orders_db", "catalog_db")
# Tests may create and drop databases whose names start with this prefix.
MARIADB_TEST_DB_PREFIX = "ordersync_test_"

KAFKA_PORT = int(os.environ.get("KAFKA_PORT", "9092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("KAFKA_CONTROLLER_PORT", "9093"))
KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", f"{HOST}:{KAFKA_PORT}")

CONNECT_PORT = int(os.environ.get("CONNECT_PORT", "8083"))
CONNECT_URL = os.environ.get("CONNECT_URL", f"http://{HOST}:{CONNECT_PORT}")
CONNECT_GROUP_ID = "ordersync-connect"
JDBC_SINK_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"

JAVA_HOME = os.environ.get("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")
KAFKA_HEAP_OPTS = os.environ.get("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m")
CONNECT_HEAP_OPTS = os.environ.get("CONNECT_HEAP_OPTS", "-Xms256m -Xmx768m")

# Seconds each part may take to become healthy before `up` gives up.
STARTUP_TIMEOUT = float(os.environ.get("STACK_STARTUP_TIMEOUT", "120"))


def sqlalchemy_url(database: str) -> str:
    """SQLAlchemy URL (PyMySQL driver) for one of our databases."""
    return (f"mysql+pymysql://{MARIADB_USER}:{MARIADB_PASSWORD}"
            f"@{MARIADB_HOST}:{MARIADB_PORT}/{database}")


def placeholders() -> dict:
    """Values that connector JSON files may reference as ${NAME}."""
    return {
        "MARIADB_HOST": MARIADB_HOST,
        "MARIADB_PORT": str(MARIADB_PORT),
        "MARIADB_USER": MARIADB_USER,
        "MARIADB_PASSWORD": MARIADB_PASSWORD,
        "KAFKA_BOOTSTRAP": KAFKA_BOOTSTRAP,
    }
