# SPDX-License-Identifier: MIT
"""jobwheel migrate: idempotent, safe to run from several hosts at once, --status."""
import glob
import os
import subprocess

import psycopg

from conftest import CLI, ROOT, clean_env, cli, one

MIGRATIONS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "migrations", "*.sql")))


def fresh_database(pg, name):
    with psycopg.connect(pg.dsn(), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}")
    return pg.dsn(name)


def test_migrate_twice_applies_once(pg):
    dsn = fresh_database(pg, "mig_twice")
    assert cli(dsn, "migrate", "--status").stdout.splitlines() == [f"pending  {m}" for m in MIGRATIONS]
    first = cli(dsn, "migrate").stdout
    second = cli(dsn, "migrate").stdout
    assert first.splitlines() == [f"applied {m}" for m in MIGRATIONS] and second == ""
    status = cli(dsn, "migrate", "--status").stdout.splitlines()
    assert [line.split()[:2] for line in status] == [["applied", m] for m in MIGRATIONS]


def test_concurrent_migrations_take_turns(pg):
    dsn = fresh_database(pg, "mig_race")
    procs = [subprocess.Popen([CLI, "--set", "database.url=" + dsn, "migrate"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=clean_env()) for _ in range(6)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outs]
    # exactly one of them applied it; the others waited and found nothing to do
    assert sum(f"applied {MIGRATIONS[0]}" in out for out, _ in outs) == 1
    with psycopg.connect(dsn) as c:
        assert one(c, "SELECT count(*) FROM jobwheel.schema_migrations") == len(MIGRATIONS)
        assert one(c, "SELECT jobwheel.enqueue('noop')") == 1


def test_migrate_reports_an_unreachable_database(pg):
    r = cli("postgresql://postgres@127.0.0.1:1/none", "migrate", check=False)
    assert r.returncode == 1 and "cannot connect to the database" in r.stderr


def test_bad_configuration_exits_2_before_touching_the_database(pg):
    r = subprocess.run([CLI, "--set", "worker.concurrency=lots", "migrate"], capture_output=True, text=True,
                       env=clean_env())
    assert r.returncode == 2 and "worker.concurrency" in r.stderr
