"""The contract in protos/ is lint-clean by buf's STANDARD rules and compiles."""

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / ".stack" / "npm" / "node_modules" / ".bin" / "buf"


def test_buf_lint_is_clean():
    assert BUF.exists(), "buf is missing: `make setup` installs it"
    result = subprocess.run([str(BUF), "lint"], cwd=ROOT / "protos", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_catches_a_violation(tmp_path):
    # Guards the check above against passing vacuously (e.g. linting an empty folder).
    bad = tmp_path / "ordersync" / "bad" / "v1"
    bad.mkdir(parents=True)
    (tmp_path / "buf.yaml").write_text((ROOT / "protos" / "buf.yaml").read_text())
    (bad / "bad.proto").write_text('syntax = "proto3";\npackage ordersync.bad.v1;\n'
                                   'enum Color { RED = 0; }\nmessage m { string BadName = 1; }\n')
    result = subprocess.run([str(BUF), "lint"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "ENUM_ZERO_VALUE_SUFFIX" in result.stdout or "_UNSPECIFIED" in result.stdout, result.stdout


def test_every_proto_has_a_go_package_in_the_one_layout():
    """buf's managed-mode layout (protos/buf.gen.yaml): module + gen/go + the package's folders, named
    by its last two parts; tests/integration/test_go_stubs.py generates and compiles them."""
    protos = sorted((ROOT / "protos").rglob("*.proto"))
    assert len(protos) >= 3
    for proto in protos:
        text = proto.read_text()
        parts = re.search(r"^package ([\w.]+);", text, re.MULTILINE)[1].split(".")
        go_package = f"github.com/ordersync/ordersync/gen/go/{'/'.join(parts)};{''.join(parts[-2:])}"
        assert f'option go_package = "{go_package}";' in text, proto


def test_generated_stubs_expose_both_services():
    from ordersync.catalog.v1 import catalog_service_pb2
    from ordersync.order.v1 import order_service_pb2
    assert set(order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].methods_by_name) == {
        "CreateOrder", "GetOrder", "ListOrders"}
    assert set(catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"].methods_by_name) == {
        "ListProducts", "GetProduct"}


def test_test_protos_are_lint_clean_too():
    result = subprocess.run([str(BUF), "lint", "--config", str(ROOT / "protos" / "buf.yaml")],
                            cwd=ROOT / "tests" / "protos", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def contract_before_its_last_change() -> str:
    """The commit whose protos/ the contract is held against: with protos/ changed in the working
    tree, the last commit; else the one before the last commit that changed protos/ (HEAD, on
    main, is the contract itself: compared with it, no change could ever show)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    if git("status", "--porcelain", "--", "protos"):
        return git("rev-parse", "HEAD")
    last = git("log", "-n", "1", "--format=%H", "--", "protos")
    return git("rev-parse", f"{last}~1")


def breaking_changes(against: str) -> list[dict]:
    """buf's FILE-rule findings against a git ref of this repository (one dict per finding)."""
    result = subprocess.run([str(BUF), "breaking", "--against", f"{ROOT}/.git#ref={against},subdir=protos",
                             "--error-format", "json"], cwd=ROOT / "protos", capture_output=True, text=True, timeout=120)
    findings = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert findings or result.returncode == 0, result.stdout + result.stderr
    return findings


def test_no_breaking_change_since_the_contract_before_its_last_change():
    """The contract only grows compatibly (buf's FILE rules). One finding is no break: a go_package
    given where there was none (no Go stubs could be generated before it, so no Go user can break)."""
    findings = breaking_changes(contract_before_its_last_change())
    breaks = [f for f in findings if not (f["type"] == "FILE_SAME_GO_PACKAGE" and 'changed from ""' in f["message"])]
    assert breaks == [], breaks


def test_buf_breaking_catches_a_removed_field(tmp_path):
    # Guards the check above: the same command fails when a field disappears.
    import shutil
    changed = tmp_path / "protos"
    shutil.copytree(ROOT / "protos", changed)
    event = changed / "ordersync" / "order" / "v1" / "order_event.proto"
    event.write_text(event.read_text().replace("  int32 qty = 4;\n", ""))
    result = subprocess.run([str(BUF), "breaking", "--against", str(ROOT / "protos")],
                            cwd=changed, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "qty" in result.stdout, result.stdout + result.stderr
