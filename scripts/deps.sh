# SPDX-License-Identifier: MIT
# Sourced by scripts/test and scripts/demo: installs the Debian packages
# jobwheel needs to build, test and run, when some are missing.
JW_PACKAGES=(
	meson ninja-build gcc pkg-config curl
	libpq-dev libcurl4-openssl-dev libcjson-dev libev-dev libcmocka-dev libhttp-parser-dev libssl-dev
	postgresql-15 postgresql-client-15
	python3 python3-pytest python3-psycopg python3-aiosmtpd
)
# The dashboard test drives Debian's chromium with playwright-core from npm.
# Node may come from elsewhere (nodesource ships npm inside nodejs): only
# ask Debian for it when there is none.
JW_BROWSER_PACKAGES=(chromium)
command -v npm >/dev/null 2>&1 || JW_BROWSER_PACKAGES+=(nodejs npm)
# bench/run: pgbench comes with postgresql-15; HTTP load from wrk, plots from gnuplot.
JW_BENCH_PACKAGES=(wrk gnuplot-nox)

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
