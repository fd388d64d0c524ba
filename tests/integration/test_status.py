"""`make status` on the tests' private stack: every part, the connector, the lag and the dead letters."""
from ops import status


def test_status_shows_every_part_and_exits_0_when_healthy(topology, monkeypatch, capsys):
    for name, value in topology.settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert status.main() == 0
    out = capsys.readouterr().out
    for part in [*topology.infra, *topology.services]:
        assert f"  {part.name}" in out and "healthy" in out
    assert f"{topology.settings.sink_name}: RUNNING" in out
    s = topology.settings
    assert f"{s.gate_group} on {s.orders_topic}: lag" in out
    assert f"{s.catalog_group} on {s.accepted_topic}: lag" in out
    assert f"connect-{s.sink_name} on {s.accepted_topic}: lag" in out
    assert all(f"  {topic}: " in out for topic in (s.rejected_topic, s.sink_dlq_topic, s.catalog_dlq_topic))
    print(out)
