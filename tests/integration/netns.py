# SPDX-License-Identifier: MIT
"""Helpers for tests that build networks of their own from Linux network
namespaces (test_cluster_netns, the chaos driver's cut-off worker host)."""
import os
import re
import subprocess

# libpq: notice a vanished peer (a pulled cable) within ~3 s instead of the kernel's hours.
LIBPQ_TCP = "keepalives_idle=1&keepalives_interval=1&keepalives_count=3&tcp_user_timeout=3000"


def run(*args, check=True):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


def free_subnet():
    """A private 10.x.y.0/24 that no interface or route of the machine uses,
    picked from our pid (so two runs at once pick different ones)."""
    used = run("ip", "-4", "-o", "addr", "show").stdout + run("ip", "-4", "route", "show").stdout
    for i in range(64):
        n = (os.getpid() + i * 7919) % 64000
        prefix = f"10.{200 + n // 1000 % 50}.{n % 250 + 1}"
        if not re.search(rf"(^|\s){re.escape(prefix)}\.", used, re.M):
            return prefix
    raise AssertionError("no free 10.x.y.0/24 subnet for a test network")
