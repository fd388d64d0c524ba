"""The doctor on the real private stack: what it says is what the gate, the sink and the Catalog do.

An envelope the doctor calls accepted, produced to the orders topic, lands in the orders table and
lowers the stock (the positive control); what it calls refused is refused for the reason it
names; a table that cannot hold the row is named by its column; `make doctor` exits with the
doctor's own code.
"""

import json
import os
import subprocess
import sys
import uuid
from types import SimpleNamespace

import pytest

from bus.envelope import encode
from ops import doctor
from ordersync.config import ROOT
from stack.schema import orders_table_ddl
from stack.topology import free_port
from tests.poisons import valid_event
from tests.support.course import COURSE_ENVELOPE
from tests.support.doctor_db import orders_table_columns
from tests.support.tables import stock_of
from tests.support.waiting import wait_for_row, wait_until

PRODUCT = "CATALOG-001"  # a seed product
UNIT_PRICE = 1500


def our_envelope(tmp_path, order_id: str, product_id: str = PRODUCT, qty: int = 1):
    """A file with our own envelope of an order; the event."""
    event = valid_event(order_id, "doctor-user", product_id, qty=qty, unit_price=UNIT_PRICE)
    path = tmp_path / f"{order_id}-{product_id}-{qty}.json"
    path.write_bytes(encode(event))
    return path, event


def fresh_id() -> str:
    return f"doctor-{uuid.uuid4().hex[:12]}"


def run_doctor(stack, *args, **env) -> subprocess.CompletedProcess:
    """python -m ops.doctor with the stack's settings (and env's changes) in its environment."""
    return subprocess.run([sys.executable, "-m", "ops.doctor", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **stack.to_env(), **env})


def test_the_doctor_reads_the_table_as_the_unit_tests_have_it(stack, orders_db):
    assert doctor.table_columns(orders_db, stack.orders_db, stack.orders_table) == orders_table_columns()


def test_the_course_envelope_fixed_still_lacks_what_the_gate_needs(stack, tmp_path):
    course = tmp_path / "course.json"
    course.write_text(COURSE_ENVELOPE)
    first = run_doctor(stack, "--fix", course)
    assert first.returncode == 1, first.stderr
    fixed = tmp_path / "fixed.json"
    fixed.write_text(first.stdout)
    again = run_doctor(stack, "--fix", fixed)
    assert again.returncode == 1, again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert 'no "created_at"' in again.stderr
    assert "order_id '~~~' may only contain" in again.stderr
    assert "schema name 'orders' does not match 'ordersync.order.v1.OrderPlaced'" in again.stderr


@pytest.fixture(scope="module")
def landed(stack, producer, orders_db, tmp_path_factory):
    """An order of our own the doctor accepts, then produced to the orders topic: what the doctor
    said, and the row and the stock once it has landed."""
    path, event = our_envelope(tmp_path_factory.mktemp("landed"), fresh_id(), qty=2)
    said = run_doctor(stack, path)
    stock_before = stock_of(stack, PRODUCT)
    producer.send(stack.orders_topic, encode(event), key=event.order_id)
    row = wait_for_row(orders_db, f"SELECT * FROM `{stack.orders_table}` WHERE order_id = :o", {"o": event.order_id})
    wait_until(lambda: stock_of(stack, PRODUCT) != stock_before, timeout=60, what=f"the stock of {PRODUCT} to fall")
    return SimpleNamespace(path=path, event=event, said=said, row=row,
                           stock_drop=stock_before - stock_of(stack, PRODUCT))


def test_what_the_doctor_accepts_lands_in_the_table_and_the_stock(landed, stack):
    assert landed.said.returncode == 0, landed.said.stdout + landed.said.stderr
    assert landed.said.stdout.splitlines()[-1] == (
        f"verdict: accepted: the gate passes it to {stack.accepted_topic}, the sink writes it to "
        f"{stack.orders_db}.{stack.orders_table} and the Catalog takes its stock")
    assert (landed.row["product_id"], landed.row["qty"], landed.row["total_price"]) == (PRODUCT, 2, 2 * UNIT_PRICE)
    assert landed.stock_drop == 2


def test_a_product_id_in_another_case_is_unknown(stack, tmp_path):
    path, event = our_envelope(tmp_path, fresh_id(), product_id=PRODUCT.lower())
    said = run_doctor(stack, path)
    assert said.returncode == 1
    assert f"UnknownProduct: order '{event.order_id}' names product 'catalog-001'" in said.stdout
    assert said.stdout.splitlines()[-1].startswith("verdict: REFUSED by the gate (UnknownProduct)")


def test_an_order_id_that_landed_is_a_duplicate_or_reused(landed, stack, tmp_path):
    same = run_doctor(stack, landed.path)
    assert same.returncode == 0, same.stdout
    assert same.stdout.splitlines()[-1] == (
        f"verdict: a duplicate of order {landed.event.order_id}, accepted before with the same content: "
        "nothing changes")
    other, _ = our_envelope(tmp_path, landed.event.order_id, qty=3)
    said = run_doctor(stack, other)
    assert said.returncode == 1, said.stdout
    assert f"OrderIdReused: order_id {landed.event.order_id} reused with other content" in said.stdout


@pytest.fixture
def table_with_a_note(stack, orders_db):
    """A private copy of the orders table with a NOT NULL column without a default; its name."""
    name = f"doctor_orders_{uuid.uuid4().hex[:8]}"
    with orders_db.begin() as conn:
        conn.exec_driver_sql(orders_table_ddl(name, stack.catalog_db)[0])
        conn.exec_driver_sql(f"ALTER TABLE `{name}` ADD COLUMN note VARCHAR(20) NOT NULL")
    yield name
    with orders_db.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS `{name}`")


def test_a_table_that_cannot_hold_the_row_names_the_column(stack, tmp_path, table_with_a_note):
    path, _ = our_envelope(tmp_path, fresh_id())
    said = run_doctor(stack, path, "--table", table_with_a_note)
    assert said.returncode == 1, said.stdout
    assert said.stdout.splitlines() == [
        "table     $: column note (varchar(20)) is NOT NULL without a default, and the event does not fill it -> "
        "the sink cannot insert the row. Fix: give note a default, or let it be NULL",
        f"verdict: the gate accepts it, but {stack.orders_db}.{table_with_a_note} CANNOT HOLD it: the Catalog takes "
        "its stock and the table does not get the row [1 table]"]


def make_doctor(stack, file) -> subprocess.CompletedProcess:
    """`make doctor FILE=...` in the repository, with the stack's settings (and no make of ours around it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "doctor", f"FILE={file}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**env, **stack.to_env()})


def test_make_doctor_exits_with_the_doctors_code(stack, tmp_path):
    accepted, _ = our_envelope(tmp_path, fresh_id())
    refused, _ = our_envelope(tmp_path, fresh_id(), product_id=PRODUCT.lower())
    for path, code in [(accepted, 0), (refused, 1), (tmp_path / "missing.json", 2)]:
        said = make_doctor(stack, path)
        assert said.returncode == code, (path.name, said.stdout, said.stderr)


def test_offline_checks_what_needs_no_database(stack, tmp_path):
    path, _ = our_envelope(tmp_path, fresh_id())
    closed = str(free_port())  # nothing listens there
    said = run_doctor(stack, path, MARIADB_PORT=closed)
    assert said.returncode == 1
    assert said.stdout.startswith(f"database  cannot ask MariaDB at 127.0.0.1:{closed} within 2 s")
    assert "make stack-up" in said.stdout.splitlines()[0]
    offline = run_doctor(stack, path, "--offline", MARIADB_PORT=closed)
    assert (offline.returncode, offline.stdout) == (
        0, "verdict: valid on its own; the product and the order id not checked\n")
