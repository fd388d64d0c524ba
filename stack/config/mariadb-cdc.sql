-- Every stack (appended to mariadb-init.sql): the account the Debezium MariaDB source connector
-- reads the binlog with (connect/products-source.json), with only what it needs:
-- REPLICATION SLAVE: the binlog dump; BINLOG MONITOR (MariaDB's name for REPLICATION CLIENT):
-- SHOW MASTER STATUS / SHOW BINARY LOGS; SELECT for the snapshot. Without SELECT it sees no table,
-- snapshots nothing, runs, and fails at the first change; it needs no RELOAD or LOCK TABLES
-- (snapshot.locking.mode=none). SELECT on products alone is enough, but this file runs before the
-- table exists at a stack's first start, when a table grant fails: database-wide, like the gate's.
CREATE USER IF NOT EXISTS '${CDC_USER}'@'%' IDENTIFIED BY '${CDC_PASSWORD}';
CREATE USER IF NOT EXISTS '${CDC_USER}'@'localhost' IDENTIFIED BY '${CDC_PASSWORD}';
ALTER USER '${CDC_USER}'@'%' IDENTIFIED BY '${CDC_PASSWORD}';
ALTER USER '${CDC_USER}'@'localhost' IDENTIFIED BY '${CDC_PASSWORD}';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM '${CDC_USER}'@'%', '${CDC_USER}'@'localhost';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '${CDC_USER}'@'%', '${CDC_USER}'@'localhost';
GRANT SELECT ON ${CATALOG_DB}.* TO '${CDC_USER}'@'%', '${CDC_USER}'@'localhost';
