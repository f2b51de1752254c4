# evidenced — build, run, test, bench.
SHELL := /bin/bash
GO ?= go
BIN := bin/evidenced
SHARED ?= $(abspath ../shared)
CORPUS := var/cache/corpus-256.img
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: build run test test-deps corpus vet bench clean qemu-test bench-auth measure-throttle

build:
	$(GO) build -o $(BIN) ./daemon

# The daemon on the simulated board with its demo drives; dashboard and API on http://127.0.0.1:8080.
run: build
	./$(BIN) --data-dir ./var --board sim --listen 127.0.0.1:8080

# System packages the tests need (independent readers, file system tools, Samba).
test-deps:
	@scripts/test-deps.sh

$(CORPUS):
	@mkdir -p $(dir $(CORPUS))
	bash $(SHARED)/corpus/mkdisk.sh $(CORPUS).tmp 256 > var/cache/corpus-256.log
	mv $(CORPUS).tmp $(CORPUS)

corpus: test-deps $(CORPUS)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above are not formatted"; exit 1; }
	$(GO) vet ./...

test: corpus vet
	EVIDENCED_CORPUS=$(abspath $(CORPUS)) EVIDENCED_REQUIRE_TOOLS=1 EVIDENCED_AFF4_REF=$(SHARED)/aff4-reference \
	EVIDENCED_MKDISK=$(SHARED)/corpus/mkdisk.sh \
		$(GO) test -count=1 -timeout 40m ./...

clean:
	rm -rf bin var/cache

# Engine benchmark against ewfacquire, dc3dd and md5sum on a 2 GiB corpus (built once), ratios in one run.
bench: test-deps build
	SHARED=$(SHARED) scripts/bench.sh

# The kernel CIFS client, tested in a QEMU guest (Debian kernel, this package's test binary as
# /init) against a Samba server on this machine; hal/linux on AHCI, virtio-scsi, USB and NVMe disks
# in a guest. Not part of `make test`: it fetches a kernel.
QEMU_KERNEL := var/cache/qemu-kernel
qemu-test: test-deps
	@scripts/qemu-kernel.sh $(QEMU_KERNEL)
	EVIDENCED_QEMU_KERNEL=$(abspath $(QEMU_KERNEL)) EVIDENCED_REQUIRE_TOOLS=1 \
		$(GO) test -count=1 -v -run 'TestKernelCIFSInQEMU' ./imaging/target
	EVIDENCED_QEMU_KERNEL=$(abspath $(QEMU_KERNEL)) EVIDENCED_REQUIRE_TOOLS=1 \
		$(GO) test -count=1 -v -run 'TestBoardInQEMU' ./hal/linux

# Requests/s with user management on against off, side by side (50 clients, GET /api/ports).
bench-auth:
	EVIDENCED_BENCH_AUTH=1 $(GO) test -count=1 -v -run 'TestAuthThroughput' ./daemon/api

# 50 parallel password guessers for 60 s against the default throttle: guesses checked, and the
# owner's right password afterwards.
measure-throttle:
	EVIDENCED_MEASURE_THROTTLE=1 $(GO) test -count=1 -v -timeout 30m -run 'TestThrottleMeasure60s' ./daemon/api
