# Ferric — make help lists the targets.
SHELL := bash
.SHELLFLAGS := -o pipefail -euc
.DEFAULT_GOAL := help

# Build tags for the podman bindings (CGO off; see shared environment notes).
TAGS := remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp
GO ?= go
export CGO_ENABLED := 0
BIN := bin

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build every binary into bin/
	$(GO) build -tags "$(TAGS)" -o $(BIN)/ferric-conductor ./cmd/conductor
	$(GO) build -tags "$(TAGS)" -o $(BIN)/ferric ./cmd/ferric
	@for d in ramdisk-agent vbmc; do \
	  if [ -d cmd/$$d ]; then $(GO) build -tags "$(TAGS)" -ldflags "-s -w" -o $(BIN)/ferric-$${d%-agent} ./cmd/$$d; fi; \
	done
	$(GO) build -tags "$(TAGS)" -ldflags "-s -w" -o $(BIN)/ferric-hostd ./cmd/ferric-hostd
	@if [ -f bin/ferric-ramdisk ]; then mv bin/ferric-ramdisk bin/ferric-agent; fi

# RAMDISK_PROFILE=vm builds the small VM-only ramdisk; RAMDISK_FLAGS adds e.g. --ca-cert FILE or --module NAME.
RAMDISK_PROFILE ?= server
RAMDISK_FLAGS ?=

ramdisk: build kernel-deb ## build the agent ramdisk (kernel + initramfs) into out/ramdisk from Debian packages
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $(BIN)/ferric-init ./images/ramdisk/init
	$(BIN)/ferric ramdisk build --kernel-deb $$(ls out/cache/linux-image-6*.deb | head -n1) --agent $(BIN)/ferric-agent \
		--init $(BIN)/ferric-init -o out/ramdisk --profile $(RAMDISK_PROFILE) --cache out/cache $(RAMDISK_FLAGS)

run: build ## start the conductor on its embedded default (SQLite in the state directory, API on 127.0.0.1:6385)
	$(BIN)/ferric-conductor

# CI runs the suite under the race detector (it needs cgo); RACE=1 does the same locally.
RACE ?= $(if $(CI),1,)

# The suites go through test/testdigest: go test's own output, then the failed tests' last lines at the very end,
# where CI's excerpt of a failed run shows them (pipefail keeps go test's exit status).
DIGEST = $(GO) run ./test/testdigest

test: ## run the whole test suite (unit, API, store conformance, integration; -race in CI)
	$(if $(RACE),CGO_ENABLED=1,) $(GO) test -json -tags "$(TAGS)" $(if $(RACE),-race,) -count=1 -timeout 40m ./... | $(DIGEST)

# IMAGE=oci://... deploys a real bootable image instead of the stand-in (needs internet; DISK_GIB=10 or more).
demo: build ## (root) deploy the bootc stand-in onto a loop device here, with a local registry and conductor, then clean up
	$(GO) build -ldflags "-s -w" -o $(BIN)/bootc-standin ./test/bootcimage/standin
	$(BIN)/ferric demo $(if $(IMAGE),--image $(IMAGE)) $(if $(DISK_GIB),--disk-gib $(DISK_GIB))

kernel-deb: # download the Debian kernel package used by the VM tests into out/cache
	@mkdir -p out/cache && cd out/cache && (ls linux-image-6*.deb >/dev/null 2>&1 || apt-get download -q $$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $$2; exit}'))

e2e: ## run the end-to-end inspection and deploys onto QEMU/OVMF VMs behind ferric-vbmc (build tag e2e; root, ~4 min)
	@if [ -z "$(FERRIC_TEST_KERNEL_DEB)" ]; then $(MAKE) --no-print-directory kernel-deb; fi
	FERRIC_TEST_KERNEL_DEB=$(or $(FERRIC_TEST_KERNEL_DEB),$$(ls $(CURDIR)/out/cache/linux-image-6*.deb | head -n1)) \
		$(GO) test -json -tags "$(TAGS) e2e" -count=1 -timeout 60m ./test/e2e/ | $(DIGEST) -v

bench: ## run the benchmarks (medians go in the README)
	$(GO) test -tags "$(TAGS)" -run XXX -bench . -benchtime 200x -count 5 ./conductor/ ./configdrive/ 2>/dev/null | grep -E '^(Benchmark|ok)'
	@# one agent poll with a transport per client against the shared transports (http and pinned https)
	$(GO) test -tags "$(TAGS)" -run XXX -bench BenchmarkPoll -benchtime 300x -count 5 ./conductor/internal/agentclient/ 2>/dev/null | grep -E '^(Benchmark|ok)'
	@# erase_devices against blkdiscard and dd on one 1 GiB loop device (root; each run erases 1 GiB, so 1x)
	$(GO) test -tags "$(TAGS)" -run XXX -bench BenchmarkEraseLoop -benchtime 1x -count 5 ./ramdisk-agent/internal/erase/ 2>/dev/null | grep -E '^(Benchmark|ok)'
	@# in-band inspection with the real agent as a local process, request -> manageable (root)
	$(GO) test -tags "$(TAGS)" -run XXX -bench BenchmarkInbandInspection -benchtime 10x -count 3 ./test/hostdeploy/ 2>/dev/null | grep -E '^(Benchmark|ok)'
	@# direct deploy's image writer: Write over HTTP against dd and curl|dd on one loop device, qcow2 through qemu-img,
	@# and the peak RSS (MiB) of a child writing a 2 GiB image (root; each run writes 1-2 GiB, so 1x)
	$(GO) test -tags "$(TAGS)" -run XXX -bench BenchmarkWrite -benchtime 1x -count 5 ./ramdisk-agent/internal/diskimage/ 2>/dev/null | grep -E '^(Benchmark|ok)'

# PODMAN may carry global options, e.g. PODMAN="podman --runtime runc --root DIR --runroot DIR".
PODMAN ?= podman
IMAGE_NAME ?= localhost/ferric-conductor:dev
EFI_LOADER ?= /usr/lib/systemd/boot/efi/systemd-bootx64.efi

image: ## build the conductor's container image (dist/container/Containerfile; FROM scratch, offline)
	rm -rf out/image && mkdir -p out/image/rootfs/usr/bin out/image/rootfs/etc/ssl/certs out/image/rootfs/tmp out/image/state
	$(GO) build -tags "$(TAGS)" -ldflags "-s -w" -o out/image/rootfs/usr/bin/ferric-conductor ./cmd/conductor
	cp /etc/ssl/certs/ca-certificates.crt out/image/rootfs/etc/ssl/certs/
	if [ -f $(EFI_LOADER) ]; then install -D -m 0644 $(EFI_LOADER) out/image/rootfs$(EFI_LOADER); \
	  else echo "no $(EFI_LOADER) (apt-get install systemd-boot-efi): the image cannot build redfish-virtual-media agent ISOs"; fi
	chmod 1777 out/image/rootfs/tmp
	cp dist/container/Containerfile out/image/
	$(PODMAN) build -t $(IMAGE_NAME) out/image

HOSTD_IMAGE ?= localhost/ferric-hostd:dev
HOSTD_VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
HOSTD_UNITS := out/hostd/rootfs/usr/lib/systemd/system

hostd: ## build ferric-hostd for bootc images: out/hostd/ferric-hostd.tar.gz and the layer image $(HOSTD_IMAGE)
	rm -rf out/hostd && mkdir -p out/hostd/rootfs/usr/bin $(HOSTD_UNITS)/multi-user.target.wants
	$(GO) build -tags "$(TAGS)" -ldflags "-s -w -X main.version=$(HOSTD_VERSION)" -o out/hostd/rootfs/usr/bin/ferric-hostd ./cmd/ferric-hostd
	install -m 0644 dist/hostd/ferric-hostd.service $(HOSTD_UNITS)/
	ln -s ../ferric-hostd.service $(HOSTD_UNITS)/multi-user.target.wants/ferric-hostd.service
	@# Owned by root, dated the epoch, sorted and gzipped without a name or time stamp: the same source gives the same bytes.
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C out/hostd/rootfs -cf - usr | gzip -9n > out/hostd/ferric-hostd.tar.gz
	cp dist/hostd/Containerfile out/hostd/
	$(PODMAN) build -t $(HOSTD_IMAGE) out/hostd

# FERRIC_FLEETBENCH_DB=postgres://user:pass@127.0.0.1:5432/db?sslmode=disable (each run makes and drops its own
# schema there). FLEET_FLAGS adds fleetbench flags; the README's 10,000-node figures come from
#   FLEET_FLAGS="--nodes 10000 --deploys 1000 --kill-at 40s" make bench-fleet
bench-fleet: build ## 3 conductors on PostgreSQL, 2,000 simulated nodes, 200 deploys, one conductor killed mid-deploy
	$(GO) build -o $(BIN)/fleetbench ./test/fleetsim/cmd/fleetbench
	$(BIN)/fleetbench --conductor-binary $(BIN)/ferric-conductor $(FLEET_FLAGS)

fuzz: ## run each fuzz target for 30 s
	$(GO) test -run XXX -fuzz FuzzApplyPatch -fuzztime 30s ./conductor/internal/api/
	$(GO) test -run XXX -fuzz FuzzContinueInspection -fuzztime 30s ./conductor/internal/api/
	$(GO) test -run XXX -fuzz FuzzParseNodeQuery -fuzztime 30s ./conductor/internal/api/
	$(GO) test -run XXX -fuzz FuzzEncodePy -fuzztime 30s ./conductor/internal/api/
	$(GO) test -run XXX -fuzz FuzzLookup -fuzztime 30s ./conductor/internal/api/
	$(GO) test -run XXX -fuzz FuzzHeartbeat -fuzztime 30s ./conductor/internal/api/
	$(GO) test -run XXX -fuzz FuzzMaskSecrets -fuzztime 30s ./conductor/internal/api/
	$(GO) test -run XXX -fuzz FuzzDecode -fuzztime 30s ./configdrive/
	$(GO) test -run XXX -fuzz FuzzDetect -fuzztime 30s ./configdrive/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...

clean: ## remove build outputs
	rm -rf $(BIN)

.PHONY: help build ramdisk kernel-deb run demo test e2e bench bench-fleet image hostd fuzz lint clean
