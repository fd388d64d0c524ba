-- Secured stacks only (appended to mariadb-init.sql): one account per part, least privilege.
-- REVOKE first, so that a grant removed here is removed from a running stack's accounts too.
CREATE USER IF NOT EXISTS '${SINK_USER}'@'%' IDENTIFIED BY '${SINK_PASSWORD}';
CREATE USER IF NOT EXISTS '${SINK_USER}'@'localhost' IDENTIFIED BY '${SINK_PASSWORD}';
ALTER USER '${SINK_USER}'@'%' IDENTIFIED BY '${SINK_PASSWORD}';
ALTER USER '${SINK_USER}'@'localhost' IDENTIFIED BY '${SINK_PASSWORD}';
CREATE USER IF NOT EXISTS '${ORDER_USER}'@'%' IDENTIFIED BY '${ORDER_PASSWORD}';
CREATE USER IF NOT EXISTS '${ORDER_USER}'@'localhost' IDENTIFIED BY '${ORDER_PASSWORD}';
ALTER USER '${ORDER_USER}'@'%' IDENTIFIED BY '${ORDER_PASSWORD}';
ALTER USER '${ORDER_USER}'@'localhost' IDENTIFIED BY '${ORDER_PASSWORD}';
CREATE USER IF NOT EXISTS '${CATALOG_USER}'@'%' IDENTIFIED BY '${CATALOG_PASSWORD}';
CREATE USER IF NOT EXISTS '${CATALOG_USER}'@'localhost' IDENTIFIED BY '${CATALOG_PASSWORD}';
ALTER USER '${CATALOG_USER}'@'%' IDENTIFIED BY '${CATALOG_PASSWORD}';
ALTER USER '${CATALOG_USER}'@'localhost' IDENTIFIED BY '${CATALOG_PASSWORD}';
CREATE USER IF NOT EXISTS '${GATE_USER}'@'%' IDENTIFIED BY '${GATE_PASSWORD}';
CREATE USER IF NOT EXISTS '${GATE_USER}'@'localhost' IDENTIFIED BY '${GATE_PASSWORD}';
ALTER USER '${GATE_USER}'@'%' IDENTIFIED BY '${GATE_PASSWORD}';
ALTER USER '${GATE_USER}'@'localhost' IDENTIFIED BY '${GATE_PASSWORD}';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM '${SINK_USER}'@'%', '${SINK_USER}'@'localhost';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM '${ORDER_USER}'@'%', '${ORDER_USER}'@'localhost';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM '${CATALOG_USER}'@'%', '${CATALOG_USER}'@'localhost';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM '${GATE_USER}'@'%', '${GATE_USER}'@'localhost';
-- The sink writes orders_db only (CREATE/ALTER/INDEX: the sink's schema evolution).
GRANT SELECT, INSERT, UPDATE, CREATE, ALTER, INDEX ON ${ORDERS_DB}.* TO '${SINK_USER}'@'%', '${SINK_USER}'@'localhost';
-- The Order service reads it only.
GRANT SELECT ON ${ORDERS_DB}.* TO '${ORDER_USER}'@'%', '${ORDER_USER}'@'localhost';
-- The Catalog owns catalog_db only.
GRANT ALL PRIVILEGES ON ${CATALOG_DB}.* TO '${CATALOG_USER}'@'%', '${CATALOG_USER}'@'localhost';
-- The gate owns gate_db and reads catalog_db (it asks which products exist). Database-wide:
-- a grant on the products table alone fails here at the first start, before the table exists.
GRANT ALL PRIVILEGES ON ${GATE_DB}.* TO '${GATE_USER}'@'%', '${GATE_USER}'@'localhost';
GRANT SELECT ON ${CATALOG_DB}.* TO '${GATE_USER}'@'%', '${GATE_USER}'@'localhost';
