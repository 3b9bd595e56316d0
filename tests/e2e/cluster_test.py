#!/usr/bin/env python3
"""End-to-end tests of a cluster: 2 and 3 real tickdb-server processes on loopback, joined over
CAF's remote actors (issue 11). Every wait is bounded; only 127.0.0.1 is used.

usage: cluster_test.py SERVER_BINARY GAME_MODULE [unittest args]
"""
import http.client
import json
import urllib.parse
import os
import random
import signal
import sys
import threading
import socket
import time
import unittest

from tickdb_node import NodeProcess, need_debian_module, read_events, temp_dir

need_debian_module("websockets")  # the WebSocket client of the subscription test

SERVER = None
GAME = None


def free_cluster_port():
    # Below the ephemeral range (32768-60999 here): a port an outgoing connection used may sit
    # in TIME-WAIT there and cannot be published.
    import socket
    for _ in range(200):
        p = random.randint(20000, 32000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def _req(self, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=dict(headers or {}))
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = data.decode("utf-8", "replace")
    return r.status, parsed, r


NodeProcess.req = _req


class ClusterNode(NodeProcess):
    def __init__(self, name, port=None, peers=(), data=None, extra=()):
        self.name = name
        self.cport = port or free_cluster_port()
        sets = ["node.name=" + json.dumps(name), "cluster.port=%d" % self.cport,
                "cluster.peers=" + json.dumps(["127.0.0.1:%d" % p for p in peers]),
                "cluster.heartbeat_ms=100", "cluster.failure_timeout_ms=1000",
                "storage.snapshot_interval_s=0"] + list(extra)
        self.sets = sets
        super().__init__(SERVER, *sets, data=data or temp_dir("tickdb-cluster-"))

    def rpc(self, method, params, id=1):
        return self.req("POST", "/rpc", {"jsonrpc": "2.0", "id": id, "method": method, "params": params})

    def peers_up(self):
        st, c, _ = self.req("GET", "/cluster")
        return {n["name"] for n in c["nodes"][1:] if n["up"]}


def wait_until(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("not within %.1f s: %s" % (timeout, what))


def stop_process(pid):
    """SIGSTOP, then wait until the kernel says the process is stopped (the signal takes effect
    asynchronously: a request sent at once could still be answered)."""
    os.kill(pid, signal.SIGSTOP)

    def stopped():
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    wait_until(stopped, 5, "process %d stopped" % pid)


def make_table(node, name, owner):
    st, body, _ = node.req("POST", "/table", {"name": name, "node": owner,
                                              "fields": [{"name": "v", "type": "i32"}, {"name": "s", "type": "str", "size": 8}]})
    assert st == 201, (st, body)


class Cluster(unittest.TestCase):
    def start3(self):
        a = ClusterNode("a")
        b = ClusterNode("b", peers=[a.cport])
        c = ClusterNode("c", peers=[a.cport])
        self.nodes = [a, b, c]
        for n in self.nodes:
            others = {m.name for m in self.nodes} - {n.name}
            wait_until(lambda n=n, o=others: n.peers_up() == o, 10, "%s sees %s" % (n.name, others))
        return a, b, c

    def tearDown(self):
        for n in getattr(self, "nodes", []):
            if n.proc.poll() is None:
                try:
                    os.kill(n.pid, signal.SIGCONT)
                except OSError:
                    pass
                n.stop()

    def test_tables_on_each_node_through_the_others(self):
        a, b, c = self.start3()
        make_table(b, "ta", "a")   # created on a, asked of b
        make_table(c, "tb", "b")
        make_table(a, "tc", "c")
        owners = {"ta": "a", "tb": "b", "tc": "c"}
        for t, owner in owners.items():
            wait_until(lambda t=t: all(n.req("GET", "/table/" + t)[0] == 200 for n in self.nodes), 5,
                       "every node knows " + t)
        # Write through every node, read through every node: the owner's answers.
        for t, owner in owners.items():
            for i, n in enumerate(self.nodes):
                st, body, r = n.req("POST", "/table/%s/record" % t, {"v": i, "s": n.name})
                self.assertEqual(st, 201, body)
                self.assertEqual(r.getheader("X-Tickdb-Node"), owner)
                self.assertEqual(r.getheader("X-Tickdb-Owner"), None if n.name == owner else owner)
            answers = [n.req("GET", "/table/%s/records" % t)[1] for n in self.nodes]
            self.assertEqual(answers[0], answers[1])
            self.assertEqual(answers[1], answers[2])
            self.assertEqual([r["s"] for r in answers[0]["records"]], ["a", "b", "c"])
        # Queries are forwarded with their parameters: filters in both forms, order, select,
        # cursors (valid on every node: the owner makes them), POST .../query and db.query.
        for i in range(20):
            self.assertEqual(a.req("POST", "/table/tb/record", {"v": i % 5, "s": "q%d" % i})[0], 201)
        q = "/table/tb/records?filter=" + urllib.parse.quote('v >= 2 && s ^= "q"') + "&order=-v,s&select=v&limit=4"
        pages = {}
        for n in self.nodes:
            got, path = [], q
            for _ in range(10):
                st, body, r = n.req("GET", path)
                self.assertEqual(st, 200, body)
                self.assertIsNotNone(r.getheader("X-Tickdb-Version"))
                got += body["records"]
                if body["next_cursor"] is None:
                    break
                path = q + "&cursor=" + body["next_cursor"]
            pages[n.name] = got
        self.assertEqual(pages["a"], pages["b"])
        self.assertEqual(pages["c"], pages["b"])
        self.assertEqual(len(pages["b"]), 12)
        self.assertEqual([r["v"] for r in pages["b"]], sorted([r["v"] for r in pages["b"]], reverse=True))
        st, body, _ = c.req("POST", "/table/tb/query", {"filter": ["=", "v", 4], "select": ["s"], "limit": 100})
        self.assertEqual((st, [r["s"] for r in body["records"]]), (200, ["q4", "q9", "q14", "q19"]))
        st, body, _ = a.req("GET", "/table/tb/records?filter=" + urllib.parse.quote("nope = 1"))
        self.assertEqual((st, body["error"]["message"]), (400, "filter: unknown field 'nope' at 1:1"))
        st, out, _ = a.rpc("db.query", {"table": "tb", "filter": "v = 4", "order": "-id", "limit": 1})
        self.assertEqual([r["s"] for r in out["result"]["records"]], ["q19"])
        # The table lives on its owner only.
        st, body, _ = a.req("GET", "/tables")
        self.assertEqual([t["name"] for t in body["tables"]], ["ta"])
        # Errors are the owner's too; a node that does not exist is refused.
        st, body, r = a.req("GET", "/table/tb/record/99")
        self.assertEqual((st, body["error"]["code"], r.getheader("X-Tickdb-Owner")), (404, "not_found", "b"))
        st, body, _ = a.req("POST", "/table", {"name": "x", "node": "nope", "fields": []})
        self.assertEqual(st, 400)
        # JSON-RPC: a batch may mix tables of several nodes.
        st, out, _ = b.req("POST", "/rpc", [
            {"jsonrpc": "2.0", "id": 1, "method": "db.get", "params": {"table": "ta", "id": 1}},
            {"jsonrpc": "2.0", "id": 2, "method": "db.insert", "params": {"table": "tc", "values": {"v": 9}}},
            {"jsonrpc": "2.0", "id": 3, "method": "db.list", "params": {"table": "tb", "limit": 2}}])
        self.assertEqual(st, 200)
        by_id = {x["id"]: x for x in out}
        self.assertEqual(by_id[1]["result"]["s"], "a")
        self.assertEqual(by_id[2]["result"]["v"], 9)
        self.assertEqual(len(by_id[3]["result"]["records"]), 2)
        self.assertEqual(c.req("GET", "/table/tc/record/4")[1]["v"], 9)
        # What would span two nodes is refused, naming them, and changes nothing.
        st, out, _ = a.req("POST", "/rpc", {"jsonrpc": "2.0", "id": 7, "method": "db.transaction", "params": {"ops": [
            {"method": "db.insert", "params": {"table": "ta", "values": {"v": 1}}},
            {"method": "db.insert", "params": {"table": "tb", "values": {"v": 1}}}]}})
        self.assertEqual(out["error"]["code"], -32602, out)
        self.assertIn("'a', 'b'", out["error"]["message"])
        st, out, _ = c.req("POST", "/rpc", {"jsonrpc": "2.0", "id": 8, "method": "db.transaction", "params": {"ops": [
            {"method": "db.insert", "params": {"table": "tb", "values": {"v": 77}}},
            {"method": "db.insert", "params": {"table": "tb", "values": {"v": 78}}}]}})
        self.assertEqual([r["v"] for r in out["result"]], [77, 78])  # all on b: forwarded whole
        st, body, _ = b.req("POST", "/relation", {"from_table": "ta", "from_field": "v", "to_table": "tc"})
        self.assertEqual((st, body["error"]["code"]), (400, "invalid_argument"))
        self.assertIn("'a', 'c'", body["error"]["message"])
        self.assertEqual(a.req("GET", "/table/ta/records")[1]["count"], 3)
        st, cl, _ = c.req("GET", "/cluster")
        self.assertEqual({n["name"]: n["tables"] for n in cl["nodes"]}, {"c": ["tc"], "a": ["ta"], "b": ["tb"]})
        self.assertTrue(all(n["rtt_ms"] is not None for n in cl["nodes"]))
        # Per-peer figures are refreshed with every heartbeat.
        wait_until(lambda: 'tickdb_cluster_forwarded_total{peer="c",status="201"}' in a.req("GET", "/metrics")[1], 3,
                   "forwarded calls counted by peer and status")
        m = a.req("GET", "/metrics")[1]
        self.assertIn('tickdb_cluster_peer_up{peer="b"} 1', m)
        import shutil, subprocess
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool is missing (tools/install-deps installs prometheus)")
        p = subprocess.run([promtool, "check", "metrics"], input=m, capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_random_calls_through_random_nodes_answer_as_one_node(self):
        a, b, c = self.start3()
        solo = NodeProcess(SERVER, "storage.snapshot_interval_s=0")
        self.nodes.append(solo)
        make_table(a, "t1", "b")
        make_table(solo, "t1", "tickdb")  # the one node there is
        wait_until(lambda: all(n.req("GET", "/table/t1")[0] == 200 for n in (a, b, c)), 5, "t1 known")
        rnd = random.Random(11)
        deadline = time.time() + 60
        for i in range(300):
            self.assertLess(time.time(), deadline)
            kind = rnd.choice(["insert", "get", "update", "delete", "list", "rpc_get", "rpc_insert"])
            rid = rnd.randint(1, 40)
            if kind == "insert":
                call = ("POST", "/table/t1/record", {"v": rnd.randint(-5, 5), "s": "x%d" % i})
            elif kind == "get":
                call = ("GET", "/table/t1/record/%d" % rid, None)
            elif kind == "update":
                call = ("PUT", "/table/t1/record/%d" % rid, {"v": rnd.choice([1, 2, 2147483648])})
            elif kind == "delete":
                call = ("DELETE", "/table/t1/record/%d" % rid, None)
            elif kind == "list":
                call = ("GET", "/table/t1/records?limit=%d&after=%d" % (rnd.randint(1, 5), rnd.randint(0, 30)), None)
            elif kind == "rpc_get":
                call = ("POST", "/rpc", {"jsonrpc": "2.0", "id": i, "method": "db.get", "params": {"table": "t1", "id": rid}})
            else:
                call = ("POST", "/rpc", {"jsonrpc": "2.0", "id": i, "method": "db.insert", "params": {"table": "t1", "values": {"v": i}}})
            through = rnd.choice([a, b, c])
            got = through.req(*call)
            want = solo.req(*call)
            self.assertEqual(got[0], want[0], (kind, call, got[1], want[1]))
            self.assertEqual(got[1], want[1], (kind, call))

    def test_a_hung_node_answers_503_in_bound_others_unaffected_and_it_recovers(self):
        a = ClusterNode("a", extra=["cluster.request_timeout_ms=300"])
        b = ClusterNode("b", peers=[a.cport], extra=["cluster.request_timeout_ms=300"])
        self.nodes = [a, b]
        wait_until(lambda: a.peers_up() == {"b"}, 10, "a sees b")
        make_table(a, "mine", "a")
        make_table(a, "theirs", "b")
        wait_until(lambda: a.req("GET", "/table/theirs")[0] == 200, 5, "theirs known")
        self.assertEqual(a.req("POST", "/table/theirs/record", {"v": 1})[0], 201)
        os.kill(b.pid, signal.SIGSTOP)
        t0 = time.time()
        first_503 = None
        slowest_local = 0
        while time.time() - t0 < 5:
            st, body, r = a.req("GET", "/table/theirs/record/1", timeout=5)
            if st == 503:
                first_503 = time.time() - t0
                self.assertEqual(body["error"]["code"], "node_unavailable")
                self.assertEqual(r.getheader("Retry-After"), "1")
                break
            self.assertIn(st, (200, 504), body)
            s0 = time.time()
            self.assertEqual(a.req("POST", "/table/mine/record", {"v": 2}, timeout=5)[0], 201)
            slowest_local = max(slowest_local, time.time() - s0)
        self.assertIsNotNone(first_503, "no 503 within 5 s of SIGSTOP")
        self.assertLessEqual(first_503, 1.0 + 0.5 + 0.3, "first 503 %.2f s after SIGSTOP" % first_503)
        self.assertLess(slowest_local, 0.5, "a's own table slowed to %.2f s" % slowest_local)
        os.kill(b.pid, signal.SIGCONT)
        t1 = time.time()
        wait_until(lambda: a.req("GET", "/table/theirs/record/1")[0] == 200, 5, "forwarding again after SIGCONT")
        self.assertLess(time.time() - t1, 3)

    def test_a_killed_node_restarts_from_its_data_and_is_joined_again(self):
        a, b = self.start_pair()
        ids = [a.req("POST", "/table/tb/record", {"v": i})[1]["id"] for i in range(20)]
        b.proc.kill()
        b.proc.wait(10)
        wait_until(lambda: a.req("GET", "/table/tb/record/1")[0] == 503, 3, "503 once b is gone")
        b2 = ClusterNode("b", port=b.cport, peers=[a.cport], data=b.data)
        self.nodes.append(b2)
        wait_until(lambda: b2.req("GET", "/health")[0] == 200, 5, "b back")
        t0 = time.time()
        wait_until(lambda: a.req("GET", "/table/tb/record/1")[0] == 200, 5, "forwarding to the restarted b")
        self.assertLess(time.time() - t0, 2.0)
        got = a.req("GET", "/table/tb/records?limit=100")[1]["records"]
        self.assertEqual([r["id"] for r in got], ids)  # every acknowledged write is there

    def start_pair(self, a_extra=(), b_extra=()):
        """Nodes a and b joined (b dials a); b owns table tb, made through a and known to a."""
        a = ClusterNode("a", extra=list(a_extra))
        b = ClusterNode("b", peers=[a.cport], extra=list(b_extra))
        self.nodes = [a, b]
        wait_until(lambda: a.peers_up() == {"b"}, 10, "a sees b")
        make_table(a, "tb", "b")
        wait_until(lambda: a.req("GET", "/table/tb")[0] == 200, 5, "tb known")
        return a, b

    def start_slow_pair(self):
        """start_pair with a request timeout of 300 ms on a (a SIGSTOPped b stays up for 8 s)."""
        return self.start_pair(a_extra=["cluster.request_timeout_ms=300", "cluster.failure_timeout_ms=8000"],
                               b_extra=["cluster.failure_timeout_ms=8000"])

    def test_504_past_the_request_timeout_and_the_idempotent_retry_applies_once(self):
        a, b = self.start_slow_pair()
        stop_process(b.pid)  # slow: answers only after the request timeout
        key = {"Idempotency-Key": "pay-42"}
        st, body, _ = a.req("POST", "/table/tb/record", {"v": 42}, headers=key)
        self.assertEqual((st, body["error"]["code"]), (504, "node_timeout"))
        os.kill(b.pid, signal.SIGCONT)
        wait_until(lambda: b.req("GET", "/table/tb/records")[1]["count"] >= 1, 5, "the write arrived late")
        st, body, r = a.req("POST", "/table/tb/record", {"v": 42}, headers=key)
        self.assertEqual(st, 201, body)
        self.assertEqual(r.getheader("Idempotent-Replayed"), "true")
        self.assertEqual(b.req("GET", "/table/tb/records")[1]["count"], 1)

    def test_a_keyed_batch_over_two_nodes_applies_each_call_once_across_a_504(self):
        a, b = self.start_slow_pair()
        make_table(a, "ta", "a")
        batch = [{"jsonrpc": "2.0", "id": 1, "method": "db.insert", "params": {"table": "ta", "values": {"v": 1}}},
                 {"jsonrpc": "2.0", "id": 2, "method": "db.insert", "params": {"table": "tb", "values": {"v": 2}}}]
        key = {"Idempotency-Key": "batch-7"}
        stop_process(b.pid)  # tb's call is answered only after the request timeout
        st, first, _ = a.req("POST", "/rpc", batch, headers=key)
        self.assertEqual(st, 200)
        self.assertIn("result", first[0])
        self.assertEqual(first[1]["error"]["data"]["code"], "node_timeout")
        os.kill(b.pid, signal.SIGCONT)
        wait_until(lambda: b.req("GET", "/table/tb/records")[1]["count"] >= 1, 5, "the call arrived late")
        # The retry runs again (part of it was not answered): ta's call is answered from what
        # it did, tb's by b from what the late call did. Neither is applied twice.
        st, again, r = a.req("POST", "/rpc", batch, headers=key)
        self.assertEqual(st, 200)
        self.assertEqual(again[0], first[0])
        self.assertIn("result", again[1], again)
        self.assertEqual(r.getheader("Idempotent-Replayed"), "true")
        st, third, r = a.req("POST", "/rpc", batch, headers=key)
        self.assertEqual((third, r.getheader("Idempotent-Replayed")), (again, "true"))
        self.assertEqual(a.req("GET", "/table/ta/records")[1]["count"], 1)
        self.assertEqual(b.req("GET", "/table/tb/records")[1]["count"], 1)

    def open_events(self, node, query="", headers=None):
        """An event stream of tb through `node`: (connection, response)."""
        c = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        c.request("GET", "/table/tb/events" + query, headers=headers or {})
        return c, c.getresponse()

    def events(self, r, until, timeout=10):
        return read_events(r, until, timeout)

    def stream_figures(self, node):
        return node.req("GET", "/stats")[1]["subscriptions"]

    def test_an_event_stream_of_a_table_of_another_node_is_relayed_from_it(self):
        a, b = self.start_pair()
        self.assertEqual(a.req("POST", "/table/tb/record", {"v": 1})[0], 201)
        c, r = self.open_events(a, "?filter=v%20%3E%3D%201&select=v")
        self.assertEqual((r.status, r.getheader("Content-Type")), (200, "text/event-stream"))
        self.assertEqual((r.getheader("X-Tickdb-Node"), r.getheader("X-Tickdb-Owner")), ("b", "b"))
        got = self.events(r, lambda e: e[0] == "ready")
        hello = got[0]
        self.assertEqual((hello[0], hello[2]["node"]), ("hello", "b"))  # b's hub, b's epoch
        self.assertEqual([e[2]["rows"] for e in got if e[0] == "snapshot"], [[{"id": 1, "v": 1}]])
        self.assertEqual(got[-1][1], "%s:%d" % (hello[2]["epoch"], got[-1][2]["version"]))
        wait_until(lambda: self.stream_figures(b)["connections"] == 1, 5, "b serves the stream")
        self.assertEqual((self.stream_figures(a)["connections"], self.stream_figures(a)["relayed_streams"]), (0, 1))
        self.assertEqual(self.stream_figures(b)["served_streams"], 1)
        # A write through either node reaches the client as a delta of b's chain.
        self.assertEqual(a.req("POST", "/table/tb/record", {"v": 2})[0], 201)
        delta = self.events(r, lambda e: e[0] == "delta")[-1]
        self.assertEqual(delta[2]["changes"]["tb"]["ins"], [{"id": 2, "v": 2}])
        self.assertEqual(delta[2]["from"], got[-1][2]["version"])
        self.assertEqual(b.req("POST", "/table/tb/record", {"v": 0})[0], 201)  # out of the filter
        self.assertEqual(b.req("PUT", "/table/tb/record/2", {"v": 5, "s": "x"})[0], 200)
        d2 = self.events(r, lambda e: e[0] == "delta" and e[2]["changes"]["tb"]["upd"])[-1]
        self.assertEqual(d2[2]["changes"]["tb"]["upd"], [{"id": 2, "v": 5}])
        # Every frame written to the client is acknowledged to b: nothing stays queued there
        # (unacknowledged frames would count as a slow client's queue and be conflated).
        wait_until(lambda: self.stream_figures(b)["queue_bytes"] == 0, 5, "b's queue drained")
        self.assertEqual(self.stream_figures(b)["conflations"], 0)
        r.close()  # the client goes away (the response holds the socket too)
        c.close()
        wait_until(lambda: self.stream_figures(b)["connections"] == 0, 5, "b drops the stream")
        self.assertEqual((self.stream_figures(a)["relayed_streams"], self.stream_figures(b)["served_streams"]), (0, 0))
        # Last-Event-ID through a resumes on b's chain.
        self.assertEqual(a.req("POST", "/table/tb/record", {"v": 3})[0], 201)
        c, r = self.open_events(a, "?filter=v%20%3E%3D%201&select=v", {"Last-Event-ID": d2[1]})
        ready = self.events(r, lambda e: e[0] == "ready")[-1]
        self.assertTrue(ready[2]["resumed"], ready)
        self.assertEqual([x["v"] for x in ready[2]["changes"]["tb"]["ins"]], [3])
        r.close()
        c.close()
        # A bad request is answered as b answers it, with the owner named.
        for q in ["?filter=nope%3D1", "?colour=1", "?rate_hz=0", "?select=v,v,zz"]:
            c, r = self.open_events(b, q)
            direct = (r.status, json.loads(r.read()))
            c.close()
            c, r = self.open_events(a, q)
            relayed = (r.status, json.loads(r.read()))
            self.assertEqual(relayed, direct, q)
            self.assertEqual(direct[0], 400, q)
            self.assertEqual(r.getheader("X-Tickdb-Owner"), "b")
            c.close()
        # HEAD of a stream: its head, from either node (no stream).
        for n, owner in [(a, "b"), (b, None)]:
            c = http.client.HTTPConnection("127.0.0.1", n.port, timeout=10)
            c.request("HEAD", "/table/tb/events?filter=v%3D1")
            r = c.getresponse()
            self.assertEqual((r.status, r.getheader("Content-Type"), r.read()), (200, "text/event-stream", b""))
            self.assertEqual(r.getheader("X-Tickdb-Owner"), owner)
            c.close()
        # A table no node has is this node's 404, as before.
        st, body, _ = a.req("GET", "/table/nope/events")
        self.assertEqual((st, body["error"]["code"]), (404, "not_found"))
        wait_until(lambda: self.stream_figures(b)["connections"] == 0, 5, "no stream left on b")
        # WebSocket connections are one chain of this node's versions: a subscribe for a table
        # of another node answers an error frame naming it (Debian's python3-websockets).
        import asyncio
        import websockets

        async def subscribe_through_a():
            async with websockets.connect("ws://127.0.0.1:%d/ws" % a.port, subprotocols=["tickdb.v1"]) as ws:
                hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
                await ws.send(json.dumps({"op": "subscribe", "sub": "s1", "table": "tb"}))
                return hello, json.loads(await asyncio.wait_for(ws.recv(), 5))
        hello, err = asyncio.run(asyncio.wait_for(subscribe_through_a(), 20))
        self.assertEqual(hello["type"], "hello")
        self.assertEqual((err["type"], err["code"], err["sub"]), ("error", "misdirected", "s1"), err)
        self.assertIn("node 'b'", err["message"])

    def test_a_relayed_stream_ends_with_its_node_and_is_refused_while_it_is_down(self):
        a, b = self.start_pair()
        c, r = self.open_events(a)
        self.events(r, lambda e: e[0] == "ready")
        os.kill(b.pid, signal.SIGKILL)
        t0 = time.time()
        rest = self.events(r, None, timeout=5)  # ends by itself (bounded by failure detection)
        self.assertLess(time.time() - t0, 1.0 + 0.5 + 1.0)
        ended = [e for e in rest if e[0] == "error"]
        self.assertEqual([e[2]["code"] for e in ended], ["closed"], rest)
        c.close()
        wait_until(lambda: a.peers_up() == set(), 5, "a sees b down")
        c, r = self.open_events(a)
        body = json.loads(r.read())
        self.assertEqual((r.status, body["error"]["code"]), (503, "node_unavailable"), body)
        self.assertEqual((r.getheader("Retry-After"), r.getheader("X-Tickdb-Owner")), ("1", "b"))
        c.close()

    def test_a_relayed_stream_is_dropped_by_its_node_when_the_relay_goes(self):
        a, b = self.start_pair()
        c, r = self.open_events(a)
        self.events(r, lambda e: e[0] == "ready")
        wait_until(lambda: self.stream_figures(b)["connections"] == 1, 5, "b serves the stream")
        os.kill(a.pid, signal.SIGKILL)
        wait_until(lambda: self.stream_figures(b)["connections"] == 0, 5, "b drops the stream of a killed relay")
        self.assertEqual(self.stream_figures(b)["served_streams"], 0)
        c.close()

    def test_a_relayed_client_that_stops_reading_is_closed_by_the_owner(self):
        # The owner sees the client's pace through the acknowledgements: it conflates, then
        # closes the stream past its subscriptions.max_stall_s, as for a client of its own.
        a, b = self.start_pair(b_extra=["subscriptions.max_stall_s=1"])
        st, body, _ = a.req("POST", "/table", {"name": "big", "node": "b", "fields": [{"name": "s", "type": "str", "size": 200}]})
        self.assertEqual(st, 201, body)
        wait_until(lambda: a.req("GET", "/table/big")[0] == 200, 5, "big known")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", a.port))
        s.sendall(b"GET /table/big/events HTTP/1.1\r\nHost: x\r\n\r\n")
        seen = b""
        while b"event: ready" not in seen:
            chunk = s.recv(4096)
            self.assertTrue(chunk, seen)
            seen += chunk
        payload = {"records": [{"s": "z" * 200} for _ in range(2000)]}
        end = time.time() + 30
        while time.time() < end and self.stream_figures(b)["slow_closes"] == 0:
            self.assertEqual(b.req("POST", "/table/big/records", payload, timeout=30)[0], 201)
            time.sleep(0.05)
        self.assertGreater(self.stream_figures(b)["slow_closes"], 0, "no slow close within 30 s")
        wait_until(lambda: self.stream_figures(b)["connections"] == 0, 5, "b dropped the slow stream")
        wait_until(lambda: self.stream_figures(a)["relayed_streams"] == 0, 5, "a ended the relay")
        self.assertEqual(self.stream_figures(b)["served_streams"], 0)  # b forgot it as it ended it
        self.assertEqual(a.req("GET", "/health")[0], 200)
        # The client reads again: what a held (bounded by b's conflation), then the reason.
        end = time.time() + 20
        while time.time() < end:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            seen += chunk
        s.close()
        tail = seen[-600:].decode("utf-8", "replace")
        self.assertIn("event: error", tail)
        self.assertIn('"code":"slow_consumer"', tail)

    def test_a_table_made_through_a_node_is_there_for_the_next_call_through_it(self):
        # The create's answer waits for the node's directory: a write right after it goes to
        # the table's node, never runs here (which answered 421 under ASan's timing).
        a = ClusterNode("a")
        b = ClusterNode("b", peers=[a.cport])
        self.nodes = [a, b]
        wait_until(lambda: a.peers_up() == {"b"}, 10, "a sees b")
        fields = [{"name": "v", "type": "i32"}]
        for i in range(15):
            st, body, _ = a.req("POST", "/table", {"name": "t%d" % i, "node": "b", "fields": fields})
            self.assertEqual(st, 201, body)
            st, body, r = a.req("POST", "/table/t%d/records" % i, {"records": [{"v": 1}, {"v": 2}]})
            self.assertEqual((st, r.getheader("X-Tickdb-Owner")), (201, "b"), body)
            st, body, _ = a.rpc("db.create_table", {"name": "r%d" % i, "node": "b", "fields": fields})
            self.assertNotIn("error", body)
            st, body, _ = a.rpc("db.insert", {"table": "r%d" % i, "values": {"v": 3}})
            self.assertNotIn("error", body)
            st, body, _ = a.req("DELETE", "/table/t%d" % i)
            self.assertIn(st, (200, 204), body)
            st, body, _ = a.req("GET", "/table/t%d" % i)
            self.assertEqual((st, body["error"]["code"]), (404, "not_found"), body)

    def test_a_big_answer_comes_back_whole_in_pieces(self):
        a = ClusterNode("a")
        b = ClusterNode("b", peers=[a.cport])
        self.nodes = [a, b]
        wait_until(lambda: a.peers_up() == {"b"}, 10, "a sees b")
        st, body, _ = a.req("POST", "/table", {"name": "wide", "node": "b", "fields": [{"name": "s", "type": "str", "size": 200}]})
        self.assertEqual(st, 201, body)
        for s0 in range(0, 10000, 2500):
            st, _, _ = a.req("POST", "/table/wide/records", {"records": [{"s": ("r%d-" % i) * 20} for i in range(s0, s0 + 2500)]}, timeout=30)
            self.assertEqual(st, 201)
        st, direct, _ = b.req("GET", "/table/wide/records?limit=10000", timeout=30)
        st2, forwarded, r = a.req("GET", "/table/wide/records?limit=10000", timeout=30)
        self.assertEqual((st, st2), (200, 200))
        self.assertGreater(len(json.dumps(direct)), 1 << 20)  # three pieces of 512 KiB
        self.assertEqual(forwarded, direct)
        self.assertEqual(r.getheader("X-Tickdb-Owner"), "b")

    def test_a_module_procedure_runs_on_the_node_of_its_tables(self):
        mod = ["procedures.modules=[" + json.dumps(GAME) + "]"]
        a = ClusterNode("a", extra=mod)
        b = ClusterNode("b", peers=[a.cport], extra=mod)
        self.nodes = [a, b]
        wait_until(lambda: a.peers_up() == {"b"}, 10, "a sees b")
        st, out, _ = b.rpc("setup", {})  # players and entities live on b
        self.assertEqual(st, 200, out)
        self.assertNotIn("error", out)
        wait_until(lambda: a.req("GET", "/table/entities")[0] == 200, 5, "a knows entities")
        st, p, _ = a.req("POST", "/table/players/record", {"name": "ana", "score": 5})
        self.assertEqual(st, 201, p)
        # Asked of a, spawn finds its tables on b as it runs: rolled back on a, run on b.
        st, out, _ = a.rpc("spawn", {"owner": p["id"], "n": 25})
        self.assertEqual(st, 200, out)
        self.assertNotIn("error", out)
        self.assertEqual(len(b.req("GET", "/table/entities/records?limit=1000")[1]["records"]), 25)
        self.assertEqual([t["name"] for t in a.req("GET", "/tables")[1]["tables"]], [])
        st, out, _ = a.rpc("leaderboard", {"k": 3})
        self.assertNotIn("error", out)
        # A procedure over tables of two nodes is refused and changes nothing.
        make_table(a, "local", "a")
        st, out, _ = a.rpc("db.transaction", {"ops": [
            {"method": "db.insert", "params": {"table": "local", "values": {"v": 1}}},
            {"method": "spawn", "params": {"owner": p["id"], "n": 1}}]})
        self.assertEqual(out["error"]["data"]["code"], "invalid_argument", out)
        self.assertIn("uses tables of the nodes this node, 'b'", out["error"]["message"])
        self.assertEqual(len(b.req("GET", "/table/entities/records?limit=1000")[1]["records"]), 25)
        self.assertEqual(a.req("GET", "/table/local/records")[1]["count"], 0, out)

    def test_a_node_of_another_cluster_is_refused(self):
        a = ClusterNode("a")
        x = ClusterNode("x", peers=[a.cport], extra=['cluster.name="other"'])
        self.nodes = [a, x]
        wait_until(lambda: any("another cluster" in line for line in x.log), 5, "x logs the refusal")
        time.sleep(0.3)  # a bounded look for a join that must not happen
        self.assertEqual(a.peers_up(), set())
        self.assertEqual(x.peers_up(), set())


if __name__ == "__main__":
    SERVER, GAME = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
