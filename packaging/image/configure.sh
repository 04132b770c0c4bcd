#!/usr/bin/env bash
# Sets the hub address and CA pin of a built kiosk image without
# rebuilding it: the file shequ/site.env on its EFI partition is replaced
# (with mtools, no loop device or root needed), and with a fourth argument
# the update CA certificate, shequ/update-ca.pem (docs/updates.md).
#
#   packaging/image/configure.sh IMAGE.img https://hub.example:8443 CA_PIN [UPDATE_CA.pem]
set -euo pipefail
[ $# -eq 3 ] || [ $# -eq 4 ] || { echo "usage: $0 IMAGE.img HUB_URL CA_PIN [UPDATE_CA.pem]" >&2; exit 2; }
img=$1
here=$(dirname "$0")
# the EFI partition is the first one; sfdisk -d names its start in sectors
start=$(sfdisk -d "$img" | sed -n 's/.*start= *\([0-9]*\),.*name="shequ-esp".*/\1/p')
[ -n "$start" ] || { echo "configure: $img has no shequ-esp partition" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$here/site-env.sh" "$2" "$3" >"$tmp"
mcopy -o -i "$img@@$((start * 512))" "$tmp" ::/shequ/site.env
if [ $# -eq 4 ]; then
	openssl x509 -in "$4" -noout 2>/dev/null || { echo "configure: $4 is not a PEM certificate" >&2; exit 1; }
	mcopy -o -i "$img@@$((start * 512))" "$4" ::/shequ/update-ca.pem
fi
echo "configure: $img now points at $2"
