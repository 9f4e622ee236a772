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
# Deployment tests: systemd-analyze verify on the units, nginx with a
# self-signed certificate in front of the gateway, hosts in network namespaces;
# valgrind memcheck of the worker and the gateway.
JW_DEPLOY_PACKAGES=(systemd nginx openssl iproute2 valgrind)

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
	# Packages must not start their services here (nginx on port 80, the
	# distribution's PostgreSQL): the tests start their own. policy-rc.d
	# exit 101 tells invoke-rc.d "not allowed"; one already there is kept.
	local policy=/usr/sbin/policy-rc.d own_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
		"${sudo[@]}" chmod 755 "$policy"
		own_policy=1
	fi
	local rc=0
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
	[ -z "$own_policy" ] || "${sudo[@]}" rm -f "$policy"
	return $rc
}
