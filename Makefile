# ordersync: the two commands a newcomer runs are `make run` and `make test`.
# Both install what is missing first; everything downloaded, generated or
# started lives in .venv/, .stack/ and gen/ (all git-ignored).

SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS       := .stack
VENV        := .venv
PY          := $(VENV)/bin/python
GRPCURL     := $(TOOLS)/bin/grpcurl
GHZ         := $(TOOLS)/bin/ghz
BUF         := $(TOOLS)/npm/node_modules/.bin/buf
GRPCURL_VERSION := v1.9.4
GHZ_VERSION     := v0.120.0
BUF_VERSION     := 1.75.0
# The Go plugins of protos/buf.gen.yaml (the README's Go example; tests/integration/test_go_stubs.py).
PROTOC_GEN_GO      := $(TOOLS)/bin/protoc-gen-go
PROTOC_GEN_GO_GRPC := $(TOOLS)/bin/protoc-gen-go-grpc
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOS      := $(shell find protos tests/protos -name '*.proto' 2>/dev/null)

.PHONY: help setup system jars tools go-plugins protos stack-up stack-down stack-status \
        services-up services-down run test lint unit bench clean status reset \
        cluster-up cluster-down cluster-status test-cluster token trace trace-picture

help:
	@echo "make run            install what is missing, start the stack and the services, run the demo"
	@echo "make test           install what is missing, lint, run the whole test suite on a private stack"
	@echo "make reset          empty the demo's orders, topics and tables, stock back to seed (on the running stack)"
	@echo "make setup          install what is missing: Python packages, MariaDB, jars, tools, stubs"
	@echo "make system         MariaDB and Prometheus from Debian's packages (when they are not installed yet)"
	@echo "make jars           Kafka, Connect, the Debezium JDBC sink and MariaDB source, Zipkin, from Maven Central"
	@echo "make tools          grpcurl, ghz, buf and the Go protoc plugins into $(TOOLS)/"
	@echo "make go-plugins     protoc-gen-go and protoc-gen-go-grpc into $(TOOLS)/bin (for protos/buf.gen.yaml)"
	@echo "make protos         the Python stubs of protos/ into gen/ (never edited)"
	@echo "make stack-up       MariaDB, Kafka, Connect, Zipkin, Prometheus, the tables and the connectors"
	@echo "make stack-down     the services, then Connect, Kafka and MariaDB (only what the project started)"
	@echo "make stack-status   each part of the stack: pid, port, health"
	@echo "make services-up    the gate, the Catalog and the Order instances"
	@echo "make services-down  the services started by make run or make services-up"
	@echo "make status         parts, connectors, consumer lag, dead letters, service health (status, dlq, doctor, token: CLUSTER=1 for the cluster's)"
	@echo "make dlq            list the dead letters (TOPIC=T: one topic; TOPIC=T REPLAY=P:O[,P:O]|all [DRY_RUN=1]: replay)"
	@echo "make doctor FILE=envelope.json   whether the system takes an envelope, and why not (FILE=- for stdin; TOPIC=T OFFSET=P:O: a record)"
	@echo "make token USER=alice   a token for the services' calls, printed (ROLE=operator|service, TTL=seconds)"
	@echo "make trace ORDER=ID the journey of one order: its event, row, stock, dead letters, trace, verdict (exit 0 in sync)"
	@echo "make trace-picture  a picture of one order's trace in Zipkin's UI (headless Chromium) into bench/results/"
	@echo "make lint           ruff and mypy"
	@echo "make unit           the unit tests only (no servers)"
	@echo "make bench          the benchmarks in bench/"
	@echo "make cluster-up     3 brokers, 2 workers, 2 gates, 2 Catalogs, 2 Orders, secured, in $(TOOLS)/cluster/"
	@echo "make cluster-down   stop the cluster"
	@echo "make cluster-status every part of the cluster, each broker and worker, the Catalog group, the ISR"
	@echo "make test-cluster   the cluster's tests (node loss under load, refusals) on a private cluster"
	@echo "make clean          stop everything, then delete $(TOOLS)/ $(VENV)/ gen/ (downloads too)"
	@echo "make help           this list"

setup: $(VENV)/.installed system jars tools protos

# Python virtual environment with the pinned dependencies of requirements.txt.
$(VENV)/.installed: requirements.txt
	@echo "setup: Python packages into $(VENV) (first time: about a minute)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# MariaDB and Prometheus from Debian's packages (only when they are not installed yet).
system:
	@bash stack/install_system.sh

# Kafka broker, Connect runtime, Debezium JDBC sink and JDBC driver from Maven Central.
jars: $(TOOLS)/jars.stamp
$(TOOLS)/jars.stamp: stack/pom.xml stack/fetch_jars.sh
	@echo "setup: Kafka, Connect, the Debezium JDBC sink and the MariaDB driver from Maven Central (first time: a few minutes)"
	bash stack/fetch_jars.sh
	touch $@

# grpcurl, ghz and the Go protoc plugins (Go module proxy) and buf (npm registry), pinned, under .stack/.
tools: $(GRPCURL) $(GHZ) $(BUF) go-plugins
$(GRPCURL):
	@echo "setup: building grpcurl $(GRPCURL_VERSION) (first time: about a minute)"
	GOBIN=$(CURDIR)/$(TOOLS)/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
# The gRPC load generator of bench/load.py.
$(GHZ):
	@echo "setup: building ghz $(GHZ_VERSION), the gRPC load tool (first time: about two minutes)"
	GOBIN=$(CURDIR)/$(TOOLS)/bin go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)
$(BUF):
	@echo "setup: buf $(BUF_VERSION) from npm"
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/npm @bufbuild/buf@$(BUF_VERSION)
# The local plugins of protos/buf.gen.yaml: Go stubs of the contract with buf, for another service.
go-plugins: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC)
$(PROTOC_GEN_GO):
	@echo "setup: building protoc-gen-go $(PROTOC_GEN_GO_VERSION)"
	GOBIN=$(CURDIR)/$(TOOLS)/bin go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(PROTOC_GEN_GO_GRPC):
	@echo "setup: building protoc-gen-go-grpc $(PROTOC_GEN_GO_GRPC_VERSION)"
	GOBIN=$(CURDIR)/$(TOOLS)/bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# Python stubs for every proto, generated into gen/ (never edited by hand).
protos: gen/.stamp
# The project itself is installed (editable, pyproject.toml) once gen/ exists, so that its
# packages, the stubs and the console scripts (ordersync-*) are on the venv's path.
gen/.stamp: $(PROTOS) $(VENV)/.installed pyproject.toml
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -I protos -I tests/protos \
	    --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# MariaDB, Kafka and Connect, the tables, and the JDBC sink connector (RUNNING).
stack-up: setup
	$(PY) -m stack up

stack-down:
	@if [ -x $(PY) ]; then $(PY) -m stack down; else echo "nothing to stop"; fi

stack-status:
	$(PY) -m stack status

# One screen: parts, connectors and tasks, consumer lag, dead-letter depth, service health.
status:
	@$(TOOL_ENV) $(PY) -m ops.status

services-up: stack-up
	$(PY) -m stack services-up

services-down:
	@if [ -x $(PY) ]; then $(PY) -m stack services-down; else echo "nothing to stop"; fi

run: stack-up
	$(PY) -m demo.run

# The demo's data emptied on the running stack of `make run` (STACK_DIR): what it does, stack/reset.py.
# Nothing to install first: the stack it empties runs, so `make run` or `make stack-up` did that.
reset:
	$(PY) -m stack reset

# Lint and types first (seconds), then the tests on a private stack of their own (own ports
# and data dir under .stack/private/), so they never touch what `make run` shows.
test: setup lint
	$(PY) -m pytest tests --ignore=tests/cluster

# The cluster's tests, on a private secured cluster of their own (tests/cluster/conftest.py).
test-cluster: setup
	$(PY) -m pytest tests/cluster

# Cluster mode: the same stack scripts with more parts, on ports and a stack dir of its own
# (the single-node stack may run beside it). Passwords are generated into SECRETS_FILE (0600).
# The tools (status, dlq, doctor, token) run on it with CLUSTER=1, as its admin (KAFKA_USER=admin,
# the stack's MARIADB_USER, its key for tokens). Where it is, CLUSTER_DIR, CLUSTER_PORTS and
# CLUSTER_HOSTS (MARIADB_HOST=... KAFKA_HOSTS=...: every part on 127.0.0.1 unless given), can be
# given on make's command line (tests/cluster/test_tools.py points the tools at its private cluster).
CLUSTER_DIR   := $(CURDIR)/$(TOOLS)/cluster
CLUSTER_PORTS := MARIADB_PORT=13306 KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19192 CONNECT_PORT=18083 \
    CATALOG_PORT=50161 ORDER_PORTS=50151,50152 GATE_PORT=50171 ZIPKIN_PORT=19411 PROMETHEUS_PORT=19090
CLUSTER_HOSTS :=
CLUSTER_ENV := STACK_DIR=$(CLUSTER_DIR) KAFKA_BROKERS=3 CONNECT_WORKERS=2 CATALOG_INSTANCES=2 GATE_INSTANCES=2 SINK_TASKS=3 \
    KAFKA_SECURITY_PROTOCOL=SASL_SSL KAFKA_SSL_CA=$(CLUSTER_DIR)/secrets/tls/ca.pem KAFKA_USER=admin \
    GRPC_TLS_CA=$(CLUSTER_DIR)/secrets/tls/ca.pem \
    SECRETS_FILE=$(CLUSTER_DIR)/secrets/credentials.properties $(CLUSTER_PORTS) $(CLUSTER_HOSTS) \
    KAFKA_HEAP_OPTS="-Xms128m -Xmx384m" CONNECT_HEAP_OPTS="-Xms128m -Xmx512m"
# What the tool targets run with: the cluster's settings with CLUSTER=1, else the environment's.
TOOL_ENV = $(if $(filter 1,$(CLUSTER)),$(CLUSTER_ENV))

cluster-up: setup
	$(CLUSTER_ENV) $(PY) -m stack up
	$(CLUSTER_ENV) $(PY) -m stack services-up

cluster-down:
	@if [ -x $(PY) ]; then $(CLUSTER_ENV) $(PY) -m stack down; else echo "nothing to stop"; fi

cluster-status:
	@$(CLUSTER_ENV) $(PY) -m ops.status; $(CLUSTER_ENV) $(PY) -m ops.cluster_status

lint: $(VENV)/.installed protos
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: $(VENV)/.installed protos tools
	$(PY) -m pytest tests/unit

# The benchmarks' own packages (matplotlib for the plots) go into .venv here only, not by setup.
bench: setup $(VENV)/.bench-installed
	$(PY) bench/envelope.py
	$(PY) bench/server_models.py
	$(PY) bench/load.py
	$(PY) bench/drain.py
	$(PY) bench/stability.py
	$(PY) bench/goals.py

$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	@echo "bench: matplotlib and what it needs into $(VENV)"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

# A bearer token signed with the stack's key (ops/token.py), alone on stdout:
#   grpcurl -H "authorization: Bearer $$(make -s token USER=alice)" ...
# USER must be given on the command line: the one of the environment is the login name.
token: $(VENV)/.installed protos
	$(if $(filter command line,$(origin USER)),,$(error say whose token: make token USER=NAME [ROLE=operator] [TTL=SECONDS]))
	@$(TOOL_ENV) $(PY) -m ops.token --user "$(USER)" $(if $(ROLE),--role "$(ROLE)") $(if $(TTL),--ttl "$(TTL)")

# The dead-letter topics, one line per message (TOPIC=T: that one); with REPLAY=P:O[,P:O...] or
# REPLAY=all, those of TOPIC replayed to their origin topic (DRY_RUN=1: say what, write nothing).
comma := ,
.PHONY: dlq
dlq: $(VENV)/.installed
	$(if $(and $(REPLAY),$(if $(TOPIC),,1)),$(error say which dead-letter topic: make dlq TOPIC=T REPLAY=$(REPLAY)))
	@$(TOOL_ENV) $(PY) -m ops.dead_letters $(if $(REPLAY),replay --topic "$(TOPIC)" \
	    $(if $(filter all,$(REPLAY)),--all,$(foreach p,$(subst $(comma), ,$(REPLAY)),--offset "$(p)")) \
	    $(if $(DRY_RUN),--dry-run),list $(if $(TOPIC),--topic "$(TOPIC)"))

# Whether the system takes a (hand-written) envelope: the gate's verdict, the orders table, the fixes.
# `make doctor` exits with the doctor's own code (0 accepted, 1 problems, 2 usage or unreadable
# input), not make's 2 for any failed recipe: in question mode (-q) make runs only `+` lines and
# exits with their status. Question mode builds no prerequisite, so the recipe installs what is
# missing itself, in a sub-make without -q (MAKEFLAGS= in its environment: as a make argument it
# would keep the flags).
ifeq ($(MAKECMDGOALS),doctor)
MAKEFLAGS += -q
endif
.PHONY: doctor
doctor:
	+@MAKEFLAGS= $(MAKE) --no-print-directory $(VENV)/.installed protos >/dev/null && \
	    $(TOOL_ENV) $(PY) -m ops.doctor $(FILE) $(if $(TOPIC),--topic "$(TOPIC)") $(if $(OFFSET),--offset "$(OFFSET)")

clean: services-down stack-down
	rm -rf $(TOOLS) $(VENV) gen

# The journey of one order (ops/journey.py), as the operator: CLUSTER=1 on the cluster.
trace: $(VENV)/.installed protos
	$(if $(ORDER),,$(error say which order: make trace ORDER=ORDER_ID))
	@$(TOOL_ENV) $(PY) -m ops.journey "$(ORDER)"

# The README's picture of a trace: one order placed on the running stack of `make run`, its trace
# in Zipkin's UI taken by Debian's Chromium, headless (installed here only, not by setup).
trace-picture: $(VENV)/.installed protos
	@bash stack/install_system.sh chromium
	$(PY) bench/trace_picture.py
