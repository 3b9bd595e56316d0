#!/usr/bin/env python3
"""Crash tests: the real tickdb-server, killed with SIGKILL under load and in the middle of a
snapshot, restarted on the same data directory; damaged snapshots and log tails on purpose.

usage: crash_test.py SERVER_BINARY GAME_MODULE [unittest args]
Every acknowledged write must be there after a restart, exactly; nothing unacknowledged may be
half there (a transaction's two records are both there or neither); ids are never reused.
Only 127.0.0.1 is used; every load loop is bounded in time.
"""
import glob
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_test as H  # noqa: E402  (the Node class: a server on a free loopback port)


def all_records(node, table):
    out, after = {}, None
    for _ in range(10000):
        q = "/table/%s/records?limit=10000" % table + ("" if after is None else "&after=%d" % after)
        st, body = node.req("GET", q)
        assert st == 200, (st, body)
        for r in body["records"]:
            out[r["id"]] = r
        after = body["next_after"]
        if after is None:
            return out
    raise AssertionError("pagination did not end")


def kill9(node):
    node.proc.kill()
    node.proc.wait(timeout=20)


def newest(data, pattern):
    files = sorted(glob.glob(os.path.join(data, pattern)))
    return files[-1] if files else None


class Writers:
    """Threads writing until stopped or the node dies; they remember what was acknowledged."""

    def __init__(self, node, round_no, n=6):
        self.node, self.round = node, round_no
        self.acked = {}       # id -> values of acknowledged single inserts
        self.acked_pairs = set()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(w,)) for w in range(n)]
        for t in self.threads:
            t.start()

    def run(self, w):
        rng = random.Random(w * 1000 + self.round)
        deadline = time.time() + 30
        seq = 0
        try:
            c = self.node.conn(timeout=5)
            while not self.stop.is_set() and time.time() < deadline:
                seq += 1
                key = (self.round * 100 + w) * 1_000_000 + seq
                if rng.random() < 0.2:
                    body = {"jsonrpc": "2.0", "id": seq, "method": "db.transaction", "params": {"ops": [
                        {"method": "db.insert", "params": {"table": "pair", "values": {"k": key, "half": 1}}},
                        {"method": "db.insert", "params": {"table": "pair", "values": {"k": key, "half": 2}}}]}}
                    c.request("POST", "/rpc", body=json.dumps(body))
                    r = c.getresponse()
                    res = json.loads(r.read())
                    if "result" in res:
                        with self.lock:
                            self.acked_pairs.add(key)
                else:
                    values = {"k": key, "seq": seq, "tag": "r%d-w%d" % (self.round, w)}
                    c.request("POST", "/table/w/record", body=json.dumps(values))
                    r = c.getresponse()
                    res = json.loads(r.read())
                    if r.status == 201:
                        with self.lock:
                            self.acked[res["id"]] = dict(values, id=res["id"])
        except (OSError, http.client.HTTPException, ValueError):
            pass  # the node was killed under us: what was not answered is not acknowledged

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(40)


class CrashTest(unittest.TestCase):
    def make_tables(self, n):
        self.assertEqual(n.req("POST", "/table", {"name": "w", "fields": [
            {"name": "k", "type": "i64"}, {"name": "seq", "type": "i64"}, {"name": "tag", "type": "str", "size": 16}]})[0], 201)
        self.assertEqual(n.req("POST", "/table", {"name": "pair", "fields": [
            {"name": "k", "type": "i64"}, {"name": "half", "type": "i32"}]})[0], 201)

    def check(self, n, acked, acked_pairs, max_id_before):
        recs = all_records(n, "w")
        for i, v in acked.items():
            self.assertTrue(i in recs, "acknowledged record %d is lost" % i)
            self.assertEqual(recs[i], v)
        for r in recs.values():  # unacknowledged ones may be there, but whole
            self.assertEqual(r["tag"].startswith("r"), True, r)
            self.assertEqual(r["k"] % 1_000_000, r["seq"], r)
        halves = {}
        for r in all_records(n, "pair").values():
            halves.setdefault(r["k"], []).append(r["half"])
        for k, hs in halves.items():
            self.assertEqual(sorted(hs), [1, 2], "transaction %d is half there" % k)
        for k in acked_pairs:
            self.assertTrue(k in halves, "acknowledged transaction %d is lost" % k)
        # Ids go on above everything ever handed out.
        st, r = n.req("POST", "/table/w/record", {"k": 0, "seq": 0, "tag": "probe"})
        self.assertEqual(st, 201)
        self.assertGreater(r["id"], max(list(recs) + [max_id_before]))
        n.req("DELETE", "/table/w/record/%d" % r["id"])
        return max(list(recs) + [r["id"]])

    def test_kill9_under_load_keeps_every_acknowledged_write(self):
        data = H.temp_dir()
        n = H.Node("storage.snapshot_interval_s=0.5", data=data)
        self.make_tables(n)
        acked, pairs, max_id = {}, set(), 0
        for round_no in range(3):
            w = Writers(n, round_no)
            time.sleep(random.uniform(0.6, 1.4))
            kill9(n)
            w.join()
            acked.update(w.acked)
            pairs |= w.acked_pairs
            self.assertGreater(len(w.acked), 20, "the writers got too little through to test anything")
            n = H.Node("storage.snapshot_interval_s=0.5", data=data)
            max_id = self.check(n, acked, pairs, max_id)
        self.assertEqual(n.stop(), 0)
        n = H.Node(data=data)  # after a graceful stop: the last snapshot alone
        self.assertTrue(any("loaded snapshot" in line for line in n.log), n.log)
        self.check(n, acked, pairs, max_id)
        n.stop()

    def test_idempotency_keys_outlive_a_kill9(self):
        """A write retried with its Idempotency-Key after the node was killed and restarted gets
        its first answer and is not applied again: from the snapshot's key file and from the
        log after it."""
        data = H.temp_dir()
        n = H.Node("storage.snapshot_interval_s=0", data=data)
        self.assertEqual(n.req("POST", "/table", {"name": "k", "fields": [{"name": "v", "type": "i32"}]})[0], 201)
        batch = [{"jsonrpc": "2.0", "id": 1, "method": "db.insert", "params": {"table": "k", "values": {"v": 2}}},
                 {"jsonrpc": "2.0", "id": 2, "method": "db.insert", "params": {"table": "k", "values": {"v": 3}}}]

        def keyed(node, method, path, body, key):
            st, raw, r = node.req(method, path, body, headers={"Idempotency-Key": key}, raw=True)
            return st, json.loads(raw) if raw else None, r.getheader("Idempotent-Replayed"), raw

        first_insert = keyed(n, "POST", "/table/k/record", {"v": 1}, "pay-1")
        self.assertEqual(first_insert[0], 201)
        rid = first_insert[1]["id"]
        self.assertEqual(n.req("POST", "/snapshot")[0], 200)  # pay-1 is in the key file now
        first_batch = keyed(n, "POST", "/rpc", batch, "pay-2")
        self.assertEqual(first_batch[0], 200)
        self.assertTrue(all("result" in a for a in first_batch[1]), first_batch)
        first_patch = keyed(n, "PATCH", "/table/k/record/%d" % rid, {"v": 10}, "pay-3")
        self.assertEqual(first_patch[0], 200)
        kill9(n)

        n = H.Node("storage.snapshot_interval_s=0", data=data)
        # Another write to the record the key changed: a repeat must not undo it.
        self.assertEqual(n.req("PATCH", "/table/k/record/%d" % rid, {"v": 20})[0], 200)
        for first, (method, path, body, key) in [
                (first_insert, ("POST", "/table/k/record", {"v": 1}, "pay-1")),
                (first_batch, ("POST", "/rpc", batch, "pay-2")),
                (first_patch, ("PATCH", "/table/k/record/%d" % rid, {"v": 10}, "pay-3"))]:
            again = keyed(n, method, path, body, key)
            self.assertEqual((again[0], again[3]), (first[0], first[3]), key)  # the same bytes
            self.assertEqual(again[2], "true", key)
        records = all_records(n, "k")
        self.assertEqual(sorted(r["v"] for r in records.values()), [2, 3, 20])
        st, body, _, _ = keyed(n, "POST", "/table/k/record", {"v": 99}, "pay-1")
        self.assertEqual((st, body["error"]["code"]), (409, "conflict"))
        self.assertEqual(len(all_records(n, "k")), 3)
        self.assertEqual(n.stop(), 0)
        # After a graceful stop the last snapshot carries the keys on.
        n = H.Node(data=data)
        self.assertEqual(keyed(n, "POST", "/table/k/record", {"v": 1}, "pay-1")[3], first_insert[3])
        self.assertEqual(len(all_records(n, "k")), 3)
        n.stop()

    def test_kill9_in_the_middle_of_a_snapshot(self):
        data = H.temp_dir()
        n = H.Node(data=data)
        self.assertEqual(n.req("POST", "/table", {"name": "big", "fields": [
            {"name": "a", "type": "i64"}, {"name": "b", "type": "f64"}, {"name": "s", "type": "str", "size": 24}]})[0], 201)
        rows = 0
        for chunk in range(40):
            recs = [{"a": chunk * 5000 + i, "b": i * 0.5, "s": "row %d" % i} for i in range(5000)]
            st, _ = n.req("POST", "/table/big/records", {"records": recs})
            self.assertEqual(st, 201)
            rows += 5000
        killed_mid = False
        for attempt in range(5):
            t = threading.Thread(target=lambda: n.req("POST", "/snapshot"))
            t.daemon = True
            t.start()
            deadline = time.time() + 10
            while time.time() < deadline and not glob.glob(os.path.join(data, "*.tmp")):
                time.sleep(0.0005)
            killed_mid = bool(glob.glob(os.path.join(data, "*.tmp")))
            kill9(n)
            t.join(10)
            n = H.Node(data=data)
            self.assertEqual(n.req("GET", "/table/big/records?limit=1")[1]["total"], rows)
            self.assertEqual(glob.glob(os.path.join(data, "*.tmp")), [])  # removed at start
            if killed_mid:
                self.assertTrue(any("left unfinished" in line for line in n.log), n.log)
                break
        self.assertTrue(killed_mid, "never caught a snapshot in the middle")
        for f in glob.glob(os.path.join(data, "snapshot-*.tds")):
            self.assertEqual(subprocess.run([H.SERVER, "--verify", f], capture_output=True).returncode, 0, f)
        recs = all_records(n, "big")
        self.assertEqual(recs[1], {"id": 1, "a": 0, "b": 0.0, "s": "row 0"})
        self.assertEqual(recs[rows]["a"], rows - 1)
        n.stop()

    def test_damaged_snapshot_and_log_tail_fall_back(self):
        data = H.temp_dir()
        n = H.Node(data=data)
        self.assertEqual(n.req("POST", "/table", {"name": "t", "fields": [{"name": "v", "type": "i64"}]})[0], 201)
        ids = {}
        for batch in range(3):
            for i in range(50):
                v = batch * 1000 + i
                ids[n.req("POST", "/table/t/record", {"v": v})[1]["id"]] = v
            self.assertEqual(n.req("POST", "/snapshot")[0], 200)
        self.assertEqual(n.stop(), 0)

        def values(node):
            return {i: r["v"] for i, r in all_records(node, "t").items()}

        # The newest snapshot damaged: the one before it and the log after it.
        snap = newest(data, "snapshot-*.tds")
        with open(snap, "r+b") as f:
            f.seek(os.path.getsize(snap) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
        n = H.Node(data=data)
        self.assertTrue(any("skipping snapshot" in line and "checksum" in line for line in n.log), n.log)
        self.assertEqual(values(n), ids)
        for i in range(20):
            ids[n.req("POST", "/table/t/record", {"v": 5000 + i})[1]["id"]] = 5000 + i
        kill9(n)

        # A torn write at the end of the log: cut, and everything acknowledged is still there.
        seg = newest(data, "log-*.tdl")
        with open(seg, "ab") as f:
            f.write(b"TKLE\x00\x01\x02")
        n = H.Node(data=data)
        self.assertTrue(any("cut after the last whole entry" in line for line in n.log), n.log)
        self.assertEqual(values(n), ids)
        kill9(n)

        # The last entry itself cut short: that write is gone, nothing else.
        seg = newest(data, "log-*.tdl")
        size = os.path.getsize(seg)
        with open(seg, "r+b") as f:
            f.truncate(size - 2)
        n = H.Node(data=data)
        got = values(n)
        last = max(ids)
        self.assertNotIn(last, got)
        self.assertEqual(got, {i: v for i, v in ids.items() if i != last})
        self.assertEqual(n.stop(), 0)

    def test_a_newer_snapshot_format_stops_the_start(self):
        data = H.temp_dir()
        n = H.Node(data=data)
        n.req("POST", "/table", {"name": "t", "fields": [{"name": "v", "type": "i64"}]})
        self.assertEqual(n.stop(), 0)
        snap = newest(data, "snapshot-*.tds")
        ok = subprocess.run([H.SERVER, "--verify", snap], capture_output=True, text=True)
        self.assertEqual(ok.returncode, 0, ok.stdout)
        self.assertIn("checksum:  ok", ok.stdout)
        self.assertIn("t: 0 records of 8 bytes", ok.stdout)
        with open(snap, "r+b") as f:
            f.seek(8)
            f.write(b"\x03")
        p = subprocess.run([H.SERVER, "--set", "http.port=0", "--set", "storage.data_dir=" + json.dumps(data)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("format version 3", p.stdout + p.stderr)
        self.assertIn("refusing to start", p.stdout + p.stderr)
        bad = subprocess.run([H.SERVER, "--verify", snap], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("format version 3", bad.stdout)

    def test_a_busy_port_stops_the_start_cleanly(self):
        # A port in use (HTTP or cluster) stops the start with exit 2 naming it: no crash (the
        # store's last snapshot once read a runtime already gone: SIGSEGV), and the data dir
        # stays whole, so a start on a free port has every record.
        data = H.temp_dir()
        n = H.Node(data=data)
        n.req("POST", "/table", {"name": "t", "fields": [{"name": "v", "type": "i64"}]})
        for v in range(5):
            self.assertEqual(n.req("POST", "/table/t/record", {"v": v})[0], 201)
        self.assertEqual(n.stop(), 0)
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            for sets in (["http.port=%d" % port], ["http.port=0", "cluster.port=%d" % port]):
                args = [H.SERVER]
                for kv in sets + ["storage.data_dir=" + json.dumps(data)]:
                    args += ["--set", kv]
                p = subprocess.run(args, capture_output=True, text=True, timeout=60)
                out = p.stdout + p.stderr
                self.assertEqual(p.returncode, 2, out[-3000:])
                self.assertIn("127.0.0.1:%d" % port, out)
                for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error"):
                    self.assertNotIn(bad, out)
        finally:
            busy.close()
        n = H.Node(data=data)
        self.assertEqual(sorted(r["v"] for r in all_records(n, "t").values()), list(range(5)))
        self.assertEqual(n.stop(), 0)


if __name__ == "__main__":
    H.SERVER, H.GAME = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
