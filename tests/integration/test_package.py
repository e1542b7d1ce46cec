"""The Debian package, installed on this machine as an operator would (CI runs as root).

scripts/package.sh builds dist/starling_<version>_<arch>.deb and scripts/test.sh passes it in
STARLING_DEB. This test installs it with dpkg, checks where its files went, its dependencies,
user and state directory; verifies the systemd unit with systemd-analyze; runs the unit's
ExecStart as the unit would (User=/Group=, working directory /, NOTIFY_SOCKET) on free ports and
uses the broker; reinstalls over a changed config (kept); removes the package (the config
stays) and purges it (nothing left). Services are never started by dpkg here: a policy-rc.d
denies it while the test runs.
"""

import grp
import os
import pwd
import shlex
import signal
import stat
import subprocess
import tempfile
import unittest
import urllib.request

from harness import HOST, free_port, wait_for_port, MqttClient, unique
from test_service import NotifySocket

UNIT = "/lib/systemd/system/starling.service"
CONFIG = "/etc/starling/starling.toml"
STATE = "/var/lib/starling"
POLICY = "/usr/sbin/policy-rc.d"


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r


def installed():
    r = sh("dpkg-query", "-W", "-f", "${Status}", "starling", check=False)
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def unit_value(key):
    with open(UNIT) as f:
        for line in f:
            if line.startswith(key + "="):
                return line.split("=", 1)[1].strip()
    raise AssertionError(f"{UNIT} has no {key}=")


@unittest.skipUnless(os.geteuid() == 0, "installs a package: needs root (CI runs as root)")
class DebianPackageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.deb = os.environ.get("STARLING_DEB", "")
        if not cls.deb or not os.path.isfile(cls.deb):
            raise AssertionError("STARLING_DEB names no .deb: run ./scripts/package.sh "
                                 f"(scripts/test.sh does); STARLING_DEB={cls.deb!r}")
        if installed():
            raise unittest.SkipTest("a starling package is installed here already: not replaced")

    def setUp(self):
        self.user_existed = True
        try:
            pwd.getpwnam("starling")
        except KeyError:
            self.user_existed = False
        # No service starts from dpkg while this runs (on a machine where systemd runs).
        if not os.path.exists(POLICY):
            with open(POLICY, "w") as f:
                f.write("#!/bin/sh\n# starling test_package.py: no service starts\nexit 101\n")
            os.chmod(POLICY, 0o755)
            self.addCleanup(os.unlink, POLICY)
        self.addCleanup(self.purge_if_installed)

    def purge_if_installed(self):
        if installed():
            sh("dpkg", "--purge", "starling")
        if not self.user_existed:
            sh("deluser", "--system", "starling", check=False)

    def run_service_command(self):
        """ExecStart as the unit runs it: as User=, in /, with NOTIFY_SOCKET; on free ports."""
        notify = NotifySocket()
        self.addCleanup(notify.close)
        os.chmod(notify.dir, 0o755)
        os.chown(notify.path, pwd.getpwnam("starling").pw_uid, -1)
        port, http_port = free_port(), free_port()
        command = shlex.split(unit_value("ExecStart"))
        command += ["--bind", f"{HOST}:{port}", "--http", f"{HOST}:{http_port}"]
        user = unit_value("User")
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        # As systemd starts it: the process itself runs as User= (no wrapper in between).
        proc = subprocess.Popen(command, cwd="/", user=user, group=unit_value("Group"),
                                extra_groups=[],
                                env={"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notify.path},
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            notify.wait_for(lambda m: m.get("READY") == "1", "READY=1")
            wait_for_port(port, proc)
            topic = unique("pkg")
            with MqttClient(port) as sub, MqttClient(port) as pub:
                sub.connect()
                sub.subscribe(topic, 1)
                pub.connect()
                pub.publish(topic, b"from the package", qos=1)
                self.assertEqual(sub.get().payload, b"from the package")
            with urllib.request.urlopen(f"http://{HOST}:{http_port}/healthz", timeout=10) as r:
                self.assertEqual(r.status, 200)
            # The store is in the state directory, owned by the service's user.
            self.assertEqual(pwd.getpwuid(os.stat(os.path.join(STATE, "state")).st_uid).pw_name,
                             "starling")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        log.seek(0)
        self.assertEqual(proc.returncode, 0, log.read().decode(errors="replace"))
        notify.wait_for(lambda m: m.get("STOPPING") == "1", "STOPPING=1")

    def test_install_run_upgrade_remove_purge(self):
        sh("dpkg", "-i", self.deb)
        self.assertTrue(installed())

        # Files where Debian users look for them.
        for path in ("/usr/bin/starling", "/usr/bin/starling-bench"):
            self.assertTrue(os.access(path, os.X_OK), path)
        for path in (CONFIG, UNIT, "/usr/share/doc/starling/README.md",
                     "/usr/share/doc/starling/configuration.md",
                     "/usr/share/doc/starling/examples/starling.example.toml",
                     "/usr/share/man/man1/starling.1.gz", "/usr/share/man/man5/starling.toml.5.gz"):
            self.assertTrue(os.path.isfile(path), path)
        files = [p for p in sh("dpkg", "-L", "starling").stdout.splitlines() if os.path.isfile(p)]
        self.assertIn("/usr/bin/starling", files)
        self.assertIn(CONFIG, sh("dpkg-query", "-W", "-f", "${Conffiles}", "starling").stdout)

        # Dependencies from the shared libraries (dh_shlibdeps), and the ones it cannot see.
        depends = sh("dpkg-query", "-W", "-f", "${Depends}", "starling").stdout
        for package in ("libc6", "libstdc++6", "libssl3", "librdkafka1", "libsystemd0",
                        "adduser", "libcurl4"):
            self.assertIn(package, depends)

        # The service's user and its state directory.
        user = pwd.getpwnam("starling")
        self.assertLess(user.pw_uid, 1000)  # a system user
        self.assertEqual(grp.getgrgid(user.pw_gid).gr_name, "starling")
        st = os.stat(STATE)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (user.pw_uid, 0o750))

        # The unit as systemd would load it.
        r = sh("systemd-analyze", "verify", UNIT, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(unit_value("Type"), "notify")

        self.run_service_command()

        # An upgrade (the same package again) keeps an operator's change to the config.
        with open(CONFIG, "a") as f:
            f.write("# changed by the operator\n")
        sh("dpkg", "-i", self.deb)
        with open(CONFIG) as f:
            self.assertIn("# changed by the operator", f.read())

        # Remove: the program goes, the config stays (Debian's conffile rule).
        sh("dpkg", "--remove", "starling")
        for path in files:
            if path != CONFIG:
                self.assertFalse(os.path.exists(path), path)
        self.assertTrue(os.path.isfile(CONFIG))

        # Purge: the config and the broker's state go too.
        sh("dpkg", "--purge", "starling")
        self.assertFalse(installed())
        self.assertFalse(os.path.exists("/etc/starling"))
        self.assertFalse(os.path.exists(STATE))


if __name__ == "__main__":
    unittest.main()
