#!/usr/bin/env python3
"""Fault injection: the real tickdb-server under tests/fault/fault_shim.c (LD_PRELOAD), which
makes writes, fsyncs and opens under the data dir fail with ENOSPC / EIO / EROFS, switched on
and off at run time through a control file. Also clients that vanish mid-request and
mid-response, and 5,000 idle connections.

usage: fault_test.py SERVER_BINARY FAULT_SHIM [unittest args]
Every acknowledged write must be there after a restart (SIGKILL: the log is what counts, not
the last snapshot); a write the log could not take answers an error naming the file; reads go
on. Only 127.0.0.1 is used; every wait is bounded. Skipped under sanitizers (TICKDB_SANITIZE:
an LD_PRELOAD library would have to come after the sanitizer's runtime).
"""
import glob
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tickdb_node import NodeProcess, temp_dir  # noqa: E402

SERVER = SHIM = None


class Node(NodeProcess):
    """A node whose data dir is under the shim; `fault(...)` switches faults while it runs."""

    def __init__(self, *sets, data=None, ctl=None):
        data = os.path.realpath(data or temp_dir("tickdb-fault-"))
        self.ctl = ctl or os.path.join(temp_dir("tickdb-fault-ctl-"), "faults")
        saved = dict(os.environ)
        os.environ.update({"LD_PRELOAD": SHIM, "TICKDB_FAULT_PATH": data, "TICKDB_FAULT_CTL": self.ctl})
        try:
            super().__init__(SERVER, "storage.snapshot_interval_s=0", *sets, data=data)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def fault(self, spec):
        tmp = self.ctl + ".tmp"
        with open(tmp, "w") as f:
            f.write(spec)
        os.rename(tmp, self.ctl)  # a new inode: the shim sees the change on its next call

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def req(self, method, path, body=None):
        c = self.conn()
        c.request(method, path, body=None if body is None else json.dumps(body))
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data else None)

    def insert(self, table, values):
        return self.req("POST", "/table/%s/record" % table, values)

    def log_broken(self):
        st, body = self.req("GET", "/stats")
        assert st == 200, (st, body)
        return body["storage"]["log"]["broken"]

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=20)
        self._drain.join(5)
        self.proc.stdout.close()


def all_records(node, table):
    out, after = {}, 0
    for _ in range(1000):
        st, body = node.req("GET", "/table/%s/records?limit=10000&after=%d" % (table, after))
        assert st == 200, (st, body)
        for r in body["records"]:
            out[r["id"]] = r
        if body["next_after"] is None:
            return out
        after = body["next_after"]
    raise AssertionError("pagination did not end")


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class FaultTest(unittest.TestCase):
    def setUp(self):
        if os.environ.get("TICKDB_SANITIZE"):
            self.skipTest("LD_PRELOAD shim not loaded under sanitizers (TICKDB_SANITIZE=%s)"
                          % os.environ["TICKDB_SANITIZE"])
        self.nodes = []
        self.refused = set()  # values of inserts answered with an error

    def tearDown(self):
        for n in getattr(self, "nodes", []):
            n.stop()

    def node(self, *sets, **kw):
        n = Node(*sets, **kw)
        self.nodes.append(n)
        return n

    def restart(self, n):
        """SIGKILL (so recovery reads the log, not a last snapshot), then a start without faults."""
        n.kill9()
        n.fault("")
        return self.node(data=n.data, ctl=n.ctl)

    def check_acked(self, n, table, acked):
        got = all_records(n, table)
        missing = [i for i in acked if i not in got]
        self.assertEqual(missing, [], "acknowledged records lost")
        for i, v in acked.items():
            self.assertEqual(got[i]["v"], v, "record %d" % i)

    def write_until_refused(self, n, acked, first, limit=400):
        """Inserts until one is refused; returns that answer."""
        for k in range(first, first + limit):
            st, body = n.insert("t", {"v": k})
            if st == 201:
                acked[body["id"]] = k
            else:
                self.refused.add(k)
                return st, body
        self.fail("no write was refused")

    def assert_refused(self, n, statuses, codes):
        for k in range(5):
            st, body = n.insert("t", {"v": -1})
            self.refused.add(-1)
            self.assertIn(st, statuses, body)
            self.assertIn(body["error"]["code"], codes)

    def check_refused_absent(self, n):
        """A write answered with an error changes nothing: none of its values is in the table."""
        got = [r for r in all_records(n, "t").values() if r["v"] in self.refused]
        self.assertEqual(got, [], "records of writes that were answered with an error")

    def assert_reads_go_on(self, n, acked):
        st, body = n.req("GET", "/table/t/record/%d" % min(acked))
        self.assertEqual(st, 200, body)
        self.assertEqual(n.req("GET", "/health")[0], 200)
        self.check_acked(n, "t", acked)

    def make_table(self, n, acked, count=20):
        self.assertEqual(n.req("POST", "/table", {"name": "t", "fields": [{"name": "v", "type": "i64"}]})[0], 201)
        for k in range(count):
            st, body = n.insert("t", {"v": k})
            self.assertEqual(st, 201, body)
            acked[body["id"]] = k

    # 1
    def test_disk_full_during_log_appends(self):
        n = self.node()
        acked = {}
        self.make_table(n, acked)
        # An older snapshot keeps the segment the failure tears (prune leaves it for a fallback).
        self.assertEqual(n.req("POST", "/snapshot")[0], 200)
        for k in range(100, 110):
            st, body = n.insert("t", {"v": k})
            self.assertEqual(st, 201, body)
            acked[body["id"]] = k
        # A few entries fit, the one that crosses the limit is written short, then ENOSPC.
        n.fault("enospc_after:400")
        st, body = self.write_until_refused(n, acked, 1000)
        self.assertEqual(st, 507, body)
        self.assertEqual(body["error"]["code"], "resource_exhausted")
        self.assertRegex(body["error"]["message"], r"log-\d{20}\.tdl")
        self.assertIn("No space left on device", body["error"]["message"])
        self.assert_refused(n, (507,), ("resource_exhausted",))
        self.assertIn("log-", n.log_broken())
        self.assert_reads_go_on(n, acked)
        # Space is back: the node takes writes again by itself.
        n.fault("")

        def accepted():
            st, body = n.insert("t", {"v": 5000})
            if st == 201:
                acked[body["id"]] = 5000
            return st == 201
        wait_for(accepted, 10, "writes to be accepted once space is back")
        self.assertEqual(n.log_broken(), "")
        for k in range(5001, 5020):
            st, body = n.insert("t", {"v": k})
            self.assertEqual(st, 201, body)
            acked[body["id"]] = k
        self.check_acked(n, "t", acked)
        self.check_refused_absent(n)  # the repair kept nothing that was refused
        n = self.restart(n)
        self.check_acked(n, "t", acked)
        self.check_refused_absent(n)
        # Without the repairing snapshot, recovery falls back to the older one and replays the
        # cut segment, then the new one from its first entry (the step over the roll back).
        snaps = sorted(glob.glob(os.path.join(n.data, "snapshot-*.tds")))
        self.assertGreaterEqual(len(snaps), 2, snaps)
        n.kill9()
        for f in snaps[1:]:
            os.remove(f)
        n = self.node(data=n.data, ctl=n.ctl)
        self.check_acked(n, "t", acked)
        self.check_refused_absent(n)
        # And it goes on taking writes after the restart.
        self.assertEqual(n.insert("t", {"v": 1})[0], 201)

    # 2
    def test_disk_full_during_snapshot(self):
        n = self.node()
        acked = {}
        self.assertEqual(n.req("POST", "/table", {"name": "t", "fields": [
            {"name": "v", "type": "i64"}, {"name": "s", "type": "str", "size": 1000}]})[0], 201)

        def fill(lo, hi):
            for k in range(lo, hi):
                st, body = n.insert("t", {"v": k, "s": os.urandom(400).hex()})
                self.assertEqual(st, 201, body)
                acked[body["id"]] = k
        fill(0, 100)
        st, first = n.req("POST", "/snapshot")
        self.assertEqual(st, 200, first)
        old = first["path"]
        fill(100, 200)
        n.fault("enospc_after:30000")  # the snapshot (~160 KB) dies halfway
        st, body = n.req("POST", "/snapshot")
        self.assertEqual(st, 507, body)
        self.assertEqual(body["error"]["code"], "resource_exhausted")
        self.assertIn(n.data, body["error"]["message"])
        self.assertEqual(glob.glob(os.path.join(n.data, "*.tmp")), [], "a failed snapshot left its .tmp")
        self.assertTrue(os.path.exists(old))
        v = subprocess.run([SERVER, "--verify", old], capture_output=True, text=True, timeout=20)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        st, stats = n.req("GET", "/stats")
        self.assertGreaterEqual(stats["storage"]["snapshot"]["failures"], 1)
        self.assertIn("No space left", stats["storage"]["snapshot"]["last_error"])
        self.check_acked(n, "t", acked)  # still serving
        n.fault("")
        fill(200, 210)
        st, second = n.req("POST", "/snapshot")
        self.assertEqual(st, 200, second)
        self.assertNotEqual(second["path"], old)
        n = self.restart(n)
        self.check_acked(n, "t", acked)

    # 3
    def test_fsync_fails(self):
        n = self.node()
        acked = {}
        self.make_table(n, acked)
        n.fault("fsync_fail")
        st, body = n.insert("t", {"v": 99})
        self.refused.add(99)
        self.assertEqual(st, 500, body)
        self.assertEqual(body["error"]["code"], "io_error")
        self.assertRegex(body["error"]["message"], r"fdatasync.*log-\d{20}\.tdl.*Input/output error")
        # No retry of the fsync on the same file (its dirty pages may be gone): refused.
        self.assert_refused(n, (500,), ("io_error",))
        st, body = n.req("POST", "/rpc", {"jsonrpc": "2.0", "id": 1, "method": "db.insert",
                                          "params": {"table": "t", "values": {"v": -2}}})
        self.refused.add(-2)
        self.assertEqual((st, body["error"]["data"]["code"]), (200, "io_error"), body)
        self.assertIn("fdatasync", n.log_broken())
        c = n.conn()
        c.request("GET", "/metrics")
        r = c.getresponse()
        self.assertIn(b"tickdb_log_broken 1", r.read())
        c.close()
        self.assert_reads_go_on(n, acked)
        self.check_refused_absent(n)
        n = self.restart(n)
        self.check_acked(n, "t", acked)
        self.check_refused_absent(n)
        self.assertEqual(n.insert("t", {"v": 1})[0], 201)

    # 4
    def test_data_dir_read_only(self):
        n = self.node()
        acked = {}
        self.make_table(n, acked)
        n.fault("erofs_open")
        st, body = n.insert("t", {"v": 99})
        self.refused.add(99)
        self.assertEqual(st, 500, body)
        self.assertEqual(body["error"]["code"], "io_error")
        self.assertRegex(body["error"]["message"], r"log-\d{20}\.tdl.*Read-only file system")
        self.assert_refused(n, (500,), ("io_error",))
        self.assertIn("Read-only", n.log_broken())
        st, body = n.req("POST", "/snapshot")
        self.assertEqual(st, 500, body)
        self.assertIn("Read-only file system", body["error"]["message"])
        self.assert_reads_go_on(n, acked)
        self.check_refused_absent(n)
        n = self.restart(n)
        self.check_acked(n, "t", acked)
        self.check_refused_absent(n)
        # A node that starts on a read-only data dir refuses to start, naming the file.
        data, ctl = n.data, n.ctl
        n.stop()
        with open(ctl, "w") as f:
            f.write("erofs_open")
        with self.assertRaises(RuntimeError) as e:
            Node(data=data, ctl=ctl)
        self.assertIn("Read-only file system", str(e.exception))

    # 5
    def test_clients_that_vanish(self):
        n = self.node("http.timeout_s=120")
        acked = {}
        self.make_table(n, acked, count=0)
        body = json.dumps({"records": [{"v": k} for k in range(20000)]})
        self.assertEqual(n.req("POST", "/table/t/records", json.loads(body))[0], 201)
        for _ in range(20):
            # Half a body, then close.
            s = socket.create_connection(("127.0.0.1", n.port), timeout=5)
            s.sendall(b"POST /table/t/record HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"v\": 1")
            s.close()
            # A big answer, a few bytes read, then close (RST with unread data).
            s = socket.create_connection(("127.0.0.1", n.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /table/t/records?limit=10000 HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(16)
            s.close()
        st, body = n.req("GET", "/table/t/records?limit=1")
        self.assertEqual((st, body["total"]), (200, 20000))
        self.assertEqual(n.insert("t", {"v": 1})[0], 201)

        # 5,000 idle connections.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 5000
        if hard < want + 200:
            self.skipTest("RLIMIT_NOFILE hard limit %d is below %d" % (hard, want + 200))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        try:
            n2 = self.node("http.timeout_s=120")  # inherits the raised limit
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the sockets below need it
        rss0 = n2.rss_kib()
        socks = []
        try:
            deadline = time.time() + 15
            for _ in range(want):
                self.assertLess(time.time(), deadline, "connecting took too long")
                socks.append(socket.create_connection(("127.0.0.1", n2.port), timeout=5))
            wait_for(lambda: n2.fds() >= want, 10, "the node to accept every connection")
            t0 = time.time()
            st, _ = n2.req("GET", "/health")
            self.assertEqual(st, 200)
            self.assertLess(time.time() - t0, 2.0, "slow with 5,000 idle connections")
            self.assertEqual(n2.insert("t", {"v": 1})[0], 404)  # no table there: but it answers
            if not os.environ.get("TICKDB_SANITIZE"):
                grown = n2.rss_kib() - rss0
                # A few KiB a session at most (buffers are not kept for idle sessions).
                self.assertLess(grown, 100 * 1024, "RSS grew %d KiB for %d idle connections" % (grown, want))
        finally:
            for s in socks:
                s.close()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        wait_for(lambda: n2.fds() < 200, 10, "the node to close the sessions")
        self.assertEqual(n2.req("GET", "/health")[0], 200)


if __name__ == "__main__":
    SERVER, SHIM = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
