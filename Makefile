# xdpvip — build, test, lint, fuzz, generate, bench, demo.
# Targets that touch network namespaces or BPF need root.

GO        ?= go
BIN       := bin/xdpvip
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/xdpvip/xdpvip/internal/version.Commit=$(COMMIT)
FUZZTIME  ?= 20s
# FUZZLONG: the config parser and the VRRP decoder, where hostile input arrives.
FUZZLONG  ?= 60s

.PHONY: all build deps test unit lint fuzz generate check-generated bench demo demo-ecmp package package-test clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/xdpvip

# deps installs the Debian packages the tests and the demo use (idempotent).
deps:
	./tools/deps.sh

# test: the whole suite (unit, BPF prog.Run, end-to-end in namespaces, fuzz smoke).
test: deps build
	$(GO) vet ./...
	@rm -f bin/report.txt bin/report-faults.txt
	XDPVIP_REPORT=$(CURDIR)/bin/report.txt XDPVIP_FAULT_TABLE=$(CURDIR)/bin/report-faults.txt \
		$(GO) test -count=1 -timeout 40m ./...; status=$$?; \
		echo "==== suite reports (interop matrix, keepalived agreement, fault table)"; \
		cat bin/report.txt bin/report-faults.txt 2>/dev/null; exit $$status
	$(MAKE) fuzz FUZZTIME=5s FUZZLONG=30s

# unit: only the tests that need neither root nor extra packages.
unit:
	$(GO) test -short -count=1 ./pkg/...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# fuzz runs pkg/config FuzzParse and FuzzExpansion and pkg/vrrp FuzzDecode
# for FUZZLONG each,
# every other Fuzz* target for FUZZTIME.
fuzz:
	./tools/fuzz.sh $(FUZZTIME) $(FUZZLONG)

generate:
	$(GO) generate ./...

# check-generated regenerates the BPF objects and fails if the committed ones differ.
check-generated:
	./tools/check-generated.sh

bench: build
	./tools/bench.sh

demo: deps build
	$(GO) build -o bin/demo ./tools/demo
	./bin/demo --xdpvip $(BIN)

# demo-ecmp: the second act, BGP and ECMP with BIRD 2 as the router.
demo-ecmp: deps build
	$(GO) build -o bin/demo ./tools/demo
	./bin/demo --xdpvip $(BIN) --act ecmp

# package builds bin/xdpvip_VERSION_amd64.deb (nfpm, a go.mod tool): binary,
# systemd unit, /etc/default/xdpvip, man page and completion from --help.
package:
	./tools/package.sh

# package-test installs that .deb, checks it (files, version, check-config,
# systemd-analyze verify, lintian) and purges it. Needs root.
package-test: package
	./tools/package-test.sh

clean:
	rm -rf bin
