# evidenced — build, run, test, bench.
SHELL := /bin/bash
GO ?= go
BIN := bin/evidenced
SHARED ?= $(abspath ../shared)
CORPUS := var/cache/corpus-256.img
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: build run test test-deps corpus vet bench clean qemu-test image rootfs-image qemu-run qemu-e2e

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
bench: build test-deps
	SHARED=$(SHARED) scripts/bench.sh

# The kernel CIFS client, tested in a QEMU guest (Debian kernel, this package's test binary as
# /init) against a Samba server on this machine. Not part of `make test`: it fetches a kernel.
QEMU_KERNEL := var/cache/qemu-kernel
qemu-test: test-deps
	@scripts/qemu-kernel.sh $(QEMU_KERNEL)
	EVIDENCED_QEMU_KERNEL=$(abspath $(QEMU_KERNEL)) EVIDENCED_REQUIRE_TOOLS=1 \
		$(GO) test -count=1 -v -run 'TestKernelCIFSInQEMU' ./imaging/target

# The appliance disk image (GPT, UEFI): ESP with a unified kernel image (u-root stage 1), boot state,
# root slots A/B (squashfs from Debian packages), data partition. Kernel and Debian root are cached
# in var/cache. Needs root.
image:
	rootfs/build.sh image var/image/evidenced.img

# A root slot image alone, for `evidenced update` (VERSION=... sets the daemon's version string).
rootfs-image:
	rootfs/build.sh root var/image/rootfs-$${VERSION:-update}.squashfs

# Boots the image: OVMF, TCG (KVM when usable), evidence disks on AHCI, SAS, USB and NVMe, API on
# 127.0.0.1:8080, this machine's Samba share at 10.0.2.2:4450 in the guest. Serial console here.
qemu-run:
	@test -f var/image/evidenced.img || $(MAKE) image
	scripts/qemu-run.sh

# The appliance proven through its forwarded API (boot, power loss, watchdog, update and fallback).
# Builds two extra root images (a new version and a broken one) first.
QEMU_E2E_TIMEOUT ?= 90m
qemu-e2e: test-deps
	@test -f var/image/evidenced.img || $(MAKE) image
	VERSION=0.2.0-e2e rootfs/build.sh root var/image/rootfs-e2e-new.squashfs
	BROKEN_ROOT=1 VERSION=0.2.0-broken rootfs/build.sh root var/image/rootfs-e2e-broken.squashfs
	EVIDENCED_QEMU_E2E=1 EVIDENCED_REQUIRE_TOOLS=1 $(GO) test -count=1 -v -timeout $(QEMU_E2E_TIMEOUT) ./rootfs/e2e
