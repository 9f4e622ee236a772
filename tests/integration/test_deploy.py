# SPDX-License-Identifier: MIT
"""What `meson install` puts on a host, and whether the systemd units hold
together: the tree under a DESTDIR, the sample configuration (every key in
it real, an edited one kept on reinstall), `systemd-analyze verify` on the
installed units, and the sd_notify protocol that their Type=notify and
WatchdogSec expect, spoken by each binary."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import BUILD, ROOT, Coordinator, Gateway, Worker, wait_for

BINARIES = ["jobwheel", "jobwheel-worker", "jobwheel-coordinator", "jobwheel-gateway"]
SERVICES = ["jobwheel-coordinator.service", "jobwheel-worker@.service", "jobwheel-gateway.service"]


def meson_option(name):
    options = json.loads(subprocess.run(["meson", "introspect", BUILD, "--buildoptions"], check=True,
                                        capture_output=True, text=True).stdout)
    return next(o["value"] for o in options if o["name"] == name)


def install(destdir):
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", str(destdir)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


class Tree:
    """An installed tree: tree.path("bin", "jobwheel") is DESTDIR/PREFIX/bin/jobwheel."""

    def __init__(self, destdir):
        self.destdir = destdir
        self.prefix = meson_option("prefix")
        self.confdir = os.path.join(self.prefix, meson_option("sysconfdir"), "jobwheel")  # absolute
        self.unitdir = meson_option("systemdunitdir") or os.path.join(self.prefix, "lib", "systemd", "system")

    def path(self, *parts):
        return str(self.destdir) + os.path.join(self.prefix, *parts)

    def rooted(self, absolute):
        return str(self.destdir) + absolute


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    destdir = tmp_path_factory.mktemp("destdir")
    install(destdir)
    return Tree(destdir)


def test_install_puts_binaries_migrations_web_assets_units_and_config_in_place(tree):
    for b in BINARIES:
        path = tree.path("bin", b)
        assert os.access(path, os.X_OK), f"{path} missing or not executable"
        r = subprocess.run([path, "--version"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip(), f"{b} --version: {r.returncode} {r.stderr}"
    shipped = sorted(f for f in os.listdir(os.path.join(ROOT, "migrations")) if f.endswith(".sql"))
    assert sorted(os.listdir(tree.path("share", "jobwheel", "migrations"))) == shipped
    assert os.path.isfile(tree.path("share", "jobwheel", "sql", "roles.sql"))
    web = tree.path("share", "jobwheel", "web")
    # The page and every module it imports (app.js is the entry of a graph of ES modules).
    assert {"index.html", "app.js"} <= set(os.listdir(web))
    assert set(os.listdir(os.path.join(ROOT, "gateway", "web"))) <= set(os.listdir(web))
    # The installed gateway serves the installed assets by default.
    r = subprocess.run([tree.path("bin", "jobwheel-gateway"), "--print-config"], capture_output=True, text=True,
                       env={"JOBWHEEL_CONFIG": "/dev/null", "PATH": "/usr/bin:/bin"})
    assert f"gateway.web_root = {os.path.join(tree.prefix, 'share', 'jobwheel', 'web')}" in r.stdout, r.stdout
    units = set(os.listdir(tree.rooted(tree.unitdir)))
    assert set(SERVICES) | {"jobwheel.target"} <= units, units
    assert "u jobwheel " in open(tree.path("lib", "sysusers.d", "jobwheel.conf")).read()
    assert os.path.isfile(tree.rooted(os.path.join(tree.confdir, "jobwheel.conf")))
    env = tree.rooted(os.path.join(tree.confdir, "jobwheel.env"))
    assert os.stat(env).st_mode & 0o777 == 0o600, oct(os.stat(env).st_mode)


def test_sample_config_names_only_real_keys_with_valid_values(tree, tmp_path):
    sample = tree.rooted(os.path.join(tree.confdir, "jobwheel.conf"))
    cli = tree.path("bin", "jobwheel")
    env = {"PATH": "/usr/bin:/bin"}
    as_shipped = subprocess.run([cli, "--config", sample, "--print-config"], capture_output=True, text=True, env=env)
    assert as_shipped.returncode == 0, as_shipped.stderr
    assert "file:" not in as_shipped.stdout, "the sample must change nothing until a line is uncommented"
    # Uncomment every setting: each must be a key the binaries know, with a value they accept.
    lines = open(sample).read().splitlines()
    settings = [i for i, line in enumerate(lines) if re.match(r"^#[a-z]+\.[a-z_.]+ =", line)]
    assert len(settings) >= 30, f"only {len(settings)} settings in the sample"
    for i in settings:
        lines[i] = lines[i][1:]
    uncommented = tmp_path / "jobwheel.conf"
    uncommented.write_text("\n".join(lines) + "\n")
    r = subprocess.run([cli, "--config", str(uncommented), "--print-config"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    for i in settings:
        key = lines[i].split(" =")[0]
        assert re.search(rf"^{re.escape(key)} = .*# file:{re.escape(str(uncommented))}:{i + 1}$", r.stdout, re.M), \
            f"{key} (line {i + 1}) not taken from the file:\n{r.stdout}"


def test_reinstall_keeps_a_hosts_edited_config(tmp_path):
    install(tmp_path)
    tree = Tree(tmp_path)
    conf = tree.rooted(os.path.join(tree.confdir, "jobwheel.conf"))
    with open(conf, "a") as f:
        f.write("worker.concurrency = 7\n")
    install(tmp_path)
    assert open(conf).read().endswith("worker.concurrency = 7\n")
    assert open(tree.path("share", "jobwheel", "examples", "jobwheel.conf")).read() == \
        open(os.path.join(ROOT, "deploy", "jobwheel.conf")).read()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze (package systemd) is not installed")
def test_installed_units_pass_systemd_analyze_verify(tree, tmp_path):
    # verify checks that ExecStart= is executable: point it into the DESTDIR,
    # the rest of each unit stays as installed.
    prefix_bin = os.path.join(tree.prefix, "bin") + "/"
    for name in SERVICES + ["jobwheel.target"]:
        text = open(os.path.join(tree.rooted(tree.unitdir), name)).read()
        if name.endswith(".service"):
            assert re.search(rf"^ExecStart={re.escape(prefix_bin)}jobwheel-", text, re.M), text
            for line in ["Type=notify", "Restart=on-failure", "EnvironmentFile=-/etc/jobwheel/jobwheel.env",
                         "User=jobwheel", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                         "PrivateTmp=yes", "CapabilityBoundingSet=", "SystemCallFilter=@system-service"]:
                assert re.search(rf"^{re.escape(line)}$", text, re.M), f"{name}: no {line}"
            assert re.search(r"^WatchdogSec=\d+s$", text, re.M), f"{name}: no WatchdogSec"
            assert re.search(r"^RestrictAddressFamilies=.*AF_INET6", text, re.M), f"{name}: no RestrictAddressFamilies"
        (tmp_path / name).write_text(text.replace("ExecStart=" + prefix_bin, "ExecStart=" + tree.path("bin") + "/"))
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "jobwheel-coordinator.service"),
                        str(tmp_path / "jobwheel-gateway.service"), str(tmp_path / "jobwheel-worker@1.service"),
                        str(tmp_path / "jobwheel.target")], capture_output=True, text=True)
    # Unknown or misspelt settings are only warnings: any output fails the test.
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


class NotifySocket:
    """The socket systemd would listen on for a Type=notify service."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages = []

    def received(self):
        try:
            while True:
                self.messages += self.sock.recv(4096).decode().split("\n")
        except BlockingIOError:
            pass
        return self.messages


@pytest.mark.parametrize("kind", [Worker, Coordinator, Gateway])
def test_each_binary_speaks_the_notify_protocol_its_unit_expects(kind, dsn, db, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    # WatchdogSec=2s: pings at least every second.
    p = kind(dsn, tmp_path, env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000"})
    try:
        wait_for(lambda: "READY=1" in notify.received(), 10, what=f"READY=1 from {kind.__name__}")
        ready_at = notify.received().index("READY=1")
        wait_for(lambda: notify.received()[ready_at:].count("WATCHDOG=1") >= 3, 5,
                 what=f"three WATCHDOG=1 after READY=1 (got {notify.received()})")
        p.signal(signal.SIGTERM)
        assert p.wait(30) == 0, p.output()
        assert "STOPPING=1" in notify.received(), notify.received()
    finally:
        p.kill()


def runtime_packages(dockerfile):
    """The packages the last stage of the Dockerfile installs."""
    last_stage = open(dockerfile).read().split("\nFROM ")[-1]
    install = re.search(r"apt-get install -y --no-install-recommends((?:\s+\\\n)?(?:[^\n&]*))", last_stage)
    assert install, "no apt-get install in the Dockerfile's runtime stage"
    return set(install.group(1).replace("\\", " ").split())


def test_docker_runtime_stage_installs_every_library_the_binaries_link(tree):
    wanted = runtime_packages(os.path.join(ROOT, "deploy", "docker", "Dockerfile"))
    for b in BINARIES:
        path = tree.path("bin", b)
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                            subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout)
        resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(["ldd", path], check=True, capture_output=True,
                                                                          text=True).stdout, re.M))
        for soname in needed:
            if soname.startswith(("libasan.", "libubsan.", "liblsan.")):
                continue  # the sanitizer runtimes of an ASan test build; the image builds without
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(resolved[soname])], capture_output=True, text=True)
            if owner.returncode != 0:  # merged /usr: dpkg knows the /lib path
                owner = subprocess.run(["dpkg", "-S", resolved[soname]], check=True, capture_output=True, text=True)
            package = owner.stdout.split(":")[0]
            if package != "libc6":  # in every Debian image
                assert package in wanted, f"{b} links {soname} from {package}, which the Dockerfile does not install"
