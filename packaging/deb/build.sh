#!/usr/bin/env bash
# build.sh: build the Debian packages shequ-hub, shequ-agent and shequ-kiosk
# with nfpm (make package). Two runs on the same commit with the same
# SOURCE_DATE_EPOCH give byte-identical .debs (packaging/deb/deb_test.go
# checks it).
#
#   packaging/deb/build.sh
#   OUT=/tmp/debs ARCHES=amd64 packaging/deb/build.sh
#
# Environment (all optional):
#   OUT                output directory (default dist); existing .debs of the
#                      same names are replaced
#   ARCHES             architectures of shequ-hub and shequ-agent (default
#                      "amd64 arm64"; pure Go, cross-compiled)
#   KIOSK_ARCHES       architectures of shequ-kiosk (default amd64; the UI
#                      needs cgo, so another one needs a cross C compiler and
#                      that architecture's GL and X11 development packages:
#                      see docs/deploy.md)
#   PACKAGES           which packages (default "hub agent kiosk")
#   VERSION            Debian version (default: packaging/deb/version.sh)
#   SOURCE_DATE_EPOCH  time of every file (default: the last commit's time)
#   MAINTAINER, HOMEPAGE  control fields (defaults below)
#   NFPM               nfpm to use (default: nfpm v2.45.2 in GOBIN, which
#                      is installed there with `go install` when missing)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

NFPM_MODULE=github.com/goreleaser/nfpm/v2
NFPM_VERSION=v2.45.2
OUT=${OUT:-dist}
ARCHES=${ARCHES:-amd64 arm64}
KIOSK_ARCHES=${KIOSK_ARCHES:-amd64}
PACKAGES=${PACKAGES:-hub agent kiosk}
export MAINTAINER=${MAINTAINER:-Shequ maintainers <maintainers@shequ.example>}
export HOMEPAGE=${HOMEPAGE:-https://github.com/shequ/shequ}
# The repository has no licence file yet: the packages say so (copyright).
export LICENSE=${LICENSE:-UNLICENSED}

log() { printf 'package: %s\n' "$*" >&2; }
die() { printf 'package: error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go not found (Go 1.26 in /usr/local/go)"
for tool in dpkg-deb gzip; do
	command -v "$tool" >/dev/null || die "$tool is missing: run packaging/dev/deps.sh"
done

# --- nfpm, pinned, outside the repository ------------------------------------
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin=$(go env GOPATH)/bin
NFPM=${NFPM:-$gobin/nfpm}
nfpm_version() { go version -m "$1" 2>/dev/null | awk -v m="$NFPM_MODULE" '$1 == "mod" && $2 == m { print $3 }'; }
if [ "$(nfpm_version "$NFPM")" != "$NFPM_VERSION" ]; then
	[ "$NFPM" = "$gobin/nfpm" ] || die "$NFPM is not nfpm $NFPM_VERSION"
	log "installing nfpm $NFPM_VERSION into $gobin"
	(cd / && GOBIN=$gobin GOFLAGS= CGO_ENABLED=0 go install "$NFPM_MODULE/cmd/nfpm@$NFPM_VERSION") ||
		die "go install nfpm failed"
	[ "$(nfpm_version "$NFPM")" = "$NFPM_VERSION" ] || die "$NFPM is not nfpm $NFPM_VERSION after go install"
fi

# --- version and time --------------------------------------------------------
if [ -z "${VERSION:-}" ]; then
	VERSION=$("$here/version.sh")
fi
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "VERSION $VERSION is not a Debian version without revision"
export VERSION
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH is not a number"
export SOURCE_DATE_EPOCH
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	commit="$commit with uncommitted changes"
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/shequ-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- files shared by the packages --------------------------------------------
# gzip -n: no name or time in the header; the file's own time does not matter
# (nfpm stamps SOURCE_DATE_EPOCH).
gz() { gzip -9nc "$1" >"$2"; }

# changelog.gz of a native package: one entry for this build.
changelog() { # package dst
	local date
	date=$(LC_ALL=C TZ=UTC date -d "@$SOURCE_DATE_EPOCH" -R)
	cat >"$work/changelog.$1" <<EOF
$1 ($VERSION) unstable; urgency=medium

  * Built from $HOMEPAGE,
    commit $commit.
  * The history is in the repository: git log.

 -- $MAINTAINER  $date
EOF
	gz "$work/changelog.$1" "$2"
}

# Licence texts Debian ships in /usr/share/common-licenses are referred to,
# not copied (Debian policy 12.5).
common_licenses() {
	perl -0pe 's/[ \t]*Apache License\s+Version 2\.0, January 2004\s.*?END OF TERMS AND CONDITIONS(?:\s*APPENDIX: How to apply the Apache License.*?limitations under the License\.)?/[The Apache License, Version 2.0. On Debian systems its full text is in\n\/usr\/share\/common-licenses\/Apache-2.0.]/s'
}

# copyright: Shequ's own terms, then every Go module linked into the binary
# with its licence text from the module cache, then extra files.
copyright() { # dst goos goarch cgo pkgdir [extra-title extra-file]...
	local dst=$1 goarch=$3 cgo=$4 pkg=$5
	shift 5
	{
		cat <<EOF
Shequ ($HOMEPAGE)

Copyright: the Shequ authors
License: none granted yet
 The Shequ repository has no licence file. Until its authors publish one,
 no licence to copy, modify or redistribute Shequ itself is granted beyond
 what the law allows; ask the maintainers ($MAINTAINER).

The binary in this package also contains the following Go modules, each
under its own licence, reproduced below from the module's source.
EOF
		local mods
		mods=$(GOOS=linux GOARCH=$goarch CGO_ENABLED=$cgo go list -deps \
			-f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' "$pkg" | sort -u)
		[ -n "$mods" ] || die "no modules listed for $pkg"
		local path version dir f found
		while read -r path version dir; do
			printf '\n%s\n%s %s\n%s\n' "------------------------------------------------------------------------" "$path" "$version" "------------------------------------------------------------------------"
			found=0
			for f in "$dir"/LICENSE* "$dir"/LICENCE* "$dir"/COPYING* "$dir"/NOTICE* "$dir"/edl-v10 "$dir"/epl-v20; do
				[ -f "$f" ] || continue
				printf '\n[%s]\n\n' "${f##*/}"
				# licence files in the module cache: text, CRLF or not
				tr -d '\r' <"$f" | common_licenses
				found=1
			done
			[ "$found" = 1 ] || die "no licence file in $dir ($path $version): add it by hand to build.sh"
		done <<<"$mods"
		while [ $# -ge 2 ]; do
			printf '\n%s\n%s\n%s\n\n' "------------------------------------------------------------------------" "$1" "------------------------------------------------------------------------"
			tr -d '\r' <"$2" | common_licenses
			shift 2
		done
	} >"$dst"
}

# The invisible cursor theme: an Xcursor file with one 1x1 image whose only
# pixel is fully transparent (format: Xcursor(3), "Xcur" header, table of
# contents, one image chunk; all little-endian 32-bit fields).
cursor_theme() { # dir
	local dir=$1
	le() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
	local image=0xfffd0002 nominal=24
	mkdir -p "$dir/cursors"
	# shellcheck disable=SC2059
	printf "Xcur$(le 16)$(le 0x10000)$(le 1)$(le $image)$(le $nominal)$(le 28)$(le 36)$(le $image)$(le $nominal)$(le 1)$(le 1)$(le 1)$(le 0)$(le 0)$(le 0)$(le 0)" \
		>"$dir/cursors/left_ptr"
	[ "$(stat -c %s "$dir/cursors/left_ptr")" = 68 ] || die "the Xcursor file is not 68 bytes"
	chmod 0644 "$dir/cursors/left_ptr"
	# CSS and X11 core names (GLFW, Xlib's themed core cursors, wlroots).
	local name
	for name in default arrow top_left_arrow left_arrow right_ptr X_cursor pirate \
		pointer hand hand1 hand2 pointing_hand openhand closedhand grab grabbing dnd-move dnd-copy dnd-link dnd-none \
		text xterm ibeam vertical-text crosshair cross tcross cell plus \
		wait watch progress left_ptr_watch half-busy help question_arrow whats_this context-menu \
		move fleur all-scroll size_all not-allowed no-drop forbidden crossed_circle circle alias copy zoom-in zoom-out \
		col-resize row-resize split_h split_v ew-resize ns-resize nesw-resize nwse-resize \
		n-resize s-resize e-resize w-resize ne-resize nw-resize se-resize sw-resize \
		top_side bottom_side left_side right_side top_left_corner top_right_corner bottom_left_corner bottom_right_corner \
		sb_h_double_arrow sb_v_double_arrow h_double_arrow v_double_arrow size_hor size_ver size_bdiag size_fdiag \
		double_arrow up_arrow sb_up_arrow sb_down_arrow sb_left_arrow sb_right_arrow center_ptr draft_large draft_small; do
		ln -s left_ptr "$dir/cursors/$name"
	done
	cat >"$dir/index.theme" <<EOF
[Icon Theme]
Name=shequ-invisible
Comment=Invisible pointer of the Shequ kiosk session (1x1 transparent Xcursor)
EOF
	chmod 0644 "$dir/index.theme"
}

# maintainer scripts from the templates
scripts() { # stage package enable optional start purge
	local f
	for f in postinst prerm postrm; do
		sed -e "s|@PKG@|$2|g" -e "s|@ENABLE@|$3|g" -e "s|@OPTIONAL@|$4|g" -e "s|@START@|$5|g" -e "s|@PURGE@|$6|g" \
			"$here/$f.in" >"$1/$f"
		chmod 0755 "$1/$f"
		! grep -q '@[A-Z]*@' "$1/$f" || die "$f of $2: a placeholder is left"
	done
}

# go build of one command, reproducibly
build() { # goarch cgo cmd out
	local flags=(-trimpath -buildvcs=false -ldflags "-s -w -buildid= -X main.version=$VERSION")
	if [ "$2" = 1 ]; then
		# cgo: PIE and Debian's hardening flags for the C parts (GLFW).
		flags+=(-buildmode=pie)
		CGO_CFLAGS="-O2 -g0 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fno-omit-frame-pointer" \
			CGO_LDFLAGS="-Wl,-z,relro -Wl,-z,now" \
			GOOS=linux GOARCH=$1 CGO_ENABLED=1 CC=${CC:-$(cc_for "$1")} go build "${flags[@]}" -o "$4" "./cmd/$3"
	else
		GOOS=linux GOARCH=$1 CGO_ENABLED=0 go build "${flags[@]}" -o "$4" "./cmd/$3"
	fi
}
cc_for() {
	case $1 in
	amd64) echo x86_64-linux-gnu-gcc ;;
	arm64) echo aarch64-linux-gnu-gcc ;;
	*) die "no C compiler known for $1" ;;
	esac
}

deb_arch() { # Go arch -> Debian arch (the same names for these two)
	case $1 in
	amd64 | arm64) echo "$1" ;;
	*) die "unsupported architecture $1" ;;
	esac
}

stage_common() { # stage name
	install -m 0644 "$here/$2.service" "$1/$2.service"
	install -m 0644 "$here/$2.sysusers" "$1/$2.sysusers"
	install -m 0644 "$here/$2.tmpfiles" "$1/$2.tmpfiles"
	install -m 0644 "$here/$2.lintian-overrides" "$1/lintian-overrides"
	changelog "$2" "$1/changelog.gz"
}

manpage() { # stage page.section
	gz "$here/man/$2" "$1/$2.gz"
}

nfpm_pkg() { # stage yaml arch
	local t0=$SECONDS
	(cd "$1" && ARCH=$3 "$NFPM" package --config "$here/$2" --packager deb --target "$OUT/" >"$1/nfpm.log" 2>&1) ||
		{ cat "$1/nfpm.log" >&2; die "nfpm failed for $2 ($3)"; }
	log "$(sed -n 's/.*created package: //p' "$1/nfpm.log" | xargs -r basename) ($((SECONDS - t0)) s)"
}

built=()
for pkg in $PACKAGES; do
	case $pkg in
	hub | agent) arches=$ARCHES ;;
	kiosk) arches=$KIOSK_ARCHES ;;
	*) die "unknown package $pkg (hub, agent or kiosk)" ;;
	esac
	for goarch in $arches; do
		arch=$(deb_arch "$goarch")
		name=shequ-$pkg
		stage=$work/$name-$arch
		mkdir -p "$stage"
		log "building $name $VERSION for $arch"
		case $pkg in
		hub)
			build "$goarch" 0 hub "$stage/shequ-hub"
			stage_common "$stage" shequ-hub
			install -m 0755 "$here/shequ-hubctl" "$here/mosquitto-sync" "$stage/"
			install -m 0644 "$here/shequ-hub-mosquitto.service" "$here/shequ-hub-mosquitto.path" "$here/hub.env" "$here/org.json" "$stage/"
			manpage "$stage" shequ-hub.1
			manpage "$stage" shequ-hubctl.8
			copyright "$stage/copyright" linux "$goarch" 0 ./cmd/hub
			scripts "$stage" shequ-hub shequ-hub.service shequ-hub-mosquitto.path shequ-hub.service \
				"/var/lib/shequ-hub /var/lib/shequ-hub-mosquitto /run/shequ-hub"
			;;
		agent)
			build "$goarch" 0 agent "$stage/shequ-agent"
			stage_common "$stage" shequ-agent
			install -m 0644 "$here/agent.env" "$stage/"
			manpage "$stage" shequ-agent.1
			copyright "$stage/copyright" linux "$goarch" 0 ./cmd/agent
			scripts "$stage" shequ-agent shequ-agent.service "" shequ-agent.service \
				"/var/lib/shequ-agent /run/shequ-agent"
			;;
		kiosk)
			command -v dpkg-shlibdeps >/dev/null || die "dpkg-shlibdeps is missing: run packaging/dev/deps.sh (dpkg-dev)"
			command -v "${CC:-$(cc_for "$goarch")}" >/dev/null ||
				die "no C compiler for $goarch (${CC:-$(cc_for "$goarch")}): see KIOSK_ARCHES above"
			build "$goarch" 1 kiosk "$stage/shequ-kiosk"
			stage_common "$stage" shequ-kiosk
			install -m 0644 "$here/kiosk.env" "$stage/"
			install -m 0755 "$here/shequ-kiosk-session" "$stage/"
			manpage "$stage" shequ-kiosk.1
			copyright "$stage/copyright" linux "$goarch" 1 ./cmd/kiosk \
				"Noto Sans SC subsets embedded in the binary (kiosk/ui/fonts)" kiosk/ui/fonts/OFL.txt
			cursor_theme "$stage"
			# The libraries the binary links, as dpkg-shlibdeps names them.
			mkdir -p "$stage/shlibs/debian"
			printf 'Source: shequ\n\nPackage: shequ-kiosk\nArchitecture: %s\n' "$arch" >"$stage/shlibs/debian/control"
			SHLIBS=$(cd "$stage/shlibs" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O -e../shequ-kiosk 2>"$stage/shlibs.log" |
				sed -n 's/^shlibs:Depends=//p') || true
			[ -n "$SHLIBS" ] || { cat "$stage/shlibs.log" >&2; die "dpkg-shlibdeps found no libraries for shequ-kiosk ($arch)"; }
			export SHLIBS
			scripts "$stage" shequ-kiosk shequ-kiosk.service "" shequ-kiosk.service "/var/lib/shequ-kiosk"
			;;
		esac
		nfpm_pkg "$stage" "$pkg.yaml" "$arch"
		built+=("$OUT/${name}_${VERSION}_${arch}.deb")
	done
done

for deb in "${built[@]}"; do
	[ -f "$deb" ] || die "expected $deb"
done
log "built ${#built[@]} packages in $OUT:"
(cd "$OUT" && sha256sum "${built[@]##*/}") >&2
