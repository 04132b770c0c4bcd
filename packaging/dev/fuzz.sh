#!/usr/bin/env bash
# fuzz.sh: run every Fuzz* target in the repository for FUZZTIME each
# (default 3s). Targets are discovered with `go test -list` per package, so a
# new fuzz test is picked up without editing this script.
set -euo pipefail

cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
FUZZTIME=${FUZZTIME:-3s}

# Packages with at least one fuzz test (grep first so we do not build every
# test binary twice).
mapfile -t dirs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . 2>/dev/null |
	grep -v '/testdata/' | xargs -r -n1 dirname | sort -u)

ran=0 failed=()
for dir in "${dirs[@]}"; do
	mapfile -t targets < <(go test -list '^Fuzz' "$dir" | grep -E '^Fuzz' || true)
	for target in "${targets[@]}"; do
		printf 'fuzz: %-40s %s (%s)\n' "$target" "$dir" "$FUZZTIME"
		log=${TMPDIR:-/tmp}/shequ-fuzz.$$.log
		ok=0
		for attempt in 1 2; do
			if go test -run '^$' -fuzz "^${target}\$" -fuzztime="$FUZZTIME" "$dir" >"$log" 2>&1; then
				ok=1
				break
			fi
			# Go's fuzzer can miss its own deadline on a busy machine and
			# fail with "context deadline exceeded" without any failing
			# input; that is not a finding, so try once more. A real
			# failure writes its input to testdata/fuzz and fails again.
			if grep -q 'Failing input written' "$log" || ! grep -q 'context deadline exceeded' "$log"; then
				break
			fi
			echo "fuzz: $target missed its deadline without a finding; once more"
		done
		if [ "$ok" -eq 0 ]; then
			cat "$log"
			failed+=("$dir $target")
		fi
		ran=$((ran + 1))
	done
done
rm -f "${TMPDIR:-/tmp}/shequ-fuzz.$$.log"

if [ "$ran" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
	echo "fuzz: crashers are saved under the package's testdata/fuzz/; commit them with the fix" >&2
	exit 1
fi
echo "fuzz: $ran targets passed ($FUZZTIME each)"
