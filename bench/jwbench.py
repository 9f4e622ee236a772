# SPDX-License-Identifier: MIT
"""What the Python benchmark drivers share: a fresh migrated database and
jobwheel processes started from the build tree (JW_BUILD_DIR, default build/)."""
import os
import subprocess

import psycopg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("JW_BUILD_DIR", os.path.join(ROOT, "build"))
# No stray JOBWHEEL_* settings, and never a host's /etc/jobwheel/jobwheel.conf.
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("JOBWHEEL_")}, "JOBWHEEL_CONFIG": "/dev/null"}


def fresh_database(server_url, name):
    """Drops and creates database `name` on the server, migrates it, returns its URL."""
    with psycopg.connect(server_url + "/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}")
    url = f"{server_url}/{name}"
    subprocess.run([f"{BUILD}/cli/jobwheel", "--set", "database.url=" + url, "migrate"], check=True, env=ENV,
                   stdout=subprocess.DEVNULL)
    return url


def spawn(binary, url, *args):
    """Starts build/BINARY's program (e.g. "worker/jobwheel-worker") on url, logging warnings only."""
    return subprocess.Popen([f"{BUILD}/{binary}", "--set", "database.url=" + url, "--log-level", "warn", *args],
                            env=ENV)
