#!/usr/bin/env bash
# Prints a kiosk image's site settings file (shequ/site.env on the EFI
# partition, read by shequ-agent.service): site-env.sh HUB_URL CA_PIN.
# Either may be empty; the kiosk then says on its setup screen that no hub
# is configured.
set -euo pipefail
hub=${1:-} pin=${2:-}
case "$hub" in
"" | https://*) ;;
*) echo "site-env: hub URL must start with https:// (got $hub)" >&2; exit 2 ;;
esac
if [ -n "$pin" ] && ! [[ "$pin" =~ ^[0-9a-f]{64}$ ]]; then
	echo "site-env: CA pin must be 64 lowercase hex digits (hub ca-pin prints it)" >&2
	exit 2
fi
cat <<END
# Shequ kiosk site settings, read by shequ-agent.service at start.
# Written by packaging/image/build.sh or packaging/image/configure.sh;
# a technician can also edit this file on the FAT partition of the written
# disk. Nothing here is secret: the CA pin is the SHA-256 of the hub's
# public CA certificate ('shequ-hub ca-pin' prints it).
SHEQU_HUB_URL=$hub
SHEQU_CA_PIN=$pin
END
