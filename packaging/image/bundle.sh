#!/usr/bin/env bash
# Makes a signed update bundle (RAUC, verity format) of a kiosk image's
# root file system (docs/updates.md).
#
#   packaging/image/bundle.sh SOURCE VERSION OUT.raucb
#
# SOURCE is a built image (dist/image/shequ-kiosk.img: its shequ-root-a
# partition is taken) or an ext4 root file system image. VERSION is the
# release's version (Debian ordering; kiosks refuse a bundle not newer than
# the slot they run, unless the release allows the downgrade).
# Environment: UPDATE_CERT and UPDATE_KEY, the release signing certificate
# and key (packaging/image/update-key.sh); COMP, the payload's squashfs
# compression: gzip (default, RAUC's own; 450 MB for today's image), xz or
# zstd (smaller, slower to build), lz4 (617 MB, several times faster to
# build: the tests use it). Needs rauc and mksquashfs (squashfs-tools).
set -euo pipefail
here=$(dirname "$(realpath "$0")")
die() { echo "bundle: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: $0 SOURCE VERSION OUT.raucb"
src=$1 version=$2 out=$3
[ -f "${UPDATE_CERT:-}" ] && [ -f "${UPDATE_KEY:-}" ] || die "set UPDATE_CERT and UPDATE_KEY (packaging/image/update-key.sh)"
for t in rauc mksquashfs sfdisk; do command -v "$t" >/dev/null || die "$t is missing: run packaging/dev/deps.sh"; done
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "version $version is not a Debian version"

st=$(mktemp -d)
trap 'rm -rf "$st"' EXIT
if sfdisk -d "$src" >/dev/null 2>&1; then
	line=$(sfdisk -d "$src" | grep 'name="shequ-root-a"') || die "$src has no shequ-root-a partition"
	start=$(sed -n 's/.*start= *\([0-9]*\),.*/\1/p' <<<"$line")
	size=$(sed -n 's/.*size= *\([0-9]*\),.*/\1/p' <<<"$line")
	dd if="$src" of="$st/rootfs.ext4" bs=512 skip="$start" count="$size" conv=sparse status=none
else
	cp --sparse=always "$src" "$st/rootfs.ext4"
fi
[ $(( $(stat -c %s "$st/rootfs.ext4") % 4096 )) -eq 0 ] || die "the root file system's size is not a multiple of 4 KiB"
install -m 0755 "$here/update/hook.sh" "$st/hook.sh"
cat >"$st/manifest.raucm" <<END
[update]
compatible=shequ-kiosk-amd64
version=$version
build=$(git -C "$here" describe --tags --always --dirty 2>/dev/null || echo unknown)

[bundle]
format=verity

[hooks]
filename=hook.sh

[image.rootfs]
filename=rootfs.ext4
hooks=post-install
adaptive=block-hash-index
END
rm -f "$out"
case "${COMP:=gzip}" in xz | zstd | gzip | lz4) ;; *) die "COMP=$COMP: xz, zstd, gzip or lz4" ;; esac
rauc bundle --cert="$UPDATE_CERT" --key="$UPDATE_KEY" --mksquashfs-args="-comp $COMP" "$st" "$out" >/dev/null
echo "bundle: $out ($(du -h "$out" | cut -f1), version $version)"
