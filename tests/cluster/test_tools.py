"""The operator's tools on the secured cluster, run as an operator runs them: subprocesses with the
cluster's admin settings (SASL_SSL, the admin's password from SECRETS_FILE, the cluster's CA), as
`python -m ops.<tool>` and through make with CLUSTER=1 (tests.support.tools: the Makefile's own
CLUSTER_ENV, pointed at this private cluster by CLUSTER_DIR and CLUSTER_PORTS).

The dead letters they read are made here: a record the Order service's principal may write to
`orders`, refused by the gate into `orders.rejected`. Each check is on what the tools say of that
record (its origin partition and offset, the gate's reason) or on what they did (the replayed
record in `orders`, the order in the table); each refusal (a principal that may not read, a client
without credentials) has its positive control, the admin's run, in the same test.
"""

import json
import re
import types
import uuid

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bus import dead_letters as contract
from bus.envelope import encode
from bus.topic_reader import read_range
from ops.dead_letters import H_REPLAYED_FROM
from ordersync.config import public_key
from ordersync.serving import auth
from stack import accounts
from tests.poisons import poison, valid_event
from tests.support import cli
from tests.support.kafka import Producer, read_topic
from tests.support.tables import add_product, stock_of
from tests.support.tools import cluster_make, run_make, run_tool, tool_env
from tests.support.waiting import wait_for_row, wait_until

GATE_S = 90  # the gate decides in a second or two; generous for a busy 2-core machine


def send_as_order_service(settings, order_id: str, value: bytes):
    """One record on the orders topic with the Order service's credentials: (partition, offset)."""
    producer = Producer(accounts.acting_as(settings, accounts.ORDER).kafka_client())
    try:
        m = producer.send(settings.orders_topic, value, key=order_id, timeout=30)
    finally:
        producer.close()
    return m.partition(), m.offset()


def refused_record(settings, order_id: str):
    """The gate's dead letter of `order_id` in orders.rejected, once it is there."""
    def find():
        return next((m for m in read_topic(settings.kafka_client(), settings.rejected_topic, timeout=30)
                     if m.key() == order_id.encode()), None)
    return wait_until(find, timeout=GATE_S, interval=1, what=f"the gate's refusal of {order_id} in orders.rejected")


def headers_of(m) -> dict[str, str]:
    return {name: (raw or b"").decode() for name, raw in m.headers() or ()}


def lines_with(text: str, *words: str) -> list[str]:
    return [line for line in text.splitlines() if all(w in line for w in words)]


@pytest.fixture(scope="module")
def dead_letter(cluster):
    """A poison of the Order service's principal (an order of a product the catalog lacks) and its
    dead letter: key, origin (partition, offset) in orders, position "P:O" in orders.rejected."""
    s = cluster.settings
    key = f"tools-{uuid.uuid4().hex[:12]}"
    value = poison("unknown-product", key, "tools-user", "TOOLS-1")  # names BURST-404 instead
    partition, offset = send_as_order_service(s, key, value)
    refused = refused_record(s, key)
    return types.SimpleNamespace(key=key, value=value, partition=partition, offset=offset,
                                 position=f"{refused.partition()}:{refused.offset()}")


def test_dead_letters_list_shows_the_refusal_with_its_origin(cluster, dead_letter):
    s = cluster.settings
    args = ("list", "--topic", s.rejected_topic, "--json")
    listed = run_tool("ops.dead_letters", *args, env=tool_env(s))
    assert listed.returncode == 0, listed.stderr
    ours = [d for d in map(json.loads, listed.stdout.splitlines()) if d["key"] == dead_letter.key]
    assert len(ours) == 1, listed.stdout
    d = ours[0]
    assert (d["origin_topic"], d["origin_partition"], d["origin_offset"]) == \
        (s.orders_topic, dead_letter.partition, dead_letter.offset), d
    assert d["error_class"] == "UnknownProduct" and "does not have" in d["error_message"], d
    assert f"{d['partition']}:{d['offset']}" == dead_letter.position and d["copies"] == 1
    # The Order service's principal may not read the dead letters; a client without TLS and SASL
    # gets nowhere. The admin's run above, on the same topic, is their positive control.
    as_order = run_tool("ops.dead_letters", *args, env=tool_env(s, accounts.ORDER))
    assert as_order.returncode == 1 and "TOPIC_AUTHORIZATION_FAILED" in as_order.stderr, as_order
    assert dead_letter.key not in as_order.stdout
    anonymous = run_tool("ops.dead_letters", *args, env={**tool_env(s), "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"})
    assert anonymous.returncode == 1 and "error:" in anonymous.stderr, anonymous
    assert dead_letter.key not in anonymous.stdout


def test_replay_sends_a_dead_letter_back_to_its_origin_once(cluster):
    """Refused for a product the catalog lacks; the product added; replayed: the gate takes it."""
    s = cluster.settings
    order_id, product = f"replay-{uuid.uuid4().hex[:12]}", f"REPLAY-{uuid.uuid4().hex[:8]}"
    value = encode(valid_event(order_id, "replay-user", product))
    partition, offset = send_as_order_service(s, order_id, value)
    refused = refused_record(s, order_id)
    assert headers_of(refused)[contract.H_ERROR_CLASS] == "UnknownProduct"
    position = f"{refused.partition()}:{refused.offset()}"
    add_product(s, "REPLAY", product_id=product)
    before = stock_of(s, product)

    replay = run_tool("ops.dead_letters", "replay", "--topic", s.rejected_topic, "--offset", position,
                      env=tool_env(s))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    said = re.search(rf"^replayed {position} key={order_id}: to {re.escape(s.orders_topic)}\[(\d+)\]@(\d+)$",
                     replay.stdout, re.M)
    assert said and int(said[1]) == partition, replay.stdout  # back to its own partition
    at = int(said[2])
    [resent] = read_range(s.kafka_client(), s.orders_topic, {partition: at}, {partition: at + 1}, timeout=30)
    assert (resent.key(), resent.value()) == (order_id.encode(), value)
    assert headers_of(resent)[H_REPLAYED_FROM] == f"{s.orders_topic}:{partition}:{offset}"
    # The gate decides it afresh: the order is in the table and its stock taken.
    engine = sa.create_engine(s.mariadb_url(s.orders_db))
    try:
        row = wait_for_row(engine, f"SELECT * FROM {s.orders_table} WHERE order_id = :o", {"o": order_id},
                           timeout=GATE_S)
    finally:
        engine.dispose()
    assert row["product_id"] == product
    wait_until(lambda: stock_of(s, product) == before - 1, timeout=GATE_S, what="the replayed order's stock")

    again = run_tool("ops.dead_letters", "replay", "--topic", s.rejected_topic, "--offset", position,
                     env=tool_env(s))
    assert again.returncode == 0 and f"skipped {position}" in again.stdout, again.stdout + again.stderr
    marker = f"{s.orders_topic}:{partition}:{offset}"
    copies = [m for m in read_range(s.kafka_client(), s.orders_topic, {partition: offset + 1}, timeout=30)
              if headers_of(m).get(H_REPLAYED_FROM) == marker]
    assert len(copies) == 1, f"{len(copies)} replays of {marker} in {s.orders_topic}"


def test_doctor_reads_a_record_of_the_cluster(cluster, dead_letter):
    s = cluster.settings
    where = f"{dead_letter.partition}:{dead_letter.offset}"
    refused = run_tool("ops.doctor", "--topic", s.orders_topic, "--offset", where, env=tool_env(s))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "verdict: REFUSED by the gate (UnknownProduct)" in refused.stdout, refused.stdout
    assert "BURST-404" in refused.stdout  # the product the poison names
    # A valid order of the Order service, read back from the cluster: the gate takes it.
    order_id = f"doctor-{uuid.uuid4().hex[:12]}"
    valid = send_as_order_service(s, order_id, encode(valid_event(order_id, "doctor-user", add_product(s, "DOCTOR"))))
    accepted = run_tool("ops.doctor", "--topic", s.orders_topic, "--offset", f"{valid[0]}:{valid[1]}",
                        env=tool_env(s))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert accepted.stdout.strip().splitlines()[-1].startswith("verdict: accepted"), accepted.stdout
    # The Catalog's principal may not read orders: the doctor cannot read the record (exit 2).
    as_catalog = run_tool("ops.doctor", "--topic", s.orders_topic, "--offset", where,
                          env=tool_env(s, accounts.CATALOG))
    assert as_catalog.returncode == 2 and "TOPIC_AUTHORIZATION_FAILED" in as_catalog.stderr, as_catalog
    # make doctor with CLUSTER=1: the doctor's own exit code, the same verdict.
    made = run_make("doctor", f"TOPIC={s.orders_topic}", f"OFFSET={where}", *cluster_make(s))
    assert made.returncode == 1 and "verdict: REFUSED by the gate (UnknownProduct)" in made.stdout, made


def test_make_status_shows_the_cluster(cluster, dead_letter):
    s = cluster.settings
    status = run_make("status", *cluster_make(s))
    print(status.stdout)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"Stack ({s.stack_dir}):" in status.stdout
    for part in [*cluster.infra, *cluster.services]:
        assert lines_with(status.stdout, f"  {part.name} ", "healthy"), part.name
    assert f"{s.sink_name}: RUNNING" in status.stdout and "  products-source: RUNNING" in status.stdout
    # The sink's tasks and the products source's one.
    assert len(lines_with(status.stdout, "    task ", " RUNNING on ")) == s.sink_tasks + 1
    for group, topic in ((s.gate_group, s.orders_topic), (s.catalog_group, s.accepted_topic),
                         (f"connect-{s.sink_name}", s.accepted_topic)):
        assert lines_with(status.stdout, f"  {group} on {topic}: lag "), (group, topic)
    depth = re.search(rf"^  {re.escape(s.rejected_topic)}: (\d+)$", status.stdout, re.M)
    assert depth and int(depth[1]) >= 1, status.stdout  # read as the admin: at least the fixture's poison


def test_make_dlq_lists_and_dry_runs_a_replay_on_the_cluster(cluster, dead_letter):
    s = cluster.settings
    listed = run_make("dlq", *cluster_make(s))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert lines_with(listed.stdout, f"{dead_letter.position}  key={dead_letter.key}",
                      f"origin={s.orders_topic}[{dead_letter.partition}]@{dead_letter.offset}", "UnknownProduct")
    for topic in (s.rejected_topic, s.catalog_dlq_topic, s.sink_dlq_topic):
        assert f"# {topic}: " in listed.stdout
    dry = run_make("dlq", f"TOPIC={s.rejected_topic}", f"REPLAY={dead_letter.position}", "DRY_RUN=1",
                   *cluster_make(s))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert (f"would replay {dead_letter.position} key={dead_letter.key}: "
            f"to {s.orders_topic}[{dead_letter.partition}] (dry run)") in dry.stdout
    marker = f"{s.orders_topic}:{dead_letter.partition}:{dead_letter.offset}"
    written = [m for m in read_range(s.kafka_client(), s.orders_topic, {dead_letter.partition: dead_letter.offset},
                                     timeout=30) if headers_of(m).get(H_REPLAYED_FROM) == marker]
    assert written == [], "a dry run wrote to the orders topic"


def test_make_token_signs_with_the_clusters_key(cluster):
    s = cluster.settings
    made = run_make("token", "USER=alice", "ROLE=operator", "TTL=600", *cluster_make(s))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert auth.Verifier(public_key(s.auth_public_key)).verify(token) == auth.Identity("alice", auth.OPERATOR)
    with pytest.raises(auth.Unauthenticated, match="signature does not verify"):  # another stack's key
        auth.Verifier(Ed25519PrivateKey.generate().public_key()).verify(token)


def test_the_cli_places_an_order_over_tls_and_make_trace_follows_it_on_the_cluster(cluster):
    """The command line with the cluster's CA and a user's token, and the journey as the admin
    (make trace CLUSTER=1): in sync, its trace in the cluster's Zipkin."""
    s = cluster.settings
    env = cli.cli_env(s)
    user_id = f"cluster-cli-{uuid.uuid4().hex[:6]}"
    created = cli.ordersync(env, "--json", "--user", user_id, "order", "create", "--product", "CATALOG-001", "--qty", "1")
    assert created.returncode == 0, created.stderr
    order_id = json.loads(created.stdout)["order"]["order_id"]
    # Refused without the CA: the port is TLS only (positive control: the call above).
    plain = cli.ordersync({**env, "GRPC_TLS_CA": ""}, "--deadline", "3", "--user", user_id, "order", "get", order_id)
    assert plain.returncode == 3, plain.stdout + plain.stderr

    def traced():
        made = run_make("trace", f"ORDER={order_id}", *cluster_make(s))
        return made if made.returncode == 0 else None
    made = wait_until(traced, timeout=GATE_S, interval=2, what=f"make trace ORDER={order_id} to say in sync")
    print(made.stdout)
    assert made.stdout.strip().splitlines()[-1].startswith("verdict: in sync"), made.stdout
    assert f"{s.zipkin_url}/zipkin/traces/" in made.stdout and "Zipkin does not answer" not in made.stdout
