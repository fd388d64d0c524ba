"""What an orders-table read costs as the table grows: 10 thousand, 1 million, 10 million rows.

    .venv/bin/python bench/read_cost.py [--sizes 10000,1000000,10000000] [--reads 5000]

On a private MariaDB (only that part of a private topology, with the stack's my.cnf), the stack's
own orders table (stack.schema: its checks, keys and foreign key) is filled with rows whose order
ids are random hex, as uuid5 ids are, spread over 100,000 users. At each size, from this process
through pymysql as the Order service reads:
  - CreateOrder's idempotency read of a new order id (never in the table), one query per id, and
    8 ids per query (order_svc/read_together.py under load);
  - ListOrders' first page of a user (20 newest rows).
Per read: wall time, this client's CPU, MariaDB's CPU, and InnoDB's buffer-pool misses (pages read
from disk or the OS cache). Every size is measured with a 128M buffer pool (the stack's before
round 3; it has 1G now), and the largest again with a 4G one that holds the table (resized online;
the fill runs with 4G, then shrinks the pool back to 128M).
Results: stdout and bench/results/read-cost-<time>.json.
"""

import argparse
import resource
import sys
import time
import uuid

import measure
import pymysql
import sqlalchemy as sa

from stack import schema
from stack.topology import Topology

CHUNK = 500_000  # rows per INSERT ... SELECT
SMALL_POOL = 128 * 1024 * 1024  # innodb_buffer_pool_size of stack/config/my.cnf before round 3 (1G now)
BIG_POOL = 4 * 1024 * 1024 * 1024


def pool(settings, size: int) -> None:
    """Resize InnoDB's buffer pool online, as root through the stack's socket (MariaDB resizes in
    the background: waited for)."""
    conn = pymysql.connect(unix_socket=str(settings.stack_dir / "run" / "mariadb.sock"), user="root")
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SET GLOBAL innodb_buffer_pool_size = {size}")
            deadline = time.monotonic() + 300
            while True:
                cursor.execute("SELECT @@innodb_buffer_pool_size")
                if int(cursor.fetchone()[0]) == size:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"innodb_buffer_pool_size did not become {size} within 300 s")
                time.sleep(0.5)
    finally:
        conn.close()


def fill(settings, engine, table: str, have: int, want: int) -> None:
    """Rows have+1 .. want: order ids MD5 of the row number (random hex), users user-<n % 100000>.
    With a pool that holds the table (random primary keys into a tree larger than the pool are
    slow to insert, and the fill is not what is measured), a transaction per chunk."""
    pool(settings, BIG_POOL)
    for start in range(have, want, CHUNK):
        end = min(want, start + CHUNK)
        with engine.begin() as conn:
            conn.execute(sa.text(
                f"INSERT INTO `{table}` (order_id, user_id, product_id, qty, unit_price, total_price, created_at) "
                f"SELECT MD5(seq), CONCAT('user-', seq % 100000), 'CATALOG-001', 1, 100, 100, "
                f"TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_{start + 1}_to_{end}"))
    pool(settings, SMALL_POOL)


def timed(pid: int, reads: int, work) -> dict:
    """work() `reads` times' worth; per read: wall, client and MariaDB CPU in microseconds."""
    client = resource.getrusage(resource.RUSAGE_SELF)
    server, began = measure.cpu_seconds(pid), time.perf_counter()
    work()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    client_s = after.ru_utime - client.ru_utime + after.ru_stime - client.ru_stime
    return {"wall_us": 1e6 * wall / reads, "client_cpu_us": 1e6 * client_s / reads,
            "mariadb_cpu_us": 1e6 * (measure.cpu_seconds(pid) - server) / reads}


def measure_size(settings, pid: int, engine, reads: int) -> dict:
    table = settings.orders_table
    columns = "order_id, user_id, product_id, qty, unit_price, total_price, created_at"
    conn = pymysql.connect(host=settings.mariadb_host, port=settings.mariadb_port, user=settings.mariadb_user,
                           password=settings.mariadb_password, database=settings.orders_db, autocommit=True)
    cursor = conn.cursor(pymysql.cursors.DictCursor)
    new_ids = [uuid.uuid4().hex for _ in range(reads)]

    def one_by_one():
        for order_id in new_ids:
            cursor.execute(f"SELECT {columns} FROM {table} WHERE order_id = %s", (order_id,))
            cursor.fetchall()

    def eight_at_once():
        for i in range(0, reads, 8):
            cursor.execute(f"SELECT {columns} FROM {table} WHERE order_id IN %s", (tuple(new_ids[i:i + 8]),))
            cursor.fetchall()

    def pages():
        for n in range(reads // 10):
            cursor.execute(f"SELECT {columns} FROM {table} WHERE user_id = %s "
                           "ORDER BY created_at DESC, order_id DESC LIMIT 20", (f"user-{(n * 7919) % 100000}",))
            cursor.fetchall()

    out = {}
    try:
        for name, work, count in (("new id, one per query", one_by_one, reads),
                                  ("new id, 8 per query", eight_at_once, reads),
                                  ("a user's first page (20 rows)", pages, reads // 10)):
            with engine.connect() as c:
                missed = measure.buffer_pool_misses(c)
            out[name] = timed(pid, count, work)
            with engine.connect() as c:
                out[name]["pool_misses_per_read"] = (measure.buffer_pool_misses(c) - missed) / count
    finally:
        conn.close()
    return out


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--sizes", default="10000,1000000,10000000")
    args.add_argument("--reads", type=int, default=5000)
    opts = args.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    results: dict = {"bench": "read_cost", "started": time.strftime("%Y%m%d-%H%M%S"), "machine": measure.machine(),
                     "arguments": vars(opts), "sizes": {}}
    topology = Topology.private(orders=1)
    try:
        settings = topology.settings
        topology.supervisor.ensure_up(topology.mariadb, settings.stack_startup_timeout)
        schema.prepare(settings)
        pid = topology.supervisor.pid(topology.mariadb)
        engine = sa.create_engine(settings.mariadb_url(settings.orders_db))
        have = 0
        for size in sizes:
            began = time.monotonic()
            fill(settings, engine, settings.orders_table, have, size)
            have = size
            with engine.connect() as conn:
                data, index = conn.execute(sa.text(
                    "SELECT data_length, index_length FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name = :t"), {"t": settings.orders_table}).one()
            print(f"{size:>10,} rows (filled in {time.monotonic() - began:.0f} s; {data / 2**20:,.0f} MiB of rows, "
                  f"{index / 2**20:,.0f} MiB of secondary keys):", flush=True)
            runs = {"innodb_buffer_pool_size 128M": measure_size(settings, pid, engine, opts.reads)}
            if size == sizes[-1]:
                pool(settings, BIG_POOL)
                measure_size(settings, pid, engine, opts.reads)  # once to load the pages read
                runs["innodb_buffer_pool_size 4G, warm"] = measure_size(settings, pid, engine, opts.reads)
            results["sizes"][str(size)] = {"data_bytes": data, "index_bytes": index, **runs}
            for pool_size, measured in runs.items():
                for name, m in measured.items():
                    print(f"  {pool_size:34} {name:31} wall {m['wall_us']:7.0f} us, client CPU {m['client_cpu_us']:5.0f} us, "
                          f"MariaDB CPU {m['mariadb_cpu_us']:5.0f} us, pool misses {m['pool_misses_per_read']:.2f}",
                          flush=True)
        engine.dispose()
    finally:
        topology.destroy()
    print(f"wrote {measure.write_results('read-cost', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
