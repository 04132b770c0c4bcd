#!/usr/bin/env bash
# run.sh: the one run command (make run). Installs what is missing, builds the
# three binaries into bin/, and starts a local hub, one agent and one kiosk
# window with demo data under .run/. Ctrl-C stops all three.
#
# Environment (all optional):
#   SHEQU_HTTP     hub HTTP address        (default 127.0.0.1:8080)
#   SHEQU_MQTT     hub MQTT (TLS) address  (default 127.0.0.1:8883)
#   SHEQU_KIOSK    kiosk id of the agent   (default k-sangcheng-01)
#   SHEQU_ATTRACT  idle time before the attract loop (default 30s)
#   SHEQU_RUN_DIR  data directory          (default .run)
#   SHEQU_ORG      org tree file           (default packaging/demo/org.json)
set -euo pipefail

cd "$(dirname "$0")/../.."
here=packaging/dev
export PATH="/usr/local/go/bin:$PATH"

HTTP=${SHEQU_HTTP:-127.0.0.1:8080}
MQTT=${SHEQU_MQTT:-127.0.0.1:8883}
KIOSK=${SHEQU_KIOSK:-k-sangcheng-01}
RUN=${SHEQU_RUN_DIR:-.run}
ORG=${SHEQU_ORG:-packaging/demo/org.json}
SOCK=$RUN/agent.sock

log() { printf 'run: %s\n' "$*" >&2; }
die() { printf 'run: error: %s\n' "$*" >&2; exit 1; }

"$here/deps.sh"
# shellcheck source=packaging/dev/xvfb.sh
. "$here/xvfb.sh"
# shellcheck source=packaging/dev/locale.sh
. "$here/locale.sh"
use_zh_locale

log "building bin/hub bin/agent bin/kiosk"
mkdir -p bin "$RUN"
CGO_ENABLED=0 go build -o bin/hub ./cmd/hub
CGO_ENABLED=0 go build -o bin/agent ./cmd/agent
CGO_ENABLED=1 go build -o bin/kiosk ./cmd/kiosk

# Each service runs in its own process group (set -m), so Ctrl-C reaches only
# this script, whose trap then stops the groups in reverse order.
set -m
pids=()
XVFB_PID=""
cleanup() {
	trap - EXIT INT TERM
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM -- "-${pids[i]}" 2>/dev/null || true
	done
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		wait "${pids[i]}" 2>/dev/null || true
	done
	stop_xvfb
	log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESCRIPTION PID SECONDS COMMAND...: poll COMMAND until it succeeds,
# failing early if PID exits.
wait_for() {
	local what=$1 pid=$2 deadline=$((SECONDS + $3))
	shift 3
	until "$@" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || die "$what exited; see $RUN/*.log"
		[ "$SECONDS" -lt "$deadline" ] || die "$what not ready after $((SECONDS - deadline + $3))s; see $RUN/*.log"
		sleep 0.2
	done
}

log "starting hub (https $HTTP, mqtts $MQTT, data $RUN/hub)"
bin/hub serve -data "$RUN/hub" -org "$ORG" -http "$HTTP" -mqtt "$MQTT" >>"$RUN/hub.log" 2>&1 &
pids+=($!)
# The hub makes its own CA at first start; curl trusts only that CA.
CA=$RUN/hub/tls/ca.pem
wait_for "hub" "${pids[-1]}" 60 curl -fsS --cacert "$CA" "https://$HTTP/healthz"
TOKEN=$(cat "$RUN/hub/admin.token")
api() { curl -fsS --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$@"; }

# Seed the demo notices once: only when the hub has none.
notices=$(api "https://$HTTP/api/v1/notices") || die "GET /api/v1/notices failed"
compact=$(printf '%s' "$notices" | tr -d ' \t\r\n')
case "$compact" in
"[]" | "null" | "" | *'"notices":[]'* | *'"notices":null'* | *'"items":[]'*)
	for f in packaging/demo/notices/*.json; do
		[ -e "$f" ] || continue
		api -X POST -H 'Content-Type: application/json' --data-binary "@$f" \
			"https://$HTTP/api/v1/notices" >/dev/null || die "POST $f failed"
		log "posted $f"
	done
	;;
*) log "hub already has notices; not seeding" ;;
esac

# Seed a publicity playlist once: a short video and a poster made with
# ffmpeg's test sources, uploaded like any staff upload (the hub checks the
# type with ffprobe and transcodes the video to the kiosk profile), then a
# playlist for the district with the video, the poster and the first notice.
media=$(api "https://$HTTP/api/v1/media") || die "GET /api/v1/media failed"
case "$(printf '%s' "$media" | tr -d ' \t\r\n')" in
*'"media":[]'* | *'"media":null'*)
	mkdir -p "$RUN/demo-media"
	ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=25 -t 8 -pix_fmt yuv420p "$RUN/demo-media/publicity.mp4"
	ffmpeg -v error -y -f lavfi -i smptebars=size=1080x1440 -frames:v 1 "$RUN/demo-media/poster.png"
	upload() {
		api -X POST -H "X-Filename: $(basename "$1")" --data-binary "@$1" "https://$HTTP/api/v1/media" |
			sed -n 's/^{"id":"\([^"]*\)".*/\1/p'
	}
	video=$(upload "$RUN/demo-media/publicity.mp4")
	poster=$(upload "$RUN/demo-media/poster.png")
	[ -n "$video" ] && [ -n "$poster" ] || die "media upload failed"
	log "uploaded demo media (video $video, poster $poster); waiting for the transcode"
	wait_for "video transcode" "${pids[-1]}" 120 sh -c \
		"curl -fsS --cacert '$CA' -H 'Authorization: Bearer $TOKEN' 'https://$HTTP/api/v1/media/$video' | grep -q '\"status\":\"ready\"'"
	notice=$(api "https://$HTTP/api/v1/notices" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
	api -X POST -H 'Content-Type: application/json' "https://$HTTP/api/v1/playlists" --data-binary @- >/dev/null <<JSON ||
{"name":"黄浦区城管宣传轮播","targets":[{"level":"district","id":"huangpu"}],
 "items":[{"kind":"video","media":"$video"},{"kind":"image","media":"$poster","duration_ms":8000},
          {"kind":"notice","notice":"$notice","duration_ms":10000}]}
JSON
		die "POST /api/v1/playlists failed"
	log "created the demo playlist"
	;;
*) log "hub already has media; not seeding" ;;
esac

# Enrol the demo kiosk once, as a technician does on site: staff create a
# one-time claim code for its slot, the agent enrols with it, pinning the CA.
status_rc=0
bin/agent status -data "$RUN/agent" >/dev/null || status_rc=$?
case $status_rc in
0) ;;
3) ;; # not enrolled yet: enrol below
*) die "cannot read the agent's data in $RUN/agent (is another agent still running?)" ;;
esac
if [ "$status_rc" -eq 3 ]; then
	community=$(api "https://$HTTP/api/v1/kiosks" | tr '{' '\n' | grep "\"id\":\"$KIOSK\"" |
		sed -n 's/.*"community":"\([^"]*\)".*/\1/p')
	[ -n "$community" ] || die "kiosk $KIOSK is not in $ORG"
	claim=$(bin/hub claim -data "$RUN/hub" -hub "https://$HTTP" -community "$community" -kiosk "$KIOSK") ||
		die "hub claim failed: $claim"
	code=$(printf '%s\n' "$claim" | grep -oE '[0-9]{4}-[0-9]{4}-[0-9]{4}' | head -1)
	pin=$(printf '%s\n' "$claim" | grep -oE '[0-9a-f]{64}' | head -1)
	log "enrolling $KIOSK with claim code $code (CA pin ${pin:0:16}…)"
	bin/agent enrol -data "$RUN/agent" -hub "https://$HTTP" -code "$code" -ca-pin "$pin" >>"$RUN/agent.log" 2>&1 ||
		die "agent enrol failed; see $RUN/agent.log"
fi

# Demo staff accounts, once: their passwords are random per installation
# and kept in $RUN/demo-accounts.txt (0600).
ACCOUNTS="$RUN/demo-accounts.txt"
if [ ! -s "$ACCOUNTS" ]; then
	umask 077
	: >"$ACCOUNTS.tmp"
	for spec in "admin bureau_admin shanghai 市局管理员" "leader squad_leader wuliqiao 王队长" \
		"officer officer wuliqiao 李队员" "partner partner sangcheng 桑城居委" "tech technician shanghai 运维张工"; do
		set -- $spec
		pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 16)
		out=$(printf '%s\n' "$pw" | bin/hub user add -data "$RUN/hub" -hub "https://$HTTP" \
			-username "$1" -role "$2" -node "$3" -name "$4" 2>&1) ||
			case "$out" in *409*) log "account $1 exists" ;; *) die "hub user add $1: $out" ;; esac
		printf '%-8s %-15s %s\n' "$1" "$2" "$pw" >>"$ACCOUNTS.tmp"
	done
	mv "$ACCOUNTS.tmp" "$ACCOUNTS"
	umask 022
	log "created demo accounts (passwords in $ACCOUNTS)"
fi

log "starting agent $KIOSK (socket $SOCK, data $RUN/agent)"
rm -f "$SOCK"
bin/agent run -data "$RUN/agent" -socket "$SOCK" -hub "https://$HTTP" -ca-pin "$(bin/hub ca-pin -data "$RUN/hub")" -media-stagger -1s \
	>>"$RUN/agent.log" 2>&1 &
pids+=($!)
wait_for "agent" "${pids[-1]}" 60 curl -fsS --unix-socket "$SOCK" http://agent/v1/status

# Two sample reports from the kiosk, once, so the case inbox has work.
case "$(api "https://$HTTP/api/v1/feedback" | tr -d ' \t\r\n')" in
*'"feedback":[]'* | *'"feedback":null'*)
	for body in '{"kind":"complaint","category":"illegal_construction","where":{"building":"5","unit":"2","room":"301"},"description":"楼顶新搭了一间彩钢板房","phone":"13800138000"}' \
		'{"kind":"suggestion","category":"green_space","where":{"building":"7"},"description":"七号楼前绿地被占用停车，建议设置隔离桩"}'; do
		curl -fsS --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' -d "$body" http://agent/v1/feedback >/dev/null ||
			die "submitting sample feedback failed"
	done
	log "submitted two sample reports at the kiosk"
	;;
esac

if ! display_usable; then
	start_xvfb
	shot="DISPLAY=$DISPLAY import -window root kiosk.png"
else
	shot=""
fi
log "starting kiosk on DISPLAY=$DISPLAY"
bin/kiosk -socket "$SOCK" -windowed -attract "${SHEQU_ATTRACT:-30s}" \
	-qr-url "https://$HTTP/s?c={community}&k={kiosk}" -follow-url "https://$HTTP/t/{ticket}" >>"$RUN/kiosk.log" 2>&1 &
pids+=($!)

cat <<INFO

Shequ is running (logs in $RUN/hub.log, $RUN/agent.log, $RUN/kiosk.log).

  staff console     https://$HTTP/   (browser: trust $CA or accept the warning)
                    demo accounts and passwords: $ACCOUNTS
                    officers' phone pages: https://$HTTP/m
  城管码 (residents) https://$HTTP/s?c=sangcheng&k=$KIOSK   (what the kiosk's QR code opens)
  Open311           https://$HTTP/open311/v2/discovery.json  (keys: bin/hub open311-key add -data $RUN/hub -name NAME -node ID)
  hub API           https://$HTTP/api/v1/   (token in $RUN/hub/admin.token)
  hub health        https://$HTTP/healthz
  MQTT broker       ssl://$MQTT
  agent socket      $SOCK   (kiosk $KIOSK)

Try:
  curl -s --cacert $CA -H "Authorization: Bearer \$(cat $RUN/hub/admin.token)" https://$HTTP/api/v1/notices
  curl -s --cacert $CA -H "Authorization: Bearer \$(cat $RUN/hub/admin.token)" https://$HTTP/api/v1/kiosks
  bin/hub devices -data $RUN/hub -hub https://$HTTP
  curl -s --unix-socket $SOCK http://agent/v1/status
  curl -s --unix-socket $SOCK http://agent/v1/notices
  curl -s --unix-socket $SOCK -X POST -H 'Content-Type: application/json' \\
       -d '{"kind":"consultation","category":"other","description":"测试留言"}' http://agent/v1/feedback
INFO
if [ -n "$shot" ]; then
	printf '  %s    # screenshot of the kiosk window (Xvfb, no screen attached)\n' "$shot"
fi
echo
echo "Press Ctrl-C to stop."

# Stop everything as soon as any one service exits.
wait -n "${pids[@]}" || true
log "a service exited; stopping the others (see $RUN/*.log)"
exit 1
