"""A disk that loses power: a directory on starling-powercut-fs (tools/powercut-fs).

    disk = PowerCutDisk()            # mounted at disk.path
    ... run a broker (or anything) with its data under disk.path ...
    broker.kill9()                   # nothing writes any more
    disk.cut()                       # only what was synced is left; mounted again at disk.path
    disk.close()

Each cut unmounts the FUSE file system, which then writes what an fsync made durable (file data,
and directory entries whose directory was synced: strict POSIX) as a new directory, and mounts
that one at the same path. Reusable for any queue Starling keeps on disk (store, Kafka outbox,
bridges).
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time


class PowerCutDisk:
    def __init__(self):
        self.binary = os.environ.get("STARLING_POWERCUT_FS")
        if not self.binary:
            raise RuntimeError("STARLING_POWERCUT_FS is not set (ctest sets it)")
        self.tmp = tempfile.mkdtemp(prefix="starling-powercut-")
        self.path = os.path.join(self.tmp, "mnt")
        os.mkdir(self.path)
        self.log_path = os.path.join(self.tmp, "fs.log")
        self.generation = 0
        self.proc = None
        backing = os.path.join(self.tmp, "disk-0")
        os.mkdir(backing)
        self._mount(backing)

    def _mount(self, backing):
        self.backing = backing
        self.generation += 1
        self.image = os.path.join(self.tmp, f"disk-{self.generation}")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary, backing, self.path, self.image],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         env=self._environment())
        deadline = time.monotonic() + 15
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._stop_process()
                raise RuntimeError(f"starling-powercut-fs did not mount {self.path}: "
                                   f"{self.log()}")
            time.sleep(0.02)

    def _environment(self):
        """The tool's environment. In the sanitizer build, leaks whose allocation stack passes
        through libfuse3 are not reported: libfuse sometimes leaves a request or two (120 bytes
        each, calloc'd by libfuse itself) when it is unmounted with requests in flight, which
        failed a run once. LeakSanitizer matches a suppression on any frame, so this also
        covers what the tool's callbacks allocate while libfuse runs them; the tool's own
        set-up and tear-down are still checked."""
        env = dict(os.environ)
        suppressions = os.path.join(self.tmp, "lsan-suppressions.txt")
        with open(suppressions, "w") as f:
            f.write("leak:libfuse3.so\n")
        options = env.get("LSAN_OPTIONS", "")
        env["LSAN_OPTIONS"] = (options + ":" if options else "") + f"suppressions={suppressions}"
        return env

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-3000:]

    def _stop_process(self):
        """Unmounts (SIGTERM: libfuse unmounts and returns) and returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                subprocess.run(["fusermount3", "-u", "-z", self.path], check=False)
                raise AssertionError(f"starling-powercut-fs hung at unmount: {self.log()}")
        code, self.proc = self.proc.returncode, None
        return code

    def cut(self):
        """The power goes. Whatever writes here must be dead already (kill -9)."""
        code = self._stop_process()
        if code != 0 or not os.path.isdir(self.image):
            raise AssertionError(f"starling-powercut-fs failed (exit {code}): {self.log()}")
        shutil.rmtree(self.backing, ignore_errors=True)
        self._mount(self.image)

    def close(self):
        try:
            self._stop_process()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
