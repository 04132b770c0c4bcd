#!/usr/bin/env bash
# version.sh: prints the Debian version of the packages built from this
# checkout (packaging/deb/build.sh uses it; so can anything that names a
# build).
#
#   packaging/deb/version.sh                         from git
#   packaging/deb/version.sh DESCRIBE COUNT YYYYMMDD  the mapping alone (tests)
#
# DESCRIBE is `git describe --tags --always --dirty --match 'v[0-9]*'`,
# COUNT is `git rev-list --count HEAD`, YYYYMMDD the commit's date (UTC).
#
#   v1.2.3                     -> 1.2.3
#   v1.2.3-rc.1                -> 1.2.3~rc.1                    (a pre-release sorts before 1.2.3)
#   v1.2.3-5-g1a2b3c4          -> 1.2.3+git272.20261203.g1a2b3c4 (after 1.2.3, before 1.2.4)
#   1a2b3c4 (no tag yet)       -> 0.0.0~git267.20261203.g1a2b3c4 (before any release)
#   ...-dirty                  -> ... + ".dirty"                (after the clean build of that commit)
#
# The commit count comes first after "git", so dpkg --compare-versions
# orders successive commits of a branch even when their dates are not in
# order (rebases, skewed clocks); the date and the abbreviated hash only say
# where the build came from. Tags are vMAJOR.MINOR.PATCH[-PRERELEASE].
set -euo pipefail

die() { echo "version: $*" >&2; exit 1; }

if [ $# -eq 3 ]; then
	describe=$1 count=$2 date=$3
elif [ $# -eq 0 ]; then
	cd "$(dirname "$0")/../.."
	describe=$(git describe --tags --always --dirty --match 'v[0-9]*') || die "git describe failed (not a git checkout?)"
	count=$(git rev-list --count HEAD)
	date=$(TZ=UTC git log -1 --date=format-local:%Y%m%d --format=%cd)
else
	die "usage: $0 [DESCRIBE COUNT YYYYMMDD]"
fi
[[ "$count" =~ ^[0-9]+$ ]] || die "commit count $count is not a number"
[[ "$date" =~ ^[0-9]{8}$ ]] || die "date $date is not YYYYMMDD"

dirty=""
if [[ "$describe" == *-dirty ]]; then
	dirty=.dirty
	describe=${describe%-dirty}
fi

# After a tag: TAG-N-gHASH. Without one: HASH.
if [[ "$describe" =~ ^v([0-9]+\.[0-9]+\.[0-9]+)(-([0-9A-Za-z.]+))?-([0-9]+)-g([0-9a-f]+)$ ]]; then
	base=${BASH_REMATCH[1]} pre=${BASH_REMATCH[3]} hash=${BASH_REMATCH[5]}
	v=$base${pre:+~$pre}+git$count.$date.g$hash
elif [[ "$describe" =~ ^v([0-9]+\.[0-9]+\.[0-9]+)(-([0-9A-Za-z.]+))?$ ]]; then
	base=${BASH_REMATCH[1]} pre=${BASH_REMATCH[3]}
	v=$base${pre:+~$pre}
	# a dirty tree at a tag is not that release
	[ -z "$dirty" ] || v=$v+git$count.$date
elif [[ "$describe" =~ ^[0-9a-f]{4,40}$ ]]; then
	v=0.0.0~git$count.$date.g$describe
else
	die "cannot make a Debian version of \"$describe\" (tags must look like v1.2.3 or v1.2.3-rc.1)"
fi
v=$v$dirty
# Debian policy 5.6.12: upstream version starts with a digit, then
# [A-Za-z0-9.+~] (no hyphen: these packages have no Debian revision).
[[ "$v" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "\"$v\" is not a valid Debian version"
echo "$v"
