#!/bin/sh
# SPDX-License-Identifier: MIT
# meson install script: installs SOURCE as TARGET (under $DESTDIR) unless
# TARGET exists: a host's configuration survives reinstalls and upgrades.
# usage: install-if-absent.sh SOURCE TARGET [MODE]
set -eu
target="${DESTDIR:-}$2"
if [ -e "$target" ]; then
	echo "keeping $target"
	exit 0
fi
install -D -m "${3:-0644}" "$1" "$target"
echo "installed $target"
