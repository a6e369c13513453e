# object-storage-proxy build. `make` builds the shared library; `make test`
# runs every test (installing what it needs on a fresh Debian machine);
# `make demo` runs the proxy in front of a local S3 server.

GO        ?= go
PYTHON    ?= /usr/bin/python3
BUILD     := build
LIB       := $(BUILD)/libosp.so
VENV      := $(BUILD)/venv
VERSITYGW := $(BUILD)/bin/versitygw
VERSITYGW_VERSION := v1.8.0
# SeaweedFS, the second S3 backend of the tests (Apache-2.0). Its go.mod has a
# replace directive, so `go install ...@version` refuses it: the module is
# downloaded into the module cache and built there as the main module.
SEAWEEDFS := $(BUILD)/bin/weed
SEAWEEDFS_MODULE := github.com/seaweedfs/seaweedfs
SEAWEEDFS_VERSION := v0.0.0-20261109003541-7506e5f91cd6
GO_SOURCES := $(shell find go -name '*.go' -not -name '*_test.go') go/go.mod go/go.sum include/osp.h

# Debian packages the build and tests use (PyPI is not reachable here).
DEBIAN_PACKAGES := gcc make python3 python3-dev python3-venv python3-pip python3-setuptools \
	python3-wheel python3-cffi python3-dotenv python3-pytest python3-boto3 curl \
	awscli s3cmd rclone openssl haproxy redis-server

.PHONY: all lib deps venv js-deps goclients test test-go test-python test-seaweedfs fuzz demo wheel clean bench soak conformance

all: lib

lib: $(LIB)

$(LIB): $(GO_SOURCES)
	cd go && CGO_ENABLED=1 $(GO) build -buildmode=c-shared -trimpath -o ../$(LIB) ./capi

# Installs missing Debian packages (needs root, as CI is).
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(VERSITYGW):
	GOBIN=$(abspath $(BUILD)/bin) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

# The Go SDK clients of tests/test_clients_go.py (aws-sdk-go-v2, minio-go v7):
# a module of their own in tests/goclients, so the proxy's go.mod never
# carries these SDKs; built from the Go module proxy like versitygw.
GOCLIENTS := $(BUILD)/bin/osp-awsgo $(BUILD)/bin/osp-miniogo
GOCLIENTS_SOURCES := $(shell find tests/goclients -name '*.go') tests/goclients/go.mod tests/goclients/go.sum

$(GOCLIENTS) &: $(GOCLIENTS_SOURCES)
	cd tests/goclients && $(GO) build -trimpath -o $(abspath $(BUILD)/bin)/ ./cmd/osp-awsgo ./cmd/osp-miniogo

goclients: $(GOCLIENTS)

# A few minutes on a 2-core machine the first time (a large module).
$(SEAWEEDFS):
	mkdir -p $(BUILD)/bin
	dir=$$(cd / && $(GO) mod download -json $(SEAWEEDFS_MODULE)@$(SEAWEEDFS_VERSION) \
		| sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	test -n "$$dir" || { echo "could not download $(SEAWEEDFS_MODULE)@$(SEAWEEDFS_VERSION)" >&2; exit 1; }; \
	cd "$$dir" && GOFLAGS=-buildvcs=false $(GO) build -trimpath -o $(abspath $@).tmp ./weed
	mv $@.tmp $@

$(VENV)/.installed: $(LIB) setup.py pyproject.toml $(shell find python -name '*.py')
	test -x $(VENV)/bin/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install --quiet --no-build-isolation --no-index --force-reinstall --no-deps .
	touch $@

venv: $(VENV)/.installed

wheel: $(LIB)
	$(PYTHON) -m pip wheel --no-build-isolation --no-index --no-deps -w $(BUILD)/dist .

# The request path's packages again under the race detector: their
# goroutines share connections, deadlines and pooled records (about 30 s).
RACE_PACKAGES := ./internal/h1/... ./internal/upstream/... ./internal/sockio/... ./internal/proxy/... \
	./internal/readdeadline/... ./internal/fieldline/... ./internal/server/... ./internal/sigv4/... \
	./internal/overdue/... ./internal/linebatch/... ./internal/accesslog/...

test-go:
	cd go && $(GO) vet ./... && $(GO) test ./...
	cd go && $(GO) test -race $(RACE_PACKAGES)

# Each fuzz target for FUZZTIME (CI: a short run; the corpus in testdata/
# is replayed by every `go test` anyway). A count ("Nx"), not a duration:
# Go 1.26's coordinator can fail a duration-bounded run with "context
# deadline exceeded" when the time runs out mid-input (golang/go#75804).
# 100,000 inputs take about 3 to 15 s per target here.
FUZZTIME ?= 100000x
FUZZ_TARGETS := sigv4:FuzzParseAuthorization sigv4:FuzzPresignedQuery awschunked:FuzzDecoder \
	sigv4:FuzzCanonicalURI awschunked:FuzzSignedBodyTamper proxy:FuzzRoute proxy:FuzzCopySource \
	config:FuzzParse s3op:FuzzName h1:FuzzServe proxy:FuzzBearerBody proxy:FuzzParseDelete \
	proxy:FuzzForwardedHeader upstream:FuzzReadResponseHead upstream:FuzzWriteRequest h1:FuzzParseHead h1:FuzzWriteHeader \
	sigv4:FuzzAllocationFreeShortcuts sigv4:FuzzParseHeaderAuth accesslog:FuzzSameAsSlog

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		(cd go && $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) ./internal/$$pkg) || exit 1; \
	done

# The AWS SDK for JavaScript v3 for tests/test_clients_js.py, at the exact
# versions of tests/js/package-lock.json (npm ci; Node 20 or newer, which the
# SDK requires: Debian's nodejs is only a fallback and may be too old).
JS_DIR  := tests/js
JS_DEPS := $(JS_DIR)/node_modules/.installed

$(JS_DEPS): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm)
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || \
		echo "warning: Node $$(node --version) is older than the SDK's minimum (20)" >&2
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

js-deps: $(JS_DEPS)

test-python: venv $(VERSITYGW) $(SEAWEEDFS) js-deps $(GOCLIENTS)
	OSP_VERSITYGW=$(abspath $(VERSITYGW)) OSP_SEAWEEDFS=$(abspath $(SEAWEEDFS)) $(VENV)/bin/python -m pytest -q tests

# The end-to-end tests with SeaweedFS as the backend, on their own
# (tests/test_backend_seaweedfs.py, also part of test-python).
test-seaweedfs: venv $(VERSITYGW) $(SEAWEEDFS)
	OSP_VERSITYGW=$(abspath $(VERSITYGW)) OSP_SEAWEEDFS=$(abspath $(SEAWEEDFS)) $(VENV)/bin/python -m pytest -q tests/test_backend_seaweedfs.py

test: deps test-go fuzz test-python

demo: deps venv $(VERSITYGW)
	OSP_VERSITYGW=$(abspath $(VERSITYGW)) $(VENV)/bin/python examples/demo.py

# The benchmark (not part of `make test`): direct vs nginx proxy_pass vs this
# proxy vs a verifying peer (versitygw s3) on versitygw and a null backend;
# writes docs/benchmarks.md and .svg, with a profile of a small request
# (bench/profile.py: where the proxy's CPU goes next to nginx's, the system
# calls each makes, the Go scheduler's share; needs perf).
# BENCH_ARGS, e.g. "--rounds 1 --scale 0.5" for a quick look. Then the cost
# of each limit on a 4 KiB GET (bench/limits.py: docs/benchmarks-limits.md).
BENCH_ARGS ?=
LIMITS_BENCH_ARGS ?=
bench: venv $(VERSITYGW)
	@command -v nginx >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx)
	@command -v perf >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf) || true
	cd bench && $(GO) build -o ../$(BUILD)/bench/ ./cmd/...
	OSP_VERSITYGW=$(abspath $(VERSITYGW)) $(VENV)/bin/python bench/run.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/limits.py $(LIMITS_BENCH_ARGS)

# The soak (tests/soak/; not part of `make test`, tests/test_soak.py is its 30 s version):
# 64 clients for 5 minutes through the proxy, every byte verified; fails on
# any error, leaked goroutines or RSS growth. SOAK_ARGS, e.g. "--json FILE".
SOAK_ARGS ?=
soak: venv $(VERSITYGW)
	PYTHONPATH=tests OSP_VERSITYGW=$(abspath $(VERSITYGW)) $(VENV)/bin/python -m soak --duration 300 --clients 64 $(SOAK_ARGS)

# versitygw's own integration suite (`versitygw test full-flow`), run straight
# at versitygw and through the proxy, in every configuration (plain and
# versioning-enabled), and straight at SeaweedFS and through the proxy in
# front of SeaweedFS (plain); prints the comparison and writes it to
# build/conformance.md (the table of docs/compatibility.md) and .json. Fails
# when a test that passes direct fails through the proxy without a reason in
# tests/conformance.py. tests/test_conformance.py runs the plain
# configuration in `make test` (about a minute).
conformance: venv $(VERSITYGW) $(SEAWEEDFS)
	OSP_VERSITYGW=$(abspath $(VERSITYGW)) OSP_SEAWEEDFS=$(abspath $(SEAWEEDFS)) $(VENV)/bin/python tests/conformance.py \
		--markdown $(BUILD)/conformance.md --json $(BUILD)/conformance.json

clean:
	rm -rf $(BUILD) $(JS_DIR)/node_modules python/object_storage_proxy/_osp_cffi* python/object_storage_proxy/libosp.so *.egg-info python/*.egg-info
