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
    assert f"{topology.settings.catalog_group} on {topology.settings.orders_topic}: lag" in out
    assert topology.settings.sink_dlq_topic in out and topology.settings.catalog_dlq_topic in out
    print(out)
