#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs a libFuzzer target for a while: new inputs go to a scratch folder in
# the build tree; the checked-in corpus is read, never written. A crash
# exits 1: libFuzzer's default, 77, is what meson reads as "skipped".
# Usage: run.sh TARGET SECONDS CORPUS WORKDIR
set -e
mkdir -p "$4"
exec "$1" -max_total_time="$2" -rss_limit_mb=2048 -print_final_stats=1 -error_exitcode=1 -artifact_prefix="$4/" "$4" "$3"
