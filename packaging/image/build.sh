#!/usr/bin/env bash
# Builds the Shequ kiosk OS image: a bootable amd64 UEFI disk image made
# from Debian bookworm packages and our own .debs only.
#
#   packaging/image/build.sh            (make image)
#
# Environment (all optional):
#   DEBS_DIR           where shequ-agent_*_amd64.deb and shequ-kiosk_*_amd64.deb are (default dist)
#   OUT                output directory (default dist/image)
#   SOURCE_DATE_EPOCH  timestamp of every file in the image (default: the last commit's time)
#   MIRROR             Debian mirror (default http://deb.debian.org/debian)
#   CACHE              downloaded .debs kept between builds (default /var/cache/shequ-image)
#   HUB_URL, CA_PIN    the deployment's hub and CA pin, written to the EFI partition's
#                      shequ/site.env (packaging/image/configure.sh changes them later)
#   UPDATE_CA          the deployment's update CA certificate (PEM), written to the EFI
#                      partition's shequ/update-ca.pem: the bundles RAUC accepts
#                      (docs/updates.md; configure.sh can set it later)
#   COMPRESS           1 (default) also writes IMAGE.zst
#
# Layout (GPT, see docs/deploy.md):
#   1 shequ-esp     256 MiB  FAT32: systemd-boot, each slot's kernel, initrd and version
#                             (shequ-a/, shequ-b/), shequ/site.env, shequ/update-ca.pem
#   2 shequ-root-a  2 GiB    ext4: the root file system
#   3 shequ-root-b  2 GiB    empty: the second root slot, written by updates (RAUC)
#   4 shequ-data    512 MiB  ext4: /var/lib/shequ-agent (bbolt, media cache); grows to fill the
#                             disk at first boot (systemd-repart + x-systemd.growfs)
#
# Nothing secret is in the image: no private key, token, password or device
# identity (the root account is locked, /etc/machine-id is empty, the agent
# has no database until it is enrolled on site). Needs root (mmdebstrap in
# root mode), mmdebstrap, mtools, dosfstools, e2fsprogs, fdisk and zstd.
set -euo pipefail
cd "$(dirname "$0")/../.."
root_dir=$PWD

DEBS_DIR=${DEBS_DIR:-dist}
OUT=${OUT:-dist/image}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CACHE=${CACHE:-/var/cache/shequ-image}
COMPRESS=${COMPRESS:-1}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
fi
export SOURCE_DATE_EPOCH

die() { echo "image: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap installs packages in root mode)"
for t in mmdebstrap mkfs.ext4 debugfs dumpe2fs mkfs.vfat mcopy sfdisk zstd; do
	command -v "$t" >/dev/null || die "$t is missing: run packaging/dev/deps.sh"
done

# newest .deb of a package in DEBS_DIR
newest() {
	local f
	f=$(ls -1 "$DEBS_DIR"/"$1"_*_amd64.deb 2>/dev/null | sort -V | tail -n1)
	[ -n "$f" ] || die "no $1 package in $DEBS_DIR: run make package"
	realpath "$f"
}
agent_deb=$(newest shequ-agent)
kiosk_deb=$(newest shequ-kiosk)
version=$(dpkg-deb -f "$kiosk_deb" Version)
name=shequ-kiosk_${version}_amd64

mkdir -p "$OUT" "$CACHE/debs"
OUT=$(realpath "$OUT")
work=$(mktemp -d "$OUT/.build.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# Debian packages of the image besides the essential ones. The kiosk's own
# dependencies (cage, xwayland, mesa, ffmpeg) come from shequ-kiosk.
packages=(
	systemd systemd-sysv udev dbus libpam-systemd
	linux-image-amd64 initramfs-tools zstd
	systemd-boot systemd-boot-efi
	systemd-resolved systemd-timesyncd iproute2
	e2fsprogs dosfstools fdisk kbd
	qemu-guest-agent
	rauc rauc-service
)
# Our packages' dependencies come from the mirror like the rest; our
# packages themselves are installed with dpkg in the tree afterwards.
deps() { dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/[[:space:]]//g' | grep -v '^shequ-' | grep -v '^$'; }
packages+=($(deps "$agent_deb") $(deps "$kiosk_deb"))
include=$(IFS=,; echo "${packages[*]}")

echo "image: installing Debian bookworm and $(basename "$agent_deb") $(basename "$kiosk_deb")"
start=$(date +%s)
mmdebstrap --variant=minbase --mode=root --format=directory \
	--components=main --include="$include" \
	--aptopt='Acquire::Retries "3"' \
	--skip=download/empty --skip=essential/unlink \
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
	--setup-hook="sync-in $CACHE/debs /var/cache/apt/archives/" \
	--customize-hook='mkdir -p "$1/tmp/shequ-debs"' \
	--customize-hook="copy-in $agent_deb $kiosk_deb /tmp/shequ-debs" \
	--customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/shequ-debs/'"$(basename "$agent_deb") /tmp/shequ-debs/$(basename "$kiosk_deb")" \
	--customize-hook='rm -rf "$1/tmp/shequ-debs"' \
	--customize-hook="sync-out /var/cache/apt/archives $CACHE/debs" \
	--customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
	--customize-hook="$root_dir/packaging/image/customize.sh \"\$1\"" \
	bookworm "$work/root" \
	"deb $MIRROR bookworm main" \
	"deb $MIRROR bookworm-updates main" \
	"deb ${MIRROR%/debian}/debian-security bookworm-security main" \
	>"$work/mmdebstrap.log" 2>&1 || { tail -n 40 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed (log above)"; }
# mmdebstrap keeps no .deb from our own packages in the cache
rm -f "$CACHE"/debs/shequ-*.deb

# --- the EFI system partition's files -------------------------------------
rootfs=$work/root
esp=$work/esp
kver=$(ls -1 "$rootfs"/boot | sed -n 's/^vmlinuz-//p' | sort -V | tail -n1)
[ -n "$kver" ] || die "no kernel in the image"
mkdir -p "$esp/EFI/BOOT" "$esp/loader/entries" "$esp/shequ-a" "$esp/shequ"
cp "$rootfs/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$esp/EFI/BOOT/BOOTX64.EFI"
cp "$rootfs/boot/vmlinuz-$kver" "$esp/shequ-a/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$esp/shequ-a/initrd.img"
echo "$version" >"$esp/shequ-a/version"
# "default shequ-*": systemd-boot takes the first entry in its order, which
# the update engine sets with sort-key; an entry with no tries left sorts
# last (a pattern naming one slot would keep booting it when it is bad).
cat >"$esp/loader/loader.conf" <<EOF
default shequ-*
timeout 0
editor no
auto-entries no
auto-firmware no
console-mode keep
EOF
# console=ttyS0 last: systemd's and the kernel's messages go to the serial
# port (where a technician's cable or QEMU reads them), the screen stays
# clean until the kiosk draws.
cat >"$esp/loader/entries/shequ-a.conf" <<EOF
title Shequ kiosk $version (slot A)
version $version
sort-key 1
linux /shequ-a/vmlinuz
initrd /shequ-a/initrd.img
options root=PARTLABEL=shequ-root-a rauc.slot=A rw rootwait panic=10 console=tty1 console=ttyS0,115200n8 consoleblank=0 quiet loglevel=4 systemd.show_status=error
EOF
packaging/image/site-env.sh "${HUB_URL:-}" "${CA_PIN:-}" >"$esp/shequ/site.env"
if [ -n "${UPDATE_CA:-}" ]; then
	openssl x509 -in "$UPDATE_CA" -noout 2>/dev/null || die "UPDATE_CA=$UPDATE_CA is not a PEM certificate"
	cp "$UPDATE_CA" "$esp/shequ/update-ca.pem"
fi

# Every file of the image gets the same timestamp, so that two builds of
# the same inputs give the same file systems.
clamp() { find "$1" -depth -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch -h -d "@$SOURCE_DATE_EPOCH"; }
clamp "$rootfs"
clamp "$esp"

# --- partition images -----------------------------------------------------
MiB=$((1024 * 1024))
esp_mib=256 slot_mib=2048 data_mib=512
# stable ids: the same for every build of every version (the update engine
# and fstab find partitions by label; these only make builds repeatable)
uuid() { printf '%s' "shequ-image-$1" | sha256sum | sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-8\4-\5/'; }

used=$(du -s -B1M --apparent-size "$rootfs" | cut -f1)
[ "$used" -lt $((slot_mib * 85 / 100)) ] || die "the root file system ($used MiB) does not fit a $slot_mib MiB slot with 15% free"

export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
mkext4() { # image label size_mib [dir]
	local args=(-q -F -t ext4 -L "$2" -U "$(uuid "fs-$2")" -E "hash_seed=$(uuid "hash-$2"),root_owner=0:0" -I 256 -O ^orphan_file)
	[ -z "${4:-}" ] || args+=(-d "$4")
	mkfs.ext4 "${args[@]}" "$1" "$3M" >/dev/null
}
# mke2fs 1.47.0 -d copies each file's ctime (the build host's clock: no
# tool can set it) and atime (which its own reading of the tree bumps) into
# the inodes; set both to SOURCE_DATE_EPOCH in every inode in use.
clamp_inode_times() { # ext4-image
	local ipg
	ipg=$(dumpe2fs -h "$1" 2>/dev/null | sed -n 's/^Inodes per group: *//p')
	dumpe2fs "$1" 2>/dev/null | awk -v ipg="$ipg" -v t="$SOURCE_DATE_EPOCH" '
	/^Group [0-9]+:/ { grp = $2 + 0 }
	/^  Free inodes: / {
		delete free
		s = $0; sub(/^  Free inodes: */, "", s)
		n = split(s, parts, ", ")
		for (i = 1; i <= n; i++)
			if (split(parts[i], r, "-") == 2) { for (j = r[1]; j <= r[2]; j++) free[j] = 1 } else if (parts[i] != "") free[parts[i] + 0] = 1
		for (ino = grp * ipg + 1; ino <= (grp + 1) * ipg; ino++)
			if (!(ino in free) && (ino == 2 || ino > 10)) { print "sif <" ino "> atime @" t; print "sif <" ino "> ctime @" t }
	}' >"$work/inode-times"
	# debugfs also stamps the superblock with its write time and byte count:
	# put back the superblock mke2fs wrote (only inodes change here).
	dd if="$1" of="$work/superblock" bs=1024 skip=1 count=1 status=none
	debugfs -w -f "$work/inode-times" "$1" >/dev/null 2>"$work/inode-times.log" ||
		{ cat "$work/inode-times.log" >&2; die "debugfs could not set the inode times of $1"; }
	! grep -v '^debugfs' "$work/inode-times.log" | grep -q . || { head "$work/inode-times.log" >&2; die "debugfs: errors setting inode times"; }
	dd if="$work/superblock" of="$1" bs=1024 seek=1 count=1 conv=notrunc status=none
}
mkext4 "$work/root-a.img" shequ-root-a "$slot_mib" "$rootfs"
clamp_inode_times "$work/root-a.img"
mkext4 "$work/data.img" shequ-data "$data_mib"

truncate -s "${esp_mib}M" "$work/esp.img"
mkfs.vfat -F 32 -n SHEQU-ESP -i 5348455a --invariant "$work/esp.img" >/dev/null
(cd "$esp" && mcopy -s -m -i "$work/esp.img" ./* ::/)

# --- the disk -------------------------------------------------------------
img=$work/$name.img
total_mib=$((1 + esp_mib + 2 * slot_mib + data_mib + 1))
truncate -s "${total_mib}M" "$img"
esp_start=$((1 * MiB / 512))
a_start=$((esp_start + esp_mib * MiB / 512))
b_start=$((a_start + slot_mib * MiB / 512))
d_start=$((b_start + slot_mib * MiB / 512))
sfdisk -q --no-reread --no-tell-kernel "$img" <<EOF
label: gpt
label-id: $(uuid disk)
first-lba: 2048
start=$esp_start, size=$((esp_mib * MiB / 512)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$(uuid part-esp), name=shequ-esp
start=$a_start, size=$((slot_mib * MiB / 512)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$(uuid part-root-a), name=shequ-root-a
start=$b_start, size=$((slot_mib * MiB / 512)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$(uuid part-root-b), name=shequ-root-b
start=$d_start, size=$((data_mib * MiB / 512)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$(uuid part-data), name=shequ-data
EOF
put() { dd if="$1" of="$img" bs=1M seek=$(($2 * 512 / MiB)) conv=notrunc,sparse status=none; }
put "$work/esp.img" "$esp_start"
put "$work/root-a.img" "$a_start"
put "$work/data.img" "$d_start"

mv -f "$img" "$OUT/$name.img"
(cd "$OUT" && sha256sum "$name.img" >"$name.img.sha256")
if [ "$COMPRESS" = 1 ]; then
	zstd -q -f -T0 -6 "$OUT/$name.img" -o "$OUT/$name.img.zst"
	(cd "$OUT" && sha256sum "$name.img.zst" >"$name.img.zst.sha256")
fi
ln -sfn "$name.img" "$OUT/shequ-kiosk.img"
echo "image: $OUT/$name.img ($(du -h --apparent-size "$OUT/$name.img" | cut -f1) raw, $(du -h "$OUT/$name.img" | cut -f1) allocated) in $(($(date +%s) - start)) s"
[ "$COMPRESS" != 1 ] || echo "image: $OUT/$name.img.zst ($(du -h "$OUT/$name.img.zst" | cut -f1))"
