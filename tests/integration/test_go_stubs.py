"""Go stubs of the contract, as the README tells another service to make them: buf with
protos/buf.gen.yaml and the pinned local plugins that `make tools` builds, then compiled and run
in a Go module of their import path. Needs Go and the Go module proxy, no server of ours."""

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / ".stack" / "npm" / "node_modules" / ".bin" / "buf"
PLUGINS = ROOT / ".stack" / "bin"
MODULE = "github.com/ordersync/ordersync"  # the prefix of every go_package in protos/
GRPC_GO_VERSION = "v1.83.2"  # the runtime of protoc-gen-go-grpc's code (SupportPackageIsVersion9: >= v1.64)

MAIN_GO = """package main

import (
	"fmt"

	catalogv1 "github.com/ordersync/ordersync/gen/go/ordersync/catalog/v1"
	orderv1 "github.com/ordersync/ordersync/gen/go/ordersync/order/v1"
	"google.golang.org/protobuf/proto"
)

func main() {
	event := &orderv1.OrderPlaced{OrderId: "o-1", ProductId: "CATALOG-001", Qty: 2}
	wire, err := proto.Marshal(event)
	if err != nil {
		panic(err)
	}
	var back orderv1.OrderPlaced
	if err := proto.Unmarshal(wire, &back); err != nil {
		panic(err)
	}
	var _ orderv1.OrderServiceClient = orderv1.NewOrderServiceClient(nil)
	var _ catalogv1.CatalogServiceServer = catalogv1.UnimplementedCatalogServiceServer{}
	fmt.Println(orderv1.OrderService_ServiceDesc.ServiceName, catalogv1.CatalogService_ServiceDesc.ServiceName,
		back.GetProductId(), back.GetQty())
}
"""


def makefile_version(name: str) -> str:
    found = re.search(rf"^{name}\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, f"no {name} in the Makefile"
    return found[1]


def run(cmd: list[str], cwd: Path, env: dict, timeout: float = 600) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    return result.stdout


def test_buf_generates_go_stubs_that_compile(tmp_path):
    for tool in (BUF, PLUGINS / "protoc-gen-go", PLUGINS / "protoc-gen-go-grpc"):
        assert tool.exists(), f"{tool} is missing: `make tools` builds it"
    env = {**os.environ, "PATH": f"{PLUGINS}:{os.environ['PATH']}", "GOFLAGS": "-mod=mod -buildvcs=false"}
    # The README's command, into a module of its own.
    run([str(BUF), "generate", str(ROOT / "protos"), "--template", str(ROOT / "protos" / "buf.gen.yaml"),
         "-o", str(tmp_path)], ROOT, env)
    generated = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.go"))
    assert generated == ["gen/go/ordersync/catalog/v1/catalog_service.pb.go",
                         "gen/go/ordersync/catalog/v1/catalog_service_grpc.pb.go",
                         "gen/go/ordersync/order/v1/order_event.pb.go",
                         "gen/go/ordersync/order/v1/order_service.pb.go",
                         "gen/go/ordersync/order/v1/order_service_grpc.pb.go"]
    # The generated code says which plugin versions made it: the Makefile's pins.
    header = (tmp_path / "gen/go/ordersync/order/v1/order_event.pb.go").read_text()
    assert f"protoc-gen-go {makefile_version('PROTOC_GEN_GO_VERSION')}" in header
    grpc_header = (tmp_path / "gen/go/ordersync/order/v1/order_service_grpc.pb.go").read_text()
    assert f"protoc-gen-go-grpc {makefile_version('PROTOC_GEN_GO_GRPC_VERSION')}" in grpc_header
    # The runtime of the messages is the module protoc-gen-go comes from, at the same version.
    (tmp_path / "go.mod").write_text(f"module {MODULE}\n\ngo 1.24\n\nrequire (\n"
                                     f"\tgoogle.golang.org/grpc {GRPC_GO_VERSION}\n"
                                     f"\tgoogle.golang.org/protobuf {makefile_version('PROTOC_GEN_GO_VERSION')}\n)\n")
    (tmp_path / "cmd" / "check").mkdir(parents=True)
    (tmp_path / "cmd" / "check" / "main.go").write_text(MAIN_GO)
    run(["go", "vet", "./..."], tmp_path, env)
    run(["go", "build", "-o", str(tmp_path / "check"), "./cmd/check"], tmp_path, env)
    assert run([str(tmp_path / "check")], tmp_path, env).split() == [
        "ordersync.order.v1.OrderService", "ordersync.catalog.v1.CatalogService", "CATALOG-001", "2"]
