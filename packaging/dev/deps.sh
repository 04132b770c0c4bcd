#!/usr/bin/env bash
# deps.sh: install what Shequ needs to build, test and run on Debian bookworm.
# Idempotent: installs only missing packages and runs `apt-get update` only
# when something is missing. Works as root, or as a user with sudo.
set -euo pipefail

PACKAGES=(
	gcc libc6-dev pkg-config
	libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev
	xvfb x11-utils xauth imagemagick
	mosquitto
	chromium
	ffmpeg mpv
	fonts-noto-cjk
	locales curl make
	dpkg-dev lintian
	mmdebstrap mtools dosfstools fdisk zstd qemu-system-x86 ovmf qemu-utils qemu-guest-agent socat
	rauc squashfs-tools openssl
)
MIN_GO_MINOR=26 # Go 1.26 or newer

log() { printf 'deps: %s\n' "$*" >&2; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run: $* (run as root or install sudo)"
	fi
}

# Go: /usr/local/go first (the official tarball), then PATH.
check_go() {
	local gobin=""
	if [ -x /usr/local/go/bin/go ]; then
		gobin=/usr/local/go/bin/go
	elif command -v go >/dev/null 2>&1; then
		gobin=$(command -v go)
	else
		die "Go 1.${MIN_GO_MINOR} or newer is required: install it from https://go.dev/dl/ into /usr/local/go (Debian's golang package is too old)"
	fi
	local v major minor
	v=$("$gobin" env GOVERSION) || die "cannot run $gobin"
	v=${v#go}
	major=${v%%.*}
	minor=${v#*.}
	minor=${minor%%.*}
	minor=${minor%%[!0-9]*}
	if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "${minor:-0}" -lt "$MIN_GO_MINOR" ]; }; then
		die "$gobin is go$v; Go 1.${MIN_GO_MINOR} or newer is required (https://go.dev/dl/, unpack into /usr/local/go)"
	fi
	log "go$v at $gobin"
}

install_missing() {
	command -v dpkg >/dev/null 2>&1 || die "dpkg not found: these scripts target Debian bookworm"
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		# dpkg-query, not `dpkg -s | grep -q`: with pipefail, grep -q closing
		# the pipe early makes dpkg fail with SIGPIPE.
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		log "all ${#PACKAGES[@]} Debian packages present"
		return
	fi
	log "installing: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# policy-rc.d 101 keeps the packaged mosquitto service from starting during install.
	local policy=/usr/sbin/policy-rc.d created_policy=0
	if [ ! -e "$policy" ]; then
		as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
		created_policy=1
	fi
	local rc=0
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
	if [ "$created_policy" -eq 1 ]; then
		as_root rm -f "$policy"
	fi
	[ "$rc" -eq 0 ] || die "apt-get install failed ($rc)"
}

# The tests and run.sh start their own mosquitto/broker on chosen ports; the
# packaged service would hold 1883.
stop_packaged_mosquitto() {
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		if systemctl is-enabled --quiet mosquitto 2>/dev/null || systemctl is-active --quiet mosquitto 2>/dev/null; then
			log "disabling the packaged mosquitto service"
			as_root systemctl disable --now mosquitto >/dev/null 2>&1 || log "could not disable mosquitto.service (continuing)"
		fi
	fi
}

check_go
install_missing
stop_packaged_mosquitto
