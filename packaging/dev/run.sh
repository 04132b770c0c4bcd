#!/usr/bin/env bash
# run.sh: the one run command (make run). Installs what is missing, builds the
# three binaries into bin/, and starts a local hub, one agent and one kiosk
# window with demo data under .run/. Ctrl-C stops all three.
#
# Environment (all optional):
#   SHEQU_HTTP     hub HTTP address        (default 127.0.0.1:8080)
#   SHEQU_MQTT     hub MQTT address        (default 127.0.0.1:1883)
#   SHEQU_KIOSK    kiosk id of the agent   (default k-sangcheng-01)
#   SHEQU_RUN_DIR  data directory          (default .run)
#   SHEQU_ORG      org tree file           (default packaging/demo/org.json)
set -euo pipefail

cd "$(dirname "$0")/../.."
here=packaging/dev
export PATH="/usr/local/go/bin:$PATH"

HTTP=${SHEQU_HTTP:-127.0.0.1:8080}
MQTT=${SHEQU_MQTT:-127.0.0.1:1883}
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

log "starting hub (http $HTTP, mqtt $MQTT, data $RUN/hub)"
bin/hub -data "$RUN/hub" -org "$ORG" -http "$HTTP" -mqtt "$MQTT" >>"$RUN/hub.log" 2>&1 &
pids+=($!)
wait_for "hub" "${pids[-1]}" 60 curl -fsS "http://$HTTP/healthz"

# Seed the demo notices once: only when the hub has none.
notices=$(curl -fsS "http://$HTTP/api/v1/notices") || die "GET /api/v1/notices failed"
compact=$(printf '%s' "$notices" | tr -d ' \t\r\n')
case "$compact" in
"[]" | "null" | "" | *'"notices":[]'* | *'"notices":null'* | *'"items":[]'*)
	for f in packaging/demo/notices/*.json; do
		[ -e "$f" ] || continue
		curl -fsS -X POST -H 'Content-Type: application/json' --data-binary "@$f" \
			"http://$HTTP/api/v1/notices" >/dev/null || die "POST $f failed"
		log "posted $f"
	done
	;;
*) log "hub already has notices; not seeding" ;;
esac

log "starting agent $KIOSK (socket $SOCK, data $RUN/agent)"
rm -f "$SOCK"
bin/agent -kiosk "$KIOSK" -data "$RUN/agent" -socket "$SOCK" -broker "tcp://$MQTT" >>"$RUN/agent.log" 2>&1 &
pids+=($!)
wait_for "agent" "${pids[-1]}" 60 curl -fsS --unix-socket "$SOCK" http://agent/v1/status

if ! display_usable; then
	start_xvfb
	shot="DISPLAY=$DISPLAY import -window root kiosk.png"
else
	shot=""
fi
log "starting kiosk on DISPLAY=$DISPLAY"
bin/kiosk -socket "$SOCK" -windowed >>"$RUN/kiosk.log" 2>&1 &
pids+=($!)

cat <<INFO

Shequ is running (logs in $RUN/hub.log, $RUN/agent.log, $RUN/kiosk.log).

  hub console/API   http://$HTTP/
  hub health        http://$HTTP/healthz
  MQTT broker       tcp://$MQTT
  agent socket      $SOCK   (kiosk $KIOSK)

Try:
  curl -s http://$HTTP/api/v1/notices
  curl -s http://$HTTP/api/v1/kiosks
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
