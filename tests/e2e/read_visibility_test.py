#!/usr/bin/env python3
"""storage.read_visibility: no reader sees a write that a crash can take back (issue 15, part 6).

A node on a slow disk (tests/fault/fault_shim.c `slow_ms`: every write and fsync of the data
dir waits first, so versions sit published but not on disk for a long while) takes inserts from
several clients while readers look at the table every way a client can: lists, single records,
JSON-RPC db.list, and a Server-Sent Events subscription. Then SIGKILL, a restart on the same data
dir, and the check: every record any reader saw is there, with the value the reader saw.

With `durable` (the default) that must hold every time. With `immediate` it must fail: the test
finds the dirty read (a reader saw a record the crash took back, and its id is handed out again
to another record), which proves the check can see what it looks for.

usage: read_visibility_test.py SERVER_BINARY FAULT_SHIM [unittest args]
Only 127.0.0.1 is used; every loop is bounded in time. Skipped under sanitizers (the shim is an
LD_PRELOAD library).
"""
import http.client
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fault_test as F  # noqa: E402  (Node: a server whose data dir is under the shim)

SLOW_MS = 250  # each write and each fsync of the log: the window where a version is not on disk


class Run:
    """One node under load until killed: what the writers were told, what the readers saw."""

    def __init__(self, node):
        self.node = node
        self.acked = {}      # id -> v, inserts answered 201
        self.seen = {}       # id -> v, what any reader saw (list, get, rpc, SSE)
        self.seen_by = {}    # id -> the reader that saw it first
        self.rows_by = {}    # reader -> rows it read
        self.errors = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = []

    def note(self, who, rows):
        with self.lock:
            self.rows_by[who] = self.rows_by.get(who, 0) + len(rows)
            for r in rows:
                i, v = r["id"], r.get("v")
                if i not in self.seen:
                    self.seen[i], self.seen_by[i] = v, who
                elif self.seen[i] != v:
                    self.errors.append("%s saw record %d as %r, earlier %r" % (who, i, v, self.seen[i]))

    def unacked_seen(self):
        with self.lock:
            return [i for i in self.seen if i not in self.acked]

    def spawn(self, fn, *args):
        t = threading.Thread(target=self.guard, args=(fn,) + args, daemon=True)
        t.start()
        self.threads.append(t)

    def guard(self, fn, *args):
        try:
            fn(*args)
        except (OSError, http.client.HTTPException, ValueError):
            pass  # the node was killed under it
        except Exception as e:  # noqa: BLE001 (reported, not swallowed)
            with self.lock:
                self.errors.append("%s: %r" % (fn.__name__, e))

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)

    def writer(self, w):
        c = self.conn()
        deadline = time.time() + 20
        k = 0
        while not self.stop.is_set() and time.time() < deadline:
            k += 1
            v = w * 1_000_000 + k
            c.request("POST", "/table/t/record", body=json.dumps({"v": v}))
            r = c.getresponse()
            body = json.loads(r.read())
            if r.status == 201:
                with self.lock:
                    self.acked[body["id"]] = v

    def lister(self):
        c = self.conn()
        deadline = time.time() + 20
        while not self.stop.is_set() and time.time() < deadline:
            c.request("GET", "/table/t/records?limit=10000")
            r = c.getresponse()
            body = json.loads(r.read())
            if r.status == 200:
                self.note("list", body["records"])
            # JSON-RPC db.list: a read the runtime answers (Route::read), not the REST fast path.
            c.request("POST", "/rpc", body=json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "db.list", "params": {"table": "t", "limit": 10000}}))
            r = c.getresponse()
            body = json.loads(r.read())
            if "result" in body:
                self.note("rpc db.list", body["result"]["records"])

    def getter(self):
        """Probes the ids just past the highest one seen: a record read by id before any list."""
        c = self.conn()
        deadline = time.time() + 20
        while not self.stop.is_set() and time.time() < deadline:
            with self.lock:
                top = max(list(self.seen) + list(self.acked) + [0])
            for i in range(top + 1, top + 4):
                c.request("GET", "/table/t/record/%d" % i)
                r = c.getresponse()
                body = json.loads(r.read())
                if r.status == 200:
                    self.note("get", [body])

    def subscriber(self):
        c = self.conn()
        c.request("GET", "/table/t/events", headers={"Accept": "text/event-stream"})
        r = c.getresponse()
        if r.status != 200:
            raise AssertionError("SSE answered %d" % r.status)
        event, data = None, []
        deadline = time.time() + 20
        while not self.stop.is_set() and time.time() < deadline:
            line = r.fp.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and event:
                frame = json.loads("".join(data)) if data else {}
                if event == "snapshot":
                    self.note("SSE", frame.get("rows", []))
                elif event == "delta":
                    for ch in frame.get("changes", {}).values():
                        self.note("SSE", ch.get("ins", []) + ch.get("upd", []))
                event, data = None, []


class ReadVisibilityTest(unittest.TestCase):
    def setUp(self):
        if os.environ.get("TICKDB_SANITIZE"):
            self.skipTest("LD_PRELOAD shim not loaded under sanitizers (TICKDB_SANITIZE=%s)"
                          % os.environ["TICKDB_SANITIZE"])
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.stop()

    def node(self, *sets, **kw):
        n = F.Node(*sets, **kw)
        self.nodes.append(n)
        return n

    def crash_round(self, visibility, kill_when):
        """A node with `visibility` under load on a slow disk, SIGKILLed once `kill_when(run)`
        holds (bounded); returns the run and the records after the restart."""
        sets = ["storage.durability=sync"] + (["storage.read_visibility=" + visibility] if visibility else [])
        n = self.node(*sets)
        st, body = n.req("GET", "/stats")
        self.assertEqual(body["storage"]["log"]["read_visibility"], visibility or "durable")
        self.assertEqual(n.req("POST", "/table", {"name": "t", "fields": [{"name": "v", "type": "i64"}]})[0], 201)
        for k in range(5):
            self.assertEqual(n.insert("t", {"v": k})[0], 201)
        n.fault("slow_ms:%d" % SLOW_MS)
        run = Run(n)
        for w in range(1, 5):
            run.spawn(run.writer, w)
        run.spawn(run.lister)
        run.spawn(run.getter)
        run.spawn(run.subscriber)
        deadline = time.time() + 10
        while time.time() < deadline and not kill_when(run):
            time.sleep(0.002)
        n.kill9()
        run.stop.set()
        for t in run.threads:
            t.join(15)
        self.assertEqual(run.errors, [])
        self.assertGreater(len(run.acked), 0, "no insert was answered before the kill")
        n.fault("")
        n2 = self.node(data=n.data, ctl=n.ctl)
        after = F.all_records(n2, "t")
        lost_acked = [i for i in run.acked if after.get(i, {}).get("v") != run.acked[i]]
        self.assertEqual(lost_acked, [], "acknowledged inserts lost or changed")
        return run, after, n2

    def test_durable_reads_see_nothing_a_crash_takes_back(self):
        # Killed while inserts are in flight, once the readers have seen a good part of them.
        def loaded(run):
            return len(run.seen) >= 25 and len(run.acked) >= 15
        for _ in range(2):
            run, after, n2 = self.crash_round(None, loaded)  # the default: durable
            self.assertGreaterEqual(len(run.seen), 25, "the readers saw too little to check anything")
            dirty = {i: (v, run.seen_by[i]) for i, v in run.seen.items() if after.get(i, {}).get("v") != v}
            self.assertEqual(dirty, {}, "records readers saw that the crash took back: id -> (value, reader)")
            for reader in ("list", "rpc db.list", "SSE"):
                self.assertGreater(run.rows_by.get(reader, 0), 0, reader + " read nothing")
            # Nothing a reader saw is handed out again.
            st, body = n2.insert("t", {"v": -7})
            self.assertEqual(st, 201, body)
            self.assertNotIn(body["id"], run.seen)

    def test_immediate_reads_can_see_what_a_crash_takes_back(self):
        # Killed the moment a reader has seen an insert its writer was not yet told of: it is
        # published but not on disk.
        found = None
        for _ in range(4):
            run, after, n2 = self.crash_round(
                "immediate", lambda run: len(run.acked) >= 4 and len(run.unacked_seen()) >= 2)
            dirty = [i for i, v in run.seen.items() if after.get(i, {}).get("v") != v]
            if dirty:
                found = (run, dirty, n2)
                break
        self.assertIsNotNone(found, "immediate reads never showed a write the crash took back")
        run, dirty, n2 = found
        # Its id is handed out again, to another record.
        st, body = n2.insert("t", {"v": -7})
        self.assertEqual(st, 201, body)
        self.assertIn(body["id"], dirty, "the next id after the crash")


if __name__ == "__main__":
    F.SERVER, F.SHIM = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
