"""The gate's state in MariaDB: the first accepted event of every order id, and the catalog's products.

One transaction per batch, before the batch's Kafka transaction: it records the batch's
candidates that are the first of their order id and reads back the first of each. The two
commits are not atomic, and need not be: a candidate whose record is read again (its Kafka
transaction was aborted, or the gate was killed before committing it) finds its own origin
recorded and is accepted again, so the decision for a record never changes.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from bus.failures import TransientError
from ordersync.contract import sql
from ordersync.gate.verdict import Candidate, Content, Origin
from ordersync.serving import db_failures

metadata = sa.MetaData()

first_events = sa.Table(
    "first_events", metadata,
    sa.Column("order_id", sql.id_type(), primary_key=True),
    sa.Column("user_id", sql.id_type(), nullable=False),
    sa.Column("product_id", sql.id_type(), nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Integer, nullable=False),
    sa.Column("total_price", sa.Integer, nullable=False),
    # Where the accepted record is on the orders topic: the same record read again is accepted again.
    sa.Column("origin_topic", sa.String(249), nullable=False),
    sa.Column("origin_partition", sa.Integer, nullable=False),
    sa.Column("origin_offset", sa.BigInteger, nullable=False),
    sa.Column("accepted_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
)


def prepare(engine: sa.Engine) -> None:
    metadata.create_all(engine)


class GateStore:
    """known_products and first_events (gate.verdict) for one batch, in one transaction."""

    def __init__(self, engine: sa.Engine, catalog_db: str):
        if not sql.IDENTIFIER.fullmatch(catalog_db):
            raise ValueError(f"CATALOG_DB {catalog_db!r} is not a plain SQL identifier")
        self._engine = engine
        # Read across databases: both are on one server, as the orders table's foreign key assumes.
        self._products = sa.table("products", sa.column("product_id"), schema=catalog_db)

    def decide(self, decide_batch):
        """Run decide_batch(known_products, first_events) in one transaction; its result.
        Raises TransientError for a database that is down, busy or restarting."""
        try:
            with self._engine.begin() as conn:
                return decide_batch(lambda ids: self._known(conn, ids), lambda cs: self._first(conn, cs))
        except sa.exc.DBAPIError as e:
            failure = db_failures.db_failure(e, "gate database")
            raise failure if isinstance(failure, TransientError) else TransientError(
                f"gate database refuses the batch (retried until it passes): {e.orig}") from e

    def _known(self, conn, product_ids: set[str]) -> set[str]:
        rows = conn.execute(sa.select(self._products.c.product_id)
                            .where(self._products.c.product_id.in_(sorted(product_ids))))
        return set(rows.scalars())

    def _first(self, conn, candidates: list[Candidate]) -> dict[str, tuple[Content, Origin]]:
        rows = [{"order_id": c.event.order_id, **vars(c.content), "origin_topic": c.origin[0],
                 "origin_partition": c.origin[1], "origin_offset": c.origin[2]} for c in candidates]
        # Sorted (stable: the first of an order id in the batch stays first), so that two gates
        # lock the rows in one order; a key recorded before is left as it is.
        insert = mysql.insert(first_events)
        conn.execute(insert.on_duplicate_key_update(order_id=insert.inserted.order_id),
                     sorted(rows, key=lambda r: r["order_id"]))
        # A locking read sees what another gate committed since this transaction's first read.
        found = conn.execute(sa.select(first_events).where(
            first_events.c.order_id.in_({c.event.order_id for c in candidates})).with_for_update())
        return {r.order_id: (Content(r.user_id, r.product_id, r.qty, r.unit_price, r.total_price),
                             (r.origin_topic, r.origin_partition, r.origin_offset)) for r in found}


class ReadOnlyLookups:
    """known_products and first_events as the gate would answer them now, writing nothing (for
    the doctor): an order id not seen yet would be recorded with the candidate's own origin."""

    def __init__(self, engine: sa.Engine, catalog_db: str):
        self._store = GateStore(engine, catalog_db)
        self._engine = engine

    def known_products(self, product_ids: set[str]) -> set[str]:
        with self._engine.connect() as conn:
            return self._store._known(conn, product_ids)

    def first_events(self, candidates: list[Candidate]) -> dict[str, tuple[Content, Origin]]:
        with self._engine.connect() as conn:
            found = conn.execute(sa.select(first_events).where(
                first_events.c.order_id.in_({c.event.order_id for c in candidates})))
            firsts = {r.order_id: (Content(r.user_id, r.product_id, r.qty, r.unit_price, r.total_price),
                                   (r.origin_topic, r.origin_partition, r.origin_offset)) for r in found}
        for c in candidates:
            firsts.setdefault(c.event.order_id, (c.content, c.origin))
        return firsts
