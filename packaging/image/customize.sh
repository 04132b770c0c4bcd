#!/usr/bin/env bash
# mmdebstrap customize hook of packaging/image/build.sh: turns the
# installed Debian tree in $1 into the kiosk OS. Runs on the build host.
set -euo pipefail
r=$1
here=$(dirname "$(realpath "$0")")

echo shequ-kiosk >"$r/etc/hostname"
cat >"$r/etc/hosts" <<END
127.0.0.1	localhost
127.0.1.1	shequ-kiosk
::1	localhost ip6-localhost ip6-loopback
END
ln -sfn /usr/share/zoneinfo/Asia/Shanghai "$r/etc/localtime"
echo Asia/Shanghai >"$r/etc/timezone"
echo LANG=C.UTF-8 >"$r/etc/locale.conf"
# No device identity in the image: systemd makes a machine id at first
# boot and commits it to the (writable) root.
: >"$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"

cat >"$r/etc/fstab" <<END
# Shequ kiosk: partitions by GPT label (docs/deploy.md). The root comes
# from the boot entry's root=PARTLABEL=.
PARTLABEL=shequ-esp   /boot/efi             vfat  umask=0077,shortname=winnt,noexec,nosuid,nodev  0 2
PARTLABEL=shequ-data  /var/lib/shequ-agent  ext4  defaults,nosuid,nodev,noexec,x-systemd.growfs  0 2
END
mkdir -p "$r/boot/efi" "$r/var/lib/shequ-agent"

# The data partition grows into the rest of the disk at first boot; the
# other partitions keep their sizes (and root slot B stays for updates).
install -d "$r/usr/lib/repart.d"
for def in 10-esp.conf 20-root-a.conf 30-root-b.conf 40-data.conf; do
	install -m 0644 "$here/repart.d/$def" "$r/usr/lib/repart.d/$def"
done

# Wired network by DHCP, names through systemd-resolved.
install -d "$r/etc/systemd/network"
cat >"$r/etc/systemd/network/20-wired.network" <<END
[Match]
Type=ether

[Network]
DHCP=yes

[DHCPv4]
UseDomains=yes
END
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$r/etc/resolv.conf"

# Journal: persistent but small (the root is 2 GiB).
install -d "$r/etc/systemd/journald.conf.d"
cat >"$r/etc/systemd/journald.conf.d/shequ.conf" <<END
[Journal]
Storage=persistent
SystemMaxUse=64M
END

# The agent reads the site settings from the EFI partition and keeps its
# data on the data partition: both must be mounted first.
install -d "$r/etc/systemd/system/shequ-agent.service.d"
cat >"$r/etc/systemd/system/shequ-agent.service.d/image.conf" <<END
[Unit]
RequiresMountsFor=/boot/efi /var/lib/shequ-agent
END

# "kiosk ready" on the serial console whenever the kiosk UI has drawn its
# window (shequ-kiosk.service is Type=notify: the UI says READY=1 then).
install -m 0644 "$here/shequ-kiosk-ready.service" "$r/usr/lib/systemd/system/shequ-kiosk-ready.service"

# A/B updates (docs/updates.md): RAUC writes the other root slot from a
# signed bundle; the boot loader backend keeps the slots' state in the
# names of systemd-boot's entries; a new slot's counted boots must pass the
# health gate before systemd-bless-boot marks it good.
install -d "$r/etc/rauc" "$r/usr/lib/shequ-update" "$r/etc/systemd/system/rauc.service.d" \
	"$r/etc/systemd/system/boot-complete.target.d"
install -m 0644 "$here/update/system.conf" "$r/etc/rauc/system.conf"
install -D -m 0644 "$here/update/shequ-rauc.conf" "$r/etc/dbus-1/system.d/shequ-rauc.conf"
install -m 0755 "$here/update/bootloader" "$here/update/pre-install" "$here/update/prepare" "$r/usr/lib/shequ-update/"
install -m 0644 "$here/update/rauc.conf" "$r/etc/systemd/system/rauc.service.d/image.conf"
install -m 0644 "$here/update/boot-complete.conf" "$r/etc/systemd/system/boot-complete.target.d/shequ.conf"
for u in shequ-health-gate.service shequ-update-prepare.service shequ-update-reboot.path shequ-update-reboot.service; do
	install -m 0644 "$here/update/$u" "$r/usr/lib/systemd/system/$u"
done
cat >"$r/usr/lib/tmpfiles.d/shequ-update.conf" <<END
# RAUC's status and block-hash indexes, on the data partition (system.conf)
d /var/lib/shequ-agent/rauc 0700 root root -
END

systemctl --root="$r" --quiet enable systemd-networkd.service systemd-resolved.service shequ-health-gate.service \
	shequ-kiosk-ready.service shequ-update-prepare.service shequ-update-reboot.path
# a kiosk boots to its UI without questions, and is not updated by apt
# behind the fleet's back (updates are signed images)
systemctl --root="$r" --quiet mask systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer getty@tty1.service
systemctl --root="$r" --quiet set-default graphical.target

# Files that only record when the image was built.
rm -f "$r/var/cache/ldconfig/aux-cache" "$r/var/log/dpkg.log" "$r/var/log/alternatives.log" \
	"$r"/var/log/apt/*.log "$r"/var/log/apt/eipp.log.xz "$r/var/lib/dpkg/status-old" "$r/var/lib/dpkg/diversions-old"
