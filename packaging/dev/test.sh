#!/usr/bin/env bash
# test.sh: the one test command (make test, .ci/run). Installs what is
# missing, provides an X display and LANG, then runs gofmt, go vet, every test
# and a short fuzz smoke of every Fuzz* target. Exits non-zero on any failure.
#
# Environment: FUZZTIME (default 3s), TEST_TIMEOUT (default 20m per package).
set -euo pipefail

cd "$(dirname "$0")/../.."
here=packaging/dev
export PATH="/usr/local/go/bin:$PATH"

"$here/deps.sh"

# shellcheck source=packaging/dev/xvfb.sh
. "$here/xvfb.sh"
# shellcheck source=packaging/dev/locale.sh
. "$here/locale.sh"

XVFB_PID=""
trap stop_xvfb EXIT
trap 'exit 130' INT TERM
if display_usable; then
	echo "test: using DISPLAY=$DISPLAY" >&2
else
	start_xvfb
fi
use_zh_locale

SHEQU_MOSQUITTO=$(command -v mosquitto || true)
[ -n "$SHEQU_MOSQUITTO" ] || SHEQU_MOSQUITTO=/usr/sbin/mosquitto
export SHEQU_MOSQUITTO
export CGO_ENABLED=1

results=()
status=0
step() {
	local name=$1 start=$SECONDS rc=0
	shift
	echo "=== $name" >&2
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then
		results+=("$(printf 'ok    %-8s %4ss' "$name" $((SECONDS - start)))")
	else
		results+=("$(printf 'FAIL  %-8s %4ss (exit %s)' "$name" $((SECONDS - start)) "$rc")")
		status=1
	fi
}

gofmt_clean() {
	local out
	out=$(gofmt -l . | grep -v '/testdata/' || true)
	if [ -n "$out" ]; then
		echo "gofmt: these files need gofmt -w:" >&2
		echo "$out" >&2
		return 1
	fi
}

# The kiosk image tests' inputs: the image built from this checkout's agent
# and kiosk packages (uncompressed: the tests read the raw file), and the
# same packages at a higher version for the boot test's upgrade step.
image_inputs() {
	local out=.artifacts/image version
	rm -rf "$out"
	OUT=$out/debs ARCHES=amd64 PACKAGES="agent kiosk" packaging/deb/build.sh
	DEBS_DIR=$out/debs OUT=$out COMPRESS=0 packaging/image/build.sh
	version=$(packaging/deb/version.sh)
	OUT=$out/debs-up ARCHES=amd64 PACKAGES="agent kiosk" VERSION="$version+up1" packaging/deb/build.sh
	SHEQU_IMAGE=$PWD/$out/shequ-kiosk.img
	SHEQU_UPGRADE_DEBS=$PWD/$out/debs-up
	export SHEQU_IMAGE SHEQU_UPGRADE_DEBS
}

step gofmt gofmt_clean
step vet go vet ./...
step image image_inputs
step test go test -count=1 -timeout "${TEST_TIMEOUT:-20m}" -skip '^TestKioskImage(Update)?$' ./...
# The image's boot and update tests under QEMU on their own, so that the
# summary shows their time (mostly the emulator's, where KVM cannot run
# firmware).
step boot go test -count=1 -timeout 60m -run '^TestKioskImage(Update)?$' -v ./cmd/e2e
step fuzz env FUZZTIME="${FUZZTIME:-3s}" "$here/fuzz.sh"

echo
echo "summary (go $(go env GOVERSION), DISPLAY=$DISPLAY, LANG=$LANG, SHEQU_MOSQUITTO=$SHEQU_MOSQUITTO):"
printf '  %s\n' "${results[@]}"
if [ "$status" -ne 0 ]; then
	echo "test: FAILED" >&2
else
	echo "test: all passed"
fi
exit "$status"
