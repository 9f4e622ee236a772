# SPDX-License-Identifier: MIT
# Sourced by scripts/test and scripts/demo: installs the Debian packages
# jobwheel needs to build, test and run, when some are missing.
JW_PACKAGES=(
	meson ninja-build gcc pkg-config
	libpq-dev libcurl4-openssl-dev libcjson-dev libev-dev libsystemd-dev libcmocka-dev
	postgresql-15 postgresql-client-15
	python3 python3-pytest python3-psycopg
)

jw_install_deps() {
	local missing=() p
	for p in "${JW_PACKAGES[@]}" "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
