"""The alert rules (stack/config/prometheus-alerts.yml) as Prometheus's own promtool reads and runs
them: they load, every alert fires on the series of tests/prometheus/alerts-test.yml that should
make it fire and on none that should not, each has a summary, and each metric they read is one that
our code exports (a renamed metric fails here, not silently in production).

No servers: promtool evaluates the rules on the test file's series alone. Without promtool these
tests fail (never skip): `make setup` installs it, with Debian's prometheus package."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stack.infra import ALERT_RULES

ROOT = Path(__file__).resolve().parents[2]
RULE_TESTS = ROOT / "tests" / "prometheus" / "alerts-test.yml"
# Series Prometheus makes itself, not any exporter of ours.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}
# The suffixes a client library adds to a family's name: a Counter("x") is scraped as x_total.
FAMILY_SUFFIXES = ("_total", "_created", "_bucket", "_sum", "_count", "_info")
# Where our exporting code is: every .py file but the tests, generated stubs and installed packages.
NOT_OUR_CODE = {".venv", ".stack", ".git", "gen", "tests", "node_modules", "__pycache__"}


def promtool() -> str:
    found = shutil.which("promtool", path=os.environ.get("PATH", "") + os.pathsep + "/usr/bin")
    if found is None:
        pytest.fail("promtool not found: `make setup` installs it (Debian's prometheus package, "
                    "stack/install_system.sh)")
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


# --- the rules file, read without a YAML parser (the venv has none) ----------------------------

def read_rules(text: str) -> list[dict]:
    """Each rule of a rules file: {"alert" or "record", "expr", "summary" (None: none)}. Reads the
    block style the file is written in: `- alert: Name`, then its keys one indent further, `expr:`
    on its line or folded (`>`) on the lines below, `summary:` under `annotations:`. Anything
    else where a rule's keys are fails here, so that nothing is missed (promtool counts the rules too:
    test_promtool_loads_every_rule)."""
    rules: list[dict] = []
    rule: dict = {}
    keys_at, block, in_annotations = 0, None, False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped or stripped.startswith("#"):
            continue
        started = re.fullmatch(r"(\s*)- (alert|record): *(\S+)", line)
        if started:
            rule = {started[2]: started[3], "expr": None, "summary": None, "line": number}
            rules.append(rule)
            keys_at, block, in_annotations = len(started[1]) + 2, None, False
            continue
        if not rule or indent < keys_at:
            rule = {}  # past the last rule of a group
            continue
        if block is not None and indent > keys_at:
            block.append(stripped)  # a folded expression's next line
            continue
        if indent > keys_at and in_annotations:
            key, _, value = stripped.partition(":")
            if key == "summary":
                rule["summary"] = value.strip().strip('"').strip("'")
            continue
        block, in_annotations = None, False
        key, _, value = stripped.partition(":")
        value = value.strip()
        assert indent == keys_at, f"line {number}: {line!r} is not a key of the rule above"
        if key == "expr":
            if value in (">", ">-"):
                block = rule["expr"] = []
            else:
                assert value and value[0] not in "'\"|", f"line {number}: an expression this reader cannot read: {line!r}"
                rule["expr"] = [value]
        elif key == "annotations":
            in_annotations = True
            assert value in ("", "{}") or "summary:" not in value, f"line {number}: write the annotations as a block"
    for r in rules:
        r["expr"] = " ".join(r["expr"] or [])
    return rules


PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
                "bool", "offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: the bare selectors and `__name__` matchers
    (an alternation of plain names); not the functions, keywords, labels or durations."""
    names: set[str] = set()
    for op, pattern in re.findall(r'__name__\s*(=~|=)\s*"([^"]*)"', expr):
        alternatives = pattern.split("|") if op == "=~" else [pattern]
        for name in alternatives:
            assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name), \
                f"{pattern!r}: a __name__ regex other than an alternation of names (this test cannot check it)"
            names.add(name)
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    bare = re.sub(r"\{[^}]*\}", " ", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", " ", bare)  # ranges
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)  # label lists
    bare = re.sub(r"\boffset\s+\S+", " ", bare)
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", bare):
        word, called = match[1], match[2]
        if not called and word not in PROMQL_WORDS:
            names.add(word)
    return names


def our_exported_names() -> set[str]:
    """Every metric family a metric of our code is made with: prometheus_client's Counter, Gauge,
    Histogram, Summary, Info, Enum and the *MetricFamily of the custom collectors, its name the
    first argument."""
    made = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary|Info|Enum|\w*MetricFamily)\(\s*[\"']([a-zA-Z_:][\w:]*)[\"']")
    names = set()
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in NOT_OUR_CODE and not d.startswith(".")]
        for file in files:
            if file.endswith(".py"):
                names.update(made.findall((Path(folder) / file).read_text(errors="replace")))
    return names


def exported(name: str, families: set[str]) -> bool:
    return name in families or any(name.endswith(s) and name[: -len(s)] in families for s in FAMILY_SUFFIXES)


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    return read_rules(ALERT_RULES.read_text())


# --- promtool ---------------------------------------------------------------------------------

def test_promtool_loads_every_rule(rules):
    checked = run_promtool("check", "rules", str(ALERT_RULES))
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, f"promtool check rules {ALERT_RULES}:\n{output}"
    found = re.search(r"SUCCESS: (\d+) rules found", output)
    assert found, output
    assert int(found[1]) == len(rules), \
        f"promtool finds {found[1]} rules, this test's reader {len(rules)}: {[r.get('alert') for r in rules]}"


def test_every_alert_fires_when_it_should_and_not_before(rules):
    tested = run_promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, f"promtool test rules {RULE_TESTS}:\n{tested.stdout}{tested.stderr}"


def test_every_alert_has_a_case_that_fires_and_one_that_must_not(rules):
    """What tests/prometheus/alerts-test.yml asks of each alert: at some eval_time firing
    (exp_alerts with items), at another not (exp_alerts: []). A new alert needs both there."""
    lines = [line.strip() for line in RULE_TESTS.read_text().splitlines() if line.strip()
             and not line.strip().startswith("#")]
    cases: dict[str, set[bool]] = {}
    for i, line in enumerate(lines):
        if line.startswith("alertname:"):
            expected = lines[i + 1]
            assert expected.startswith("exp_alerts:"), f"after {line!r}: {expected!r}"
            cases.setdefault(line.partition(":")[2].strip(), set()).add(expected != "exp_alerts: []")
    alerts = {r["alert"] for r in rules if "alert" in r}
    assert alerts, "no alert read from the rules file"
    assert {a for a in alerts if cases.get(a) != {True, False}} == set(), \
        f"alerts without a firing and a quiet case in {RULE_TESTS.name}: {cases}"
    assert set(cases) <= alerts, f"cases of alerts the rules do not have: {set(cases) - alerts}"


# --- what each rule says and reads --------------------------------------------------------------

def test_every_alert_has_a_summary(rules):
    alerts = [r for r in rules if "alert" in r]
    assert len(alerts) >= 10
    assert [r["alert"] for r in alerts if not r["summary"]] == []


def test_the_reader_finds_the_metric_names_of_an_expression():
    expr = ('sum by (part) (deriv({__name__=~"a_lag|b_lag", part!="x"}[1m] offset 5m)) > 0 '
            'and on (part) time() - c_seconds{job="ordersync"} > 30 or up == 0 unless rate(d_total[5m]) > bool 1')
    assert metric_names(expr) == {"a_lag", "b_lag", "c_seconds", "up", "d_total"}


def test_every_metric_the_rules_read_is_one_our_code_exports(rules):
    families = our_exported_names()
    assert "ordersync_consumer_serving" in families  # the search itself works (catalog_svc/metrics.py)
    read = {r.get("alert") or r.get("record"): metric_names(r["expr"]) for r in rules}
    assert all(read.values()), f"rules whose metrics this test does not see: {read}"
    assert "ordersync_consumer_serving" in read["ConsumerStuck"]
    unknown = {rule: sorted(n for n in names if n not in PROMETHEUS_OWN and not exported(n, families))
               for rule, names in read.items()}
    assert {rule: names for rule, names in unknown.items() if names} == {}, \
        "metrics the rules read that no code of ours exports (renamed? spelt otherwise?)"
