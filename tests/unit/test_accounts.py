"""A secured stack's MariaDB accounts, as the init file makes them at every start (no server)."""
from string import Template

from ordersync.config import Settings
from stack import accounts
from stack.infra import TEMPLATES


def rendered(tmp_path) -> str:
    s = Settings(stack_dir=tmp_path, kafka_security_protocol="SASL_SSL", kafka_user=accounts.KAFKA_ADMIN,
                 secrets_file=str(accounts.secrets_path(tmp_path)))
    accounts.ensure_secrets(s)
    return Template((TEMPLATES / "mariadb-accounts.sql").read_text()).substitute(accounts.mariadb_grants(s)), s


def test_each_account_is_made_with_its_own_password_and_stripped_of_old_grants_first(tmp_path):
    sql, s = rendered(tmp_path)
    lines = sql.splitlines()
    for account in (accounts.SINK, accounts.ORDER, accounts.CATALOG, accounts.GATE):
        user, password = account.mariadb_user, s.secret(f"mariadb.{account.mariadb_user}")
        for host in ("%", "localhost"):
            assert f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{password}';" in lines
            assert f"ALTER USER '{user}'@'{host}' IDENTIFIED BY '{password}';" in lines
        revoke = lines.index(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{user}'@'%', '{user}'@'localhost';")
        grants = [i for i, line in enumerate(lines) if line.startswith("GRANT") and f"'{user}'@'%'" in line]
        assert grants and min(grants) > revoke, f"{user}: granted again only after the revoke"


def test_one_statement_per_line_as_the_init_file_needs(tmp_path):
    sql, _ = rendered(tmp_path)
    statements = [line for line in sql.splitlines() if line and not line.startswith("--")]
    assert statements and all(line.endswith(";") and line.count(";") == 1 for line in statements)
