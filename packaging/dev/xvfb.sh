# xvfb.sh: sourced by test.sh and run.sh. Provides display_usable and
# start_xvfb, which starts Xvfb on a free display number, waits until the X
# server answers (xdpyinfo, not a sleep) and exports DISPLAY and XVFB_PID.
# The caller stops it (kill "$XVFB_PID") from its exit trap.

display_usable() {
	[ -n "${DISPLAY:-}" ] && xdpyinfo >/dev/null 2>&1
}

start_xvfb() {
	local fdfile deadline n=""
	fdfile=$(mktemp "${TMPDIR:-/tmp}/shequ-xvfb.XXXXXX")
	# -displayfd makes Xvfb pick a free display itself and write its number.
	Xvfb -displayfd 3 -screen 0 1080x1920x24 -nolisten tcp 3>"$fdfile" >"${fdfile}.log" 2>&1 &
	XVFB_PID=$!
	export XVFB_PID
	deadline=$((SECONDS + 30))
	while :; do
		n=$(tr -dc '0-9' <"$fdfile" || true)
		if [ -n "$n" ] && DISPLAY=":$n" xdpyinfo >/dev/null 2>&1; then
			break
		fi
		if ! kill -0 "$XVFB_PID" 2>/dev/null; then
			cat "${fdfile}.log" >&2
			rm -f "$fdfile" "${fdfile}.log"
			echo "xvfb: Xvfb exited before answering" >&2
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			cat "${fdfile}.log" >&2
			rm -f "$fdfile" "${fdfile}.log"
			echo "xvfb: Xvfb did not answer within 30s" >&2
			return 1
		fi
		sleep 0.1
	done
	rm -f "$fdfile" "${fdfile}.log"
	export DISPLAY=":$n"
	echo "xvfb: Xvfb (pid $XVFB_PID) on DISPLAY=$DISPLAY, 1080x1920x24" >&2
}

stop_xvfb() {
	if [ -n "${XVFB_PID:-}" ]; then
		kill "$XVFB_PID" 2>/dev/null || true
		wait "$XVFB_PID" 2>/dev/null || true
		XVFB_PID=""
	fi
}
