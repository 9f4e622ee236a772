# SPDX-License-Identifier: MIT
"""Leader fail-over when the leader's host is cut off from the network: the
leader runs in a network namespace of its own (a test host), reaching a
PostgreSQL that listens on its veth peer; the link is then cut. The server
must notice the vanished session (the keepalives the coordinator sets on it)
and free the leader lock for a follower within 5 s."""
import os
import shutil
import subprocess
import tempfile
import time

import psycopg
import pytest

from conftest import CLI, COORDINATOR, Postgres, clean_env, one, wait_for

NS = f"jwtest{os.getpid()}"
HOST_IP, NS_IP = "10.213.7.1", "10.213.7.2"  # a /30 between the two ends of our own veth pair

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2 for a network namespace")


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
def netns():
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "link", "add", f"{NS}a", "type", "veth", "peer", "name", f"{NS}b")
        sh("ip", "link", "set", f"{NS}b", "netns", NS)
        sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", f"{NS}a")
        sh("ip", "link", "set", f"{NS}a", "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", f"{NS}b")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", f"{NS}b", "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        yield
    finally:
        subprocess.run(["ip", "link", "del", f"{NS}a"], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)


@pytest.fixture
def server(netns):
    """A PostgreSQL of its own that also listens on the host end of the veth."""
    base = tempfile.mkdtemp(prefix="jw-pg-netns-")
    os.chmod(base, 0o755)
    pg = Postgres(base)
    pg.init()
    with open(os.path.join(pg.data, "postgresql.conf"), "a") as f:
        f.write(f"listen_addresses = '127.0.0.1,{HOST_IP}'\n")
    with open(os.path.join(pg.data, "pg_hba.conf"), "a") as f:
        f.write(f"host all all {NS_IP}/32 trust\n")
    pg.start()
    subprocess.run([CLI, "--set", "database.url=" + pg.dsn(), "migrate"], check=True, env=clean_env(),
                   stdout=subprocess.DEVNULL)
    yield pg
    try:
        pg.stop("immediate")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_leader_cut_off_from_the_network_is_replaced_within_5s(server, tmp_path):
    env = clean_env()
    logs = []

    def start(prefix, host):
        log = open(tmp_path / f"coordinator-{len(logs)}.log", "w")
        logs.append(log)
        url = f"postgresql://postgres@{host}:{server.port}/postgres"
        return subprocess.Popen([*prefix, COORDINATOR, "--set", "database.url=" + url, "--log-level", "debug"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)

    with psycopg.connect(server.dsn(), autocommit=True) as db:
        cut_off = start(["ip", "netns", "exec", NS], HOST_IP)
        try:
            wait_for(lambda: one(db, "SELECT pid FROM jobwheel.leader") == cut_off.pid, 10,
                     what="the namespaced coordinator to lead")
            follower = start([], "127.0.0.1")
            try:
                wait_for(lambda: one(db, "SELECT count(*) FROM jobwheel.coordinators") == 2, 10)
                sh("ip", "link", "set", f"{NS}a", "down")  # the host vanishes: no FIN, no RST
                t0 = time.monotonic()
                wait_for(lambda: one(db, "SELECT pid FROM jobwheel.leader") == follower.pid, 10,
                         what="the follower to take over")
                took = time.monotonic() - t0
                assert took < 5, f"takeover took {took:.1f} s"
            finally:
                follower.kill()
        finally:
            cut_off.kill()
            for log in logs:
                log.close()
