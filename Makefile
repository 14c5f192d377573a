# strait — build, test and benchmark the producer and the consumer.
GO       ?= go
BIN      := bin
PKGS     := ./...
# -p 1: one package at a time (tests inside a package still run in parallel):
# the end-to-end packages start their own servers and processes, and on two
# cores running them side by side only makes every test slower.
TESTFLAGS ?= -race -count=1 -timeout 30m -p 1
SNAPSHOT_ROWS ?= 1000000

.PHONY: build test fuzz bench lint fmt tidy clean images demo demo-down

## build: compile bin/producer and bin/consumer (the default target), stamped with the commit (`producer version`
## prints the release of pkg/release and it: "strait producer 0.1.0 (commit 1e72def, 2026-12-06, modified)")
STAMP   := $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS := $(if $(STAMP),-X main.version=$(STAMP))
build:
	$(GO) build -buildvcs=auto -ldflags "$(LDFLAGS)" -o $(BIN)/producer ./producer
	$(GO) build -buildvcs=auto -ldflags "$(LDFLAGS)" -o $(BIN)/consumer ./consumer

## demo: the whole pipeline on this machine — MariaDB, Kafka (kfake), a registry (srfake), a local
## BigQuery endpoint, bin/producer and bin/consumer — with a write workload, ending with every table
## compared (STRAIT_BIGQUERY_PROJECT set: real BigQuery instead of the local endpoint); run it again at will:
## it resets what an earlier run left in .demo/ (and stops processes an interrupted run left running)
demo: build
	@command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server; \
		else echo "make demo needs the MariaDB server binaries: sudo apt-get install mariadb-server"; exit 1; fi; }
	$(GO) run ./deploy/devstack -dir .demo -bin $(BIN) $(DEMOFLAGS)

## demo-down: stop whatever an interrupted make demo left running and remove its state (.demo/)
demo-down:
	@if [ -f .demo/pids ]; then xargs -r kill < .demo/pids 2>/dev/null || true; fi
	rm -rf .demo

## test: every test, integration tests included (they start MariaDB, kfake, srfake themselves); the
## snapshot-under-load test again at SNAPSHOT_ROWS rows (without the race detector: a few minutes); the fuzz
## targets run their seed corpora, then each fuzzes for TESTFUZZTIME
test: build lint
	$(GO) test $(TESTFLAGS) $(PKGS)
	$(GO) test -count=1 -timeout 20m -run '^TestSnapshotUnderLoadMatchesSelect$$' ./producer -snapshot_rows $(SNAPSHOT_ROWS)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(TESTFUZZTIME)

## fuzz: each fuzz target of the decoders of records strait reads (hostile records: table topics, the producer's
## state, fetched batches) for FUZZTIME (go test -fuzz takes one target at a time); an input that fails is written
## under the package's testdata/fuzz/<target>/: commit it with the fix. make test fuzzes each for TESTFUZZTIME
## (3 s: the seven cost about 30 s with a warm build cache)
FUZZTIME     ?= 1m
TESTFUZZTIME ?= 3s
FUZZTARGETS  := ./pkg/bigquery:FuzzAppendRow ./pkg/bigquery:FuzzValueSchema ./pkg/kafka:FuzzDecode \
	./pkg/pipeline:FuzzCheckpoint ./pkg/binlog:FuzzSchemaHistory ./pkg/kafka:FuzzDecompress ./pkg/avro:FuzzJSONDecoder
fuzz:
	@set -e; for t in $(FUZZTARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

## bench: producer throughput against the bare go-mysql parse baseline, snapshot against a bare SELECT scan, consumer throughput against bare
## franz-go group consumption, end-to-end latency (source commit to BigQuery acknowledgement through both binaries) against a bare Kafka
## round trip, the whole pipeline over 20,000 tables against 100 (see README, "Performance")
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 150m ./pkg/... ./producer/... ./consumer/... ./deploy/...

## lint: gofmt + go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## images: container images of both binaries (deploy/docker/Dockerfile; needs Docker), tagged
## $(REGISTRY)/strait-producer:$(VERSION) and $(REGISTRY)/strait-consumer:$(VERSION); PUSH=1 pushes them:
##   make images REGISTRY=ghcr.io/you VERSION=0.1.0 PUSH=1
## VERSION defaults to the release deploy/helm/strait runs (its appVersion, the chart's default image tag), so
## that helm install --set image.registry=$(REGISTRY) finds them
REGISTRY ?=
VERSION  ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' deploy/helm/strait/Chart.yaml)
PUSH     ?=
IMAGES   := $(foreach b,producer consumer,$(if $(REGISTRY),$(patsubst %/,%,$(REGISTRY))/)strait-$(b):$(VERSION))
images:
	@test -n "$(VERSION)" || { echo "images: VERSION is empty"; exit 1; }
	@test "$(PUSH)" != 1 || test -n "$(REGISTRY)" || { echo "images: PUSH=1 needs REGISTRY (e.g. REGISTRY=ghcr.io/you)"; exit 1; }
	docker build -f deploy/docker/Dockerfile --target producer --build-arg VERSION=$(VERSION) -t $(word 1,$(IMAGES)) .
	docker build -f deploy/docker/Dockerfile --target consumer --build-arg VERSION=$(VERSION) -t $(word 2,$(IMAGES)) .
	$(if $(filter 1,$(PUSH)),docker push $(word 1,$(IMAGES)))
	$(if $(filter 1,$(PUSH)),docker push $(word 2,$(IMAGES)))

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
