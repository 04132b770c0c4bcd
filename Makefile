# Shequ developer entry points. `make run` and `make test` install what they
# need (packaging/dev/deps.sh) on Debian bookworm; Go 1.26 must be installed.

GO       ?= go
FUZZTIME ?= 30s
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all run test build bench fuzz deps clean

all: build

## run: build and start a local hub, agent and kiosk window with demo data
run:
	packaging/dev/run.sh

## test: gofmt, vet, all tests (with Xvfb and mosquitto) and a fuzz smoke
test:
	packaging/dev/test.sh

## build: build bin/hub, bin/agent and bin/kiosk (the kiosk needs cgo and GL headers)
build:
	mkdir -p bin
	CGO_ENABLED=0 $(GO) build -o bin/hub ./cmd/hub
	CGO_ENABLED=0 $(GO) build -o bin/agent ./cmd/agent
	CGO_ENABLED=1 $(GO) build -o bin/kiosk ./cmd/kiosk

## package: build the Debian packages into dist/ (packaging/deb/build.sh; docs/deploy.md)
.PHONY: package
package:
	packaging/deb/build.sh

## image: build the kiosk OS image into dist/image (its packages first; packaging/image/build.sh; docs/deploy.md)
.PHONY: image
image:
	ARCHES=amd64 PACKAGES="agent kiosk" packaging/deb/build.sh
	packaging/image/build.sh

## update-test: build the kiosk image, then update it under QEMU: refused bundles, a good
## release, a release that crash-loops and rolls back (TestKioskImageUpdate; docs/updates.md)
.PHONY: update-test
update-test: image
	SHEQU_IMAGE=$(CURDIR)/dist/image/shequ-kiosk.img SHEQU_UPDATE_FULL=1 \
		$(GO) test -count=1 -timeout 90m -run '^TestKioskImageUpdate$$' -v ./cmd/e2e

## bench: run every benchmark once (a smoke test; use -benchtime for numbers)
bench:
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench . -benchtime=1x ./...

## fuzz: run every Fuzz* target for FUZZTIME (default 30s) each
fuzz:
	FUZZTIME=$(FUZZTIME) packaging/dev/fuzz.sh

## deps: install missing Debian packages
deps:
	packaging/dev/deps.sh

## clean: remove built binaries and local run data
clean:
	rm -rf bin .run
