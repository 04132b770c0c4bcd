#!/bin/sh
# The hook of every Shequ update bundle (manifest: [hooks] filename=hook.sh,
# [image.rootfs] hooks=post-install; packaging/image/bundle.sh puts it in).
# slot-post-install: RAUC has written the new root and mounted it at
# $RAUC_SLOT_MOUNT_POINT. The slot's kernel and initrd go to the EFI
# partition (shequ-a/ or shequ-b/), with the slot's version and the body of
# its boot entry, which the boot loader backend (/usr/lib/shequ-update/
# bootloader set-primary) turns into a counted entry. Until then the slot
# has no bootable entry (RAUC marked it bad before writing), so a power cut
# here leaves the kiosk on the slot it runs.
set -eu
[ "$1" = slot-post-install ] || exit 0
[ "$RAUC_SLOT_CLASS" = rootfs ] || exit 0
esp=${SHEQU_ESP:-/boot/efi}
case "$RAUC_SLOT_BOOTNAME" in A) s=a ;; B) s=b ;; *) exit 1 ;; esac
mp=$RAUC_SLOT_MOUNT_POINT
kver=$(ls -1 "$mp/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n1)
[ -n "$kver" ] || { echo "no kernel in the new root" >&2; exit 1; }
version=$(sed -n 's/^version=//p' "$RAUC_BUNDLE_MOUNT_POINT/manifest.raucm" | head -n1)
d=$esp/shequ-$s
mkdir -p "$d"
rm -f "$d/entry.conf"
cp "$mp/boot/vmlinuz-$kver" "$d/.vmlinuz.new"
cp "$mp/boot/initrd.img-$kver" "$d/.initrd.new"
mv -f "$d/.vmlinuz.new" "$d/vmlinuz"
mv -f "$d/.initrd.new" "$d/initrd.img"
cat >"$d/.entry.new" <<END
title Shequ kiosk $version (slot $RAUC_SLOT_BOOTNAME)
version $version
linux /shequ-$s/vmlinuz
initrd /shequ-$s/initrd.img
options root=PARTLABEL=shequ-root-$s rauc.slot=$RAUC_SLOT_BOOTNAME rw rootwait panic=10 console=tty1 console=ttyS0,115200n8 consoleblank=0 quiet loglevel=4 systemd.show_status=error
END
printf '%s\n' "$version" >"$d/.version.new"
mv -f "$d/.version.new" "$d/version"
mv -f "$d/.entry.new" "$d/entry.conf"
sync -f "$d"
