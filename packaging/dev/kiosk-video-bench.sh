#!/usr/bin/env bash
# kiosk-video-bench.sh: CPU and memory of the kiosk playing a 720p25 video
# in its attract loop, next to mpv playing the same file, in the same X
# server (Xvfb, software GL). It runs BenchmarkAttractVideoCPU in cmd/kiosk,
# which builds the kiosk, generates the file with ffmpeg, serves it from a
# fake agent on a Unix socket, samples /proc/<pid>/stat and status (the
# kiosk's ffmpeg children included) over 10 s for each player and prints
# both and the ratios. The benchmark starts its own Xvfb (set
# SHEQU_XTEST_DISPLAY to run it on another X server).
#
#	packaging/dev/kiosk-video-bench.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

for tool in ffmpeg ffprobe mpv Xvfb xdpyinfo import; do
	command -v "$tool" >/dev/null || { echo "kiosk-video-bench: $tool missing: run packaging/dev/deps.sh" >&2; exit 1; }
done
cd "$root"
go test ./cmd/kiosk -run '^$' -bench BenchmarkAttractVideoCPU -benchtime 1x -count 1 -v
