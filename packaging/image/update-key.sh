#!/usr/bin/env bash
# Makes a deployment's update signing keys (docs/updates.md): an update CA,
# whose certificate goes on every kiosk (make image UPDATE_CA=..., or
# configure.sh), and a release signing key with a certificate from that CA
# (extended key usage codeSigning, as the kiosks' RAUC requires).
#
#   packaging/image/update-key.sh DIR [DAYS]
#
# DIR gets ca.pem and ca.key (keep the CA key offline: it only signs new
# release certificates), release.pem and release.key (the hub or the
# release machine signs bundles with them). DAYS is the release
# certificate's lifetime (default 730); rotate it before it ends by running
# this again with the same DIR: an existing CA is kept and only a new
# release key and certificate are made.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [DAYS]" >&2; exit 2; }
dir=$1 days=${2:-730}
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" \
		-days 7300 -subj "/O=Shequ/CN=Shequ update CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	chmod 0644 "$dir/ca.pem"
	echo "update-key: new update CA $dir/ca.pem"
fi
ext=$(mktemp)
trap 'rm -f "$ext" "$dir/release.csr"' EXIT
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,codeSigning\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n' >"$ext"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/release.key.new" -out "$dir/release.csr" \
	-subj "/O=Shequ/CN=Shequ release signing $(date -u +%Y-%m-%d)" 2>/dev/null
openssl x509 -req -in "$dir/release.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
	-days "$days" -extfile "$ext" -out "$dir/release.pem.new" 2>/dev/null
mv -f "$dir/release.key.new" "$dir/release.key"
mv -f "$dir/release.pem.new" "$dir/release.pem"
chmod 0644 "$dir/release.pem"
echo "update-key: release signing key $dir/release.key, certificate $dir/release.pem (valid $days days)"
