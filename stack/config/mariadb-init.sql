-- Run by mariadbd at every start (init-file): idempotent users, databases and grants.
-- One statement per line.
DELETE FROM mysql.global_priv WHERE User = '';
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS ${ORDERS_DB};
CREATE DATABASE IF NOT EXISTS ${CATALOG_DB};
CREATE DATABASE IF NOT EXISTS ${GATE_DB};
CREATE USER IF NOT EXISTS '${USER}'@'%' IDENTIFIED BY '${PASSWORD}';
CREATE USER IF NOT EXISTS '${USER}'@'localhost' IDENTIFIED BY '${PASSWORD}';
ALTER USER '${USER}'@'%' IDENTIFIED BY '${PASSWORD}';
ALTER USER '${USER}'@'localhost' IDENTIFIED BY '${PASSWORD}';
GRANT ALL PRIVILEGES ON ${ORDERS_DB}.* TO '${USER}'@'%', '${USER}'@'localhost';
GRANT ALL PRIVILEGES ON ${CATALOG_DB}.* TO '${USER}'@'%', '${USER}'@'localhost';
GRANT ALL PRIVILEGES ON ${GATE_DB}.* TO '${USER}'@'%', '${USER}'@'localhost';
GRANT ALL PRIVILEGES ON `ordersync\_test\_%`.* TO '${USER}'@'%', '${USER}'@'localhost';
