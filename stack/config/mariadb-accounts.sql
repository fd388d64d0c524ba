-- Secured stacks only (appended to mariadb-init.sql): one account per part, least privilege.
-- First each account is created, given its password and stripped of what it had (written by
-- stack/accounts.py), so that a grant removed here is removed from a running stack's accounts too.
${ACCOUNTS}
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
