# ordersync: the two commands a newcomer runs are `make run` and `make test`.
# Both install what is missing first; everything downloaded, generated or
# started lives in .venv/, .stack/ and gen/ (all git-ignored).

SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK_DIR   := .stack
VENV        := .venv
PY          := $(VENV)/bin/python
GRPCURL     := $(STACK_DIR)/bin/grpcurl
BUF         := $(STACK_DIR)/npm/node_modules/.bin/buf
GRPCURL_VERSION := v1.9.4
BUF_VERSION     := 1.75.0
PROTOS      := $(shell find protos tests/protos -name '*.proto' 2>/dev/null)

.PHONY: help setup system jars tools protos stack-up stack-down stack-status \
        connector services services-down run test unit bench clean

help:
	@echo "make run          install what is missing, start everything, run the demo"
	@echo "make test         install what is missing, run the whole test suite"
	@echo "make stack-up | stack-down | stack-status   MariaDB, Kafka and Connect"
	@echo "make services-down                           stop the demo's gRPC services"
	@echo "make bench        run the benchmarks in bench/"

setup: $(VENV)/.installed system jars tools protos

# Python virtual environment with pinned dependencies; the .pth file puts the
# repository root and the generated stubs on its import path.
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/gen" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ordersync.pth"
	touch $@

# MariaDB from Debian's packages (only when it is not installed yet).
system:
	@bash connect/install_system.sh

# Kafka broker, Connect runtime, Debezium JDBC sink and JDBC driver from Maven Central.
jars: $(STACK_DIR)/jars.stamp
$(STACK_DIR)/jars.stamp: connect/pom.xml connect/fetch_jars.sh
	bash connect/fetch_jars.sh
	touch $@

# grpcurl (Go module proxy) and buf (npm registry), pinned, under .stack/.
tools: $(GRPCURL) $(BUF)
$(GRPCURL):
	GOBIN=$(CURDIR)/$(STACK_DIR)/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
$(BUF):
	npm install --silent --no-audit --no-fund --prefix $(STACK_DIR)/npm @bufbuild/buf@$(BUF_VERSION)

# Python stubs for every proto, generated into gen/ (never edited by hand).
protos: gen/.stamp
gen/.stamp: $(PROTOS) $(VENV)/.installed
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -I protos -I tests/protos \
	    --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	touch $@

stack-up: setup
	$(PY) -m connect.stack up

stack-down:
	@if [ -x $(PY) ]; then $(PY) -m connect.stack down; else echo "nothing to stop"; fi

stack-status:
	$(PY) -m connect.stack status

# Register (or update) the JDBC sink connector and wait until it runs.
connector: stack-up
	$(PY) -m connect.register --wait

services-down:
	@if [ -x $(PY) ]; then $(PY) -m demo.services down; else echo "nothing to stop"; fi

run: connector
	$(PY) -m demo.run

test: stack-up
	$(PY) -m pytest tests

unit: $(VENV)/.installed protos
	$(PY) -m pytest tests/unit

bench: stack-up
	$(PY) bench/envelope.py
	$(PY) bench/e2e.py

clean: services-down stack-down
	rm -rf $(STACK_DIR) $(VENV) gen
