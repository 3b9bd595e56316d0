"""A tickdb-server process for the end-to-end tests: started on a free loopback port with its
own data directory, its output drained by a thread (a chatty node never blocks on a full
pipe), stopped with a bound. Only 127.0.0.1 is used."""
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

def need_debian_module(name):
    """Imports `name`; without it (a Python without Debian's packages first on PATH, such as
    pyenv's), runs this very script again under /usr/bin/python3, which has them."""
    try:
        __import__(name)
    except ImportError:
        if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        raise


_temp_dirs = []
atexit.register(lambda: [shutil.rmtree(d, ignore_errors=True) for d in _temp_dirs])


def read_events(r, until, timeout=10):
    """Server-Sent Events parsed from the response `r`, until until(event) is true: a list of
    (type, id, data) each. With until None: every event until the stream ends. Fails when the
    stream ends first (until given) or nothing matched within `timeout` seconds."""
    out, ev = [], {}
    end = time.time() + timeout
    while time.time() < end:
        line = r.fp.readline().decode()
        if line == "":
            if until is None:
                return out
            raise AssertionError("stream ended: %s" % out)
        line = line.rstrip("\n")
        if line.startswith(":"):
            continue
        if line == "":
            if ev:
                e = (ev.get("event"), ev.get("id"), json.loads(ev.get("data", "null")))
                out.append(e)
                ev = {}
                if until is not None and until(e):
                    return out
            continue
        k, _, v = line.partition(": ")
        ev[k] = v
    raise AssertionError("no such event within %d s: %s" % (timeout, out))


def temp_dir(prefix="tickdb-e2e-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _temp_dirs.append(d)
    return d


class NodeProcess:
    """`server` started with `--set` assignments (and a --config file); `port` once it listens."""

    def __init__(self, server, *sets, config=None, data=None, start_timeout=20):
        self.data = data or temp_dir()
        # http.address defaults to 127.0.0.1: only loopback is used.
        args = [server, "--set", "http.port=0", "--set", "storage.data_dir=" + json.dumps(self.data)]
        if config:
            args += ["--config", config]
        for s in sets:
            args += ["--set", s]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.port = None
        self.log = []
        deadline = time.time() + start_timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc.stdout.close()
            raise RuntimeError("server did not start: " + "".join(self.log))
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()

    def _drain_output(self):
        for line in self.proc.stdout:
            if len(self.log) < 10000:
                self.log.append(line)

    @property
    def pid(self):
        return self.proc.pid

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self, sig=signal.SIGTERM):
        """Stops the node (SIGTERM: gracefully); its exit code, -1 when it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return -1
            finally:
                self._drain.join(5)
                self.proc.stdout.close()
        return self.proc.returncode
