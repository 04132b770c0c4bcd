# locale.sh: sourced by test.sh and run.sh. use_zh_locale exports
# LANG=zh_CN.UTF-8 (Fyne picks its language from it), generating the locale
# if it is missing; when it cannot be generated, LC_CTYPE=C.UTF-8 keeps the C
# library on UTF-8 while LANG still says zh_CN.

have_locale() {
	locale -a 2>/dev/null | grep -qix "$1"
}

use_zh_locale() {
	export LANG=zh_CN.UTF-8
	unset LC_ALL
	if have_locale zh_CN.utf8; then
		return
	fi
	local gen=(localedef -i zh_CN -f UTF-8 zh_CN.UTF-8)
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then gen=(sudo "${gen[@]}"); else gen=(); fi
	fi
	if [ "${#gen[@]}" -gt 0 ] && command -v localedef >/dev/null 2>&1 && "${gen[@]}" >/dev/null 2>&1 && have_locale zh_CN.utf8; then
		echo "locale: generated zh_CN.UTF-8" >&2
		return
	fi
	echo "locale: zh_CN.UTF-8 unavailable; using LC_CTYPE=C.UTF-8 with LANG=$LANG" >&2
	export LC_CTYPE=C.UTF-8
}
