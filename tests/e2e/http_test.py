#!/usr/bin/env python3
"""End-to-end tests: start the built tickdb-server on a free loopback port and speak HTTP to it.

usage: http_test.py SERVER_BINARY GAME_MODULE [unittest args]
Every route of API.md, every error code, a battery of bad input; afterwards the node must
still answer and the data must be unchanged. Only 127.0.0.1 is used.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

from tickdb_node import NodeProcess, temp_dir

SERVER = None
GAME = None


class Node(NodeProcess):
    """A tickdb-server process on a free loopback port."""

    def __init__(self, *sets, config=None, data=None):
        super().__init__(SERVER, *sets, config=config, data=data)

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def req(self, method, path, body=None, headers=None, raw=False):
        c = self.conn()
        h = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        if raw:
            return r.status, data, r
        try:
            return r.status, (json.loads(data) if data else None)
        except ValueError:
            return r.status, data.decode("utf-8", "replace")

    def rpc(self, payload):
        return self.req("POST", "/rpc", payload)


def raw_exchange(port, data, timeout=5):
    """Sends raw bytes, returns everything the server answers until it closes or times out."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


class HttpApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Node("http.max_body_bytes=65536", "procedures.modules=[" + json.dumps(GAME) + "]")
        n = cls.node
        st, _ = n.req("POST", "/type", {"name": "vec3", "fields": [{"name": "x", "type": "f32"}, {"name": "y", "type": "f32"}, {"name": "z", "type": "f32"}]})
        assert st == 201, st

    @classmethod
    def tearDownClass(cls):
        assert cls.node.stop() == 0

    def table(self, name, fields):
        st, body = self.node.req("POST", "/table", {"name": name, "fields": fields})
        self.assertEqual(st, 201, body)
        return body

    # ---- operations ----
    def test_health_and_procedures(self):
        st, body = self.node.req("GET", "/health")
        self.assertEqual(st, 200)
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["node"], "tickdb")
        self.assertGreaterEqual(body["tick"], 0)
        st, procs = self.node.req("GET", "/procedures")
        self.assertEqual(st, 200)
        names = [p["name"] for p in procs]
        for n in ["db.insert", "db.transaction", "spawn", "step", "leaderboard"]:
            self.assertIn(n, names)
        st, rpc = self.node.rpc({"jsonrpc": "2.0", "id": 1, "method": "db.procedures", "params": {}})
        self.assertEqual(rpc["result"], procs)

    def test_metrics_stats_openapi(self):
        self.node.req("GET", "/health")
        st, text = self.node.req("GET", "/metrics")
        self.assertEqual(st, 200)
        for k in ["tickdb_http_requests_total{", "tickdb_ticks_total", "tickdb_tick_duration_seconds", "tickdb_table_records"]:
            self.assertIn(k, text)
        st, stats = self.node.req("GET", "/stats")
        self.assertEqual(st, 200)
        self.assertIn("ticks", stats["tick"])
        st, doc = self.node.req("GET", "/openapi.json")
        self.assertEqual(st, 200)
        self.assertEqual(doc["openapi"][:2], "3.")
        api_routes = {
            "/type": ["post"], "/types": ["get"], "/type/{name}": ["get", "delete"],
            "/table": ["post"], "/tables": ["get"], "/table/{name}": ["get", "delete"],
            "/table/{name}/field": ["post"], "/table/{name}/field/{field}": ["delete"],
            "/relation": ["post"], "/relations": ["get"], "/relation/{id}": ["delete"],
            "/table/{name}/record": ["post"], "/table/{name}/record/{id}": ["get", "put", "patch", "delete"],
            "/table/{name}/records": ["get", "post"], "/rpc": ["post"], "/health": ["get"], "/metrics": ["get"],
            "/stats": ["get"], "/procedures": ["get"], "/openapi.json": ["get"],
        }
        for path, methods in api_routes.items():
            self.assertIn(path, doc["paths"])
            for m in methods:
                self.assertIn(m, doc["paths"][path], path)

    # ---- types ----
    def test_types(self):
        st, t = self.node.req("POST", "/type", {"name": "rgb", "fields": [{"name": "r", "type": "u8"}, {"name": "g", "type": "u8"}, {"name": "b", "type": "u8"}]})
        self.assertEqual(st, 201)
        self.assertEqual(t["size"], 3)
        self.assertEqual(t["fields"][1], {"name": "g", "type": "u8", "offset": 1, "size": 1})
        self.assertEqual(self.node.req("POST", "/type", {"name": "rgb", "fields": []})[0], 409)
        st, all_types = self.node.req("GET", "/types")
        self.assertIn("rgb", [x["name"] for x in all_types["types"]])
        self.assertEqual(self.node.req("GET", "/type/rgb")[0], 200)
        self.assertEqual(self.node.req("GET", "/type/nope")[1]["error"]["code"], "not_found")
        self.table("painted", [{"name": "c", "type": "rgb"}])
        st, body = self.node.req("DELETE", "/type/rgb")
        self.assertEqual((st, body["error"]["code"]), (409, "conflict"))
        self.assertEqual(self.node.req("DELETE", "/table/painted")[0], 204)
        self.assertEqual(self.node.req("DELETE", "/type/rgb")[0], 204)
        self.assertEqual(self.node.req("DELETE", "/type/rgb")[0], 404)

    # ---- tables and fields ----
    def test_tables_and_fields(self):
        t = self.table("heroes", [{"name": "hp", "type": "i32"}, {"name": "pos", "type": "vec3"}, {"name": "name", "type": "str", "size": 16}])
        self.assertEqual(t, {"name": "heroes", "record_size": 32, "count": 0, "fields": [
            {"name": "hp", "type": "i32", "offset": 0, "size": 4},
            {"name": "pos", "type": "vec3", "offset": 4, "size": 12},
            {"name": "name", "type": "str", "offset": 16, "size": 16}], "indexes": []})
        self.assertEqual(self.node.req("POST", "/table", {"name": "heroes", "fields": []})[0], 409)
        for bad in [{"name": "1bad", "fields": []}, {"name": "x", "fields": [{"name": "id", "type": "u8"}]},
                    {"name": "x", "fields": [{"name": "s", "type": "str", "size": 5000}]},
                    {"fields": []}, [1, 2]]:
            st, body = self.node.req("POST", "/table", bad)
            self.assertEqual(st, 400, bad)
            self.assertEqual(body["error"]["code"], "invalid_argument")
        st, body = self.node.req("POST", "/table", {"name": "x", "fields": [{"name": "a", "type": "nope"}]})
        self.assertEqual((st, body["error"]["code"]), (404, "not_found"))  # a type that does not exist
        self.node.req("POST", "/table/heroes/record", {"hp": 5, "name": "ana"})
        st, t2 = self.node.req("POST", "/table/heroes/field", {"name": "score", "type": "u64", "default": 7})
        self.assertEqual(st, 201)
        self.assertEqual(t2["fields"][-1]["name"], "score")
        self.assertEqual(self.node.req("GET", "/table/heroes/record/1")[1]["score"], 7)
        st, t3 = self.node.req("DELETE", "/table/heroes/field/hp")
        self.assertEqual(st, 200)
        self.assertNotIn("hp", [f["name"] for f in t3["fields"]])
        self.assertEqual(self.node.req("GET", "/table/heroes/record/1")[1]["name"], "ana")
        self.assertEqual(self.node.req("DELETE", "/table/heroes/field/nope")[0], 404)
        self.assertEqual(self.node.req("GET", "/table/nope")[0], 404)
        st, tables = self.node.req("GET", "/tables")
        self.assertIn("heroes", [x["name"] for x in tables["tables"]])
        self.assertEqual(self.node.req("DELETE", "/table/heroes")[0], 204)
        self.assertEqual(self.node.req("DELETE", "/table/heroes")[0], 404)

    # ---- relations ----
    def test_relations(self):
        self.table("owners", [{"name": "n", "type": "u8"}])
        self.table("things", [{"name": "owner", "type": "u64"}])
        o = self.node.req("POST", "/table/owners/record", {})[1]["id"]
        st, rel = self.node.req("POST", "/relation", {"from_table": "things", "from_field": "owner", "to_table": "owners", "on_delete": "cascade"})
        self.assertEqual(st, 201)
        self.assertEqual(rel["on_delete"], "cascade")
        st, body = self.node.req("POST", "/table/things/record", {"owner": 999})
        self.assertEqual((st, body["error"]["code"]), (409, "foreign_key_violation"))
        self.assertEqual(self.node.req("POST", "/table/things/record", {"owner": o})[0], 201)
        self.assertEqual(self.node.req("DELETE", "/table/owners")[1]["error"]["code"], "conflict")
        st, rels = self.node.req("GET", "/relations")
        self.assertIn(rel, rels["relations"])
        self.assertEqual(self.node.req("DELETE", "/table/owners/record/%d" % o)[0], 204)
        self.assertEqual(self.node.req("GET", "/table/things/records")[1]["total"], 0)
        self.assertEqual(self.node.req("DELETE", "/relation/%d" % rel["id"])[0], 204)
        self.assertEqual(self.node.req("DELETE", "/relation/%d" % rel["id"])[0], 404)
        self.assertEqual(self.node.req("DELETE", "/relation/abc")[0], 400)
        st, body = self.node.req("POST", "/relation", {"from_table": "things", "from_field": "nope", "to_table": "owners"})
        self.assertEqual(st, 404)

    # ---- records ----
    def test_records(self):
        self.table("recs", [{"name": "hp", "type": "i8"}, {"name": "tag", "type": "str", "size": 4}, {"name": "big", "type": "u64"}])
        st, r = self.node.req("POST", "/table/recs/record", {"hp": 100, "tag": "abcd", "big": 18446744073709551615})
        self.assertEqual(st, 201)
        self.assertEqual(r, {"id": 1, "hp": 100, "tag": "abcd", "big": 18446744073709551615})
        self.assertEqual(self.node.req("GET", "/table/recs/record/1")[1], r)
        st, r2 = self.node.req("PUT", "/table/recs/record/1", {"hp": 90})
        self.assertEqual((st, r2["hp"], r2["tag"]), (200, 90, "abcd"))
        st, r3 = self.node.req("PATCH", "/table/recs/record/1", {"tag": "x"})
        self.assertEqual((st, r3["tag"], r3["hp"]), (200, "x", 90))
        for bad in [{"hp": 128}, {"hp": "a"}, {"hp": 1.5}, {"nope": 1}, {"tag": "abcde"}, {"big": -1}, {"big": 18446744073709551616}, [1]]:
            st, body = self.node.req("POST", "/table/recs/record", bad)
            self.assertEqual((st, body["error"]["code"]), (400, "invalid_argument"), bad)
        self.assertEqual(self.node.req("PUT", "/table/recs/record/1", {"id": 2})[0], 400)
        self.assertEqual(self.node.req("PUT", "/table/recs/record/99", {"hp": 1})[0], 404)
        self.assertEqual(self.node.req("POST", "/table/recs/record", {"id": 1})[1]["error"]["code"], "already_exists")
        self.assertEqual(self.node.req("GET", "/table/recs/record/99")[0], 404)
        self.assertEqual(self.node.req("GET", "/table/recs/record/-1")[0], 400)
        self.assertEqual(self.node.req("GET", "/table/nope/record/1")[0], 404)
        self.assertEqual(self.node.req("DELETE", "/table/recs/record/1")[0], 204)
        self.assertEqual(self.node.req("DELETE", "/table/recs/record/1")[0], 404)
        # ids are never reused
        self.assertEqual(self.node.req("POST", "/table/recs/record", {})[1]["id"], 2)

    def test_pagination_and_bulk(self):
        self.table("pages", [{"name": "v", "type": "u32"}])
        st, body = self.node.req("POST", "/table/pages/records", {"records": [{"v": i} for i in range(250)]})
        self.assertEqual(st, 201)
        self.assertEqual(body["ids"], list(range(1, 251)))
        st, page = self.node.req("GET", "/table/pages/records")
        self.assertEqual((page["count"], page["total"], page["next_after"]), (100, 250, 100))
        st, page = self.node.req("GET", "/table/pages/records?limit=100&after=200")
        self.assertEqual((page["count"], page["next_after"], page["records"][0]["id"]), (50, None, 201))
        st, page = self.node.req("GET", "/table/pages/records?limit=2&offset=10")
        self.assertEqual([r["id"] for r in page["records"]], [11, 12])
        for q in ["limit=0", "limit=10001", "limit=-1", "limit=abc", "after=-1", "offset=-5", "bogus=1", "limit=1&limit=2"]:
            self.assertEqual(self.node.req("GET", "/table/pages/records?" + q)[0], 400, q)
        # A bulk insert is atomic: one bad record, nothing inserted.
        st, body = self.node.req("POST", "/table/pages/records", {"records": [{"v": 1}, {"v": -1}]})
        self.assertEqual(st, 400)
        self.assertEqual(self.node.req("GET", "/table/pages/records")[1]["total"], 250)
        self.assertEqual(self.node.req("POST", "/table/pages/records", {"rows": []})[0], 400)

    # ---- JSON-RPC ----
    def test_rpc(self):
        self.table("rpc_t", [{"name": "hp", "type": "i32"}])
        st, r = self.node.rpc({"jsonrpc": "2.0", "id": 1, "method": "db.insert", "params": {"table": "rpc_t", "values": {"hp": 100}}})
        self.assertEqual((st, r), (200, {"jsonrpc": "2.0", "id": 1, "result": {"id": 1, "hp": 100}}))
        st, r = self.node.rpc([{"jsonrpc": "2.0", "id": "a", "method": "db.get", "params": {"table": "rpc_t", "id": 1}},
                               {"jsonrpc": "2.0", "method": "db.insert", "params": {"table": "rpc_t", "values": {}}},
                               {"jsonrpc": "2.0", "id": 3, "method": "nope"}])
        self.assertEqual(len(r), 2)
        self.assertEqual(r[0]["result"]["hp"], 100)
        self.assertEqual(r[1]["error"]["code"], -32601)
        st, r = self.node.req("POST", "/rpc", [{"jsonrpc": "2.0", "method": "db.procedures", "params": {}}], raw=True)[:2]
        self.assertEqual(st, 204)
        self.assertEqual(self.node.req("POST", "/rpc", "{bad")[1]["error"]["code"], -32700)
        self.assertEqual(self.node.rpc([])[1]["error"]["code"], -32600)
        self.assertEqual(self.node.rpc({"id": 1, "method": "db.get"})[1]["error"]["code"], -32600)
        self.assertEqual(self.node.rpc([1])[1][0]["error"]["code"], -32600)
        self.assertEqual(self.node.rpc({"jsonrpc": "2.0", "id": 1, "method": "db.get", "params": [1]})[1]["error"]["code"], -32602)
        self.assertEqual(self.node.rpc({"jsonrpc": "2.0", "id": 1, "method": "db.get", "params": {"table": "rpc_t"}})[1]["error"]["code"], -32602)
        r = self.node.rpc({"jsonrpc": "2.0", "id": 1, "method": "db.get", "params": {"table": "rpc_t", "id": 99}})[1]
        self.assertEqual((r["error"]["code"], r["error"]["data"]["code"]), (-32000, "not_found"))
        ops = [{"method": "db.insert", "params": {"table": "rpc_t", "values": {"hp": 1}}},
               {"method": "db.insert", "params": {"table": "rpc_t", "values": {"hp": "x"}}}]
        before = self.node.req("GET", "/table/rpc_t/records")[1]
        r = self.node.rpc({"jsonrpc": "2.0", "id": 5, "method": "db.transaction", "params": {"ops": ops}})[1]
        self.assertIn("error", r)
        self.assertEqual(self.node.req("GET", "/table/rpc_t/records")[1], before)
        ops.pop()
        fast = lambda: self.node.req("GET", "/stats")[1]["rpc_fast_transactions"]
        answered = fast()["answered"]
        r = self.node.rpc({"jsonrpc": "2.0", "id": 6, "method": "db.transaction", "params": {"ops": ops}})[1]
        self.assertEqual(r["result"][0]["hp"], 1)
        self.assertEqual(fast()["answered"], answered + 1)  # read straight into records
        # A used id: the fast run gives up, the general path answers, nothing of it is kept.
        used = r["result"][0]["id"]
        ops = [{"method": "db.insert", "params": {"table": "rpc_t", "values": {"hp": 2}}},
               {"method": "db.insert", "params": {"table": "rpc_t", "values": {"id": used}}}]
        before = self.node.req("GET", "/table/rpc_t/records")[1]
        r = self.node.rpc({"jsonrpc": "2.0", "id": 7, "method": "db.transaction", "params": {"ops": ops}})[1]
        self.assertEqual((r["id"], r["error"]["data"]["code"]), (7, "already_exists"))
        self.assertEqual(self.node.req("GET", "/table/rpc_t/records")[1], before)
        self.assertGreaterEqual(fast()["fell_back"], 1)

    def test_snapshot_and_storage_figures(self):
        self.table("snap_t", [{"name": "hp", "type": "i32"}])
        self.node.req("POST", "/table/snap_t/record", {"hp": 3})
        st, r = self.node.req("POST", "/snapshot")
        self.assertEqual(st, 200)
        self.assertEqual(sorted(r), ["bytes", "ms", "path"])
        self.assertTrue(os.path.exists(r["path"]))
        self.assertTrue(r["path"].startswith(self.node.data))
        self.assertGreater(r["bytes"], 0)
        st, r = self.node.rpc({"jsonrpc": "2.0", "id": 1, "method": "db.snapshot", "params": {}})
        self.assertGreater(r["result"]["bytes"], 0)
        r = self.node.rpc({"jsonrpc": "2.0", "id": 2, "method": "db.snapshot", "params": {"x": 1}})[1]
        self.assertEqual(r["error"]["code"], -32602)
        self.assertEqual(self.node.req("POST", "/snapshot", "{bad")[0], 400)
        storage = self.node.req("GET", "/stats")[1]["storage"]
        self.assertEqual(storage["log"]["durability"], "sync")
        self.assertGreater(storage["log"]["fsyncs"], 0)
        self.assertGreaterEqual(storage["snapshot"]["count"], 2)
        self.assertLess(storage["snapshot"]["last"]["age_s"], 60)
        metrics = self.node.req("GET", "/metrics", raw=True)[1].decode()
        for name in ["tickdb_snapshots_total", "tickdb_snapshot_last_age_seconds", "tickdb_snapshot_last_bytes",
                     "tickdb_log_bytes_total", "tickdb_log_fsyncs_total", "tickdb_log_group_max"]:
            self.assertIn(name + " ", metrics)

    def test_cluster(self):
        self.table("cl_t", [{"name": "hp", "type": "i32"}])
        st, c = self.node.req("GET", "/cluster")
        self.assertEqual(st, 200)
        me = c["nodes"][0]
        self.assertEqual((me["name"], me["up"]), (c["node"], True))
        self.assertIn("cl_t", me["tables"])
        # The port it listens on (started with http.port=0), not the configured 0.
        self.assertEqual(me["address"], "127.0.0.1:%d" % self.node.port)

    def test_ids_exhausted_is_507_and_changes_nothing(self):
        self.table("ids_t", [{"name": "hp", "type": "i32"}])
        last = 18446744073709551614  # 18446744073709551615 is reserved: no next id is left after it
        st, r = self.node.req("POST", "/table/ids_t/record", {"id": last, "hp": 1})
        self.assertEqual((st, r["id"]), (201, last))
        st, r = self.node.req("POST", "/table/ids_t/record", {"hp": 2})
        self.assertEqual((st, r["error"]["code"]), (507, "resource_exhausted"))
        self.assertEqual(self.node.req("GET", "/table/ids_t/records")[1]["count"], 1)

    def test_rpc_procedures(self):
        self.assertIn("result", self.node.rpc({"jsonrpc": "2.0", "id": 1, "method": "setup"})[1])
        owner = self.node.req("POST", "/table/players/record", {"name": "ana", "score": 5})[1]["id"]
        r = self.node.rpc({"jsonrpc": "2.0", "id": 2, "method": "spawn", "params": {"owner": owner, "n": 1000}})[1]
        self.assertEqual(r["result"]["spawned"], 1000)
        r = self.node.rpc({"jsonrpc": "2.0", "id": 3, "method": "spawn", "params": {"owner": 9999, "n": 1}})[1]
        self.assertEqual((r["error"]["code"], r["error"]["data"]["code"]), (-32000, "procedure_failed"))
        r = self.node.rpc({"jsonrpc": "2.0", "id": 4, "method": "leaderboard", "params": {"k": 3}})[1]
        self.assertEqual(r["result"][0]["name"], "ana")

    # ---- limits and hostile input ----
    def test_hostile_input_changes_nothing(self):
        self.table("safe", [{"name": "v", "type": "i32"}])
        self.node.req("POST", "/table/safe/records", {"records": [{"v": i} for i in range(10)]})
        before = self.node.req("GET", "/table/safe/records")[1]
        cases = [
            ("POST", "/table/safe/record", "{\"v\": 1", 400),                 # malformed JSON
            ("POST", "/table/safe/record", "", 400),                          # empty body
            ("POST", "/table/safe/record", "[" * 100 + "]" * 100, 400),       # too deep
            ("POST", "/table/safe/record", b'{"v": "\xff\xfe"}', 400),        # invalid UTF-8
            ("POST", "/table/safe/record", {"v": 2 ** 40}, 400),              # out of range
            ("POST", "/table/safe/record", {"v": 1e400}, 400),
            ("POST", "/table/safe/record", "{\"v\": NaN}", 400),
            ("POST", "/table/safe/record", {"v": 1, "v2": 2}, 400),
            ("PUT", "/table/safe", "{}", 405),
            ("GET", "/nope/nope", None, 404),
            ("GET", "/table/safe/record/1/extra", None, 404),
            ("DELETE", "/tables", None, 405),
            ("POST", "/table/%zz/record", "{}", 400),
            ("POST", "/table/safe/record", "x" * 70000, 413),                 # over max_body_bytes
        ]
        for method, path, body, want in cases:
            st, resp = self.node.req(method, path, body)
            self.assertEqual(st, want, (method, path, str(body)[:40]))
            if want != 204:
                self.assertIn("error", resp, (method, path))
        # Raw protocol abuse.
        out = raw_exchange(self.node.port, b"GARBAGE\r\n\r\n")
        self.assertIn(b" 400 ", out.split(b"\r\n")[0])
        out = raw_exchange(self.node.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        self.assertIn(b" 431 ", out.split(b"\r\n")[0])
        self.assertIn(b'"code":"header_too_large"', out)
        out = raw_exchange(self.node.port, b"POST /table/safe/record HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n{")
        self.assertIn(b" 413 ", out.split(b"\r\n")[0])
        # Still answering, data unchanged.
        self.assertEqual(self.node.req("GET", "/health")[0], 200)
        self.assertEqual(self.node.req("GET", "/table/safe/records")[1], before)

    def test_keep_alive_and_pipelining(self):
        self.table("pipe", [{"name": "v", "type": "i32"}])
        reqs = b""
        for i in range(3):
            body = json.dumps({"v": i}).encode()
            reqs += b"POST /table/pipe/record HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        reqs += b"GET /table/pipe/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = raw_exchange(self.node.port, reqs)
        self.assertEqual(out.count(b"HTTP/1.1 201"), 3)
        self.assertEqual(out.count(b"HTTP/1.1 200"), 1)
        self.assertLess(out.index(b'"v":0'), out.index(b'"v":1'))
        last = json.loads(out[out.rindex(b"\r\n\r\n") + 4:])
        self.assertEqual([r["v"] for r in last["records"]], [0, 1, 2])
        c = self.node.conn()
        for _ in range(5):  # one connection, many requests
            c.request("GET", "/health")
            self.assertEqual(c.getresponse().read() != b"", True)
        c.close()


class Limits(unittest.TestCase):
    def test_idle_connections_are_closed(self):
        n = Node("http.timeout_s=1")
        try:
            s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
            t0 = time.time()
            data = s.recv(100)  # we send nothing: the node must close
            self.assertEqual(data, b"")
            self.assertLess(time.time() - t0, 5)
            s.close()
            s = socket.create_connection(("127.0.0.1", n.port), timeout=10)  # a slow request too
            s.sendall(b"GET /health HTTP/1.1\r\nHo")
            self.assertEqual(s.recv(100), b"")
            s.close()
            self.assertEqual(n.req("GET", "/health")[0], 200)
        finally:
            self.assertEqual(n.stop(), 0)

    def test_idempotency_key_applies_a_write_once(self):
        n = Node("cluster.idempotency_ttl_s=60")
        try:
            self.assertEqual(n.req("POST", "/table", {"name": "t", "fields": [{"name": "v", "type": "i32"}]})[0], 201)
            answers = []
            for _ in range(3):  # a client retrying what it thinks was lost
                st, body, r = n.req("POST", "/table/t/record", {"v": 5}, headers={"Idempotency-Key": "order-17"}, raw=True)
                answers.append((st, body, r.getheader("Idempotent-Replayed")))
            self.assertEqual([a[0] for a in answers], [201, 201, 201])
            self.assertEqual(answers[0][1], answers[1][1])
            self.assertEqual([a[2] for a in answers], [None, "true", "true"])
            self.assertEqual(len(n.req("GET", "/table/t/records")[1]["records"]), 1)
            st, body = n.req("POST", "/table/t/record", {"v": 6}, headers={"Idempotency-Key": "order-17"})
            self.assertEqual((st, body["error"]["code"]), (409, "conflict"))
            st, body = n.req("POST", "/table/t/record", {"v": 6}, headers={"Idempotency-Key": "x" * 65})
            self.assertEqual(st, 400)
            self.assertEqual(len(n.req("GET", "/table/t/records")[1]["records"]), 1)
            m = n.req("GET", "/metrics")[1]
            self.assertIn("tickdb_idempotency_replayed_total 2", m)
        finally:
            self.assertEqual(n.stop(), 0)

    def test_auth_token(self):
        n = Node("http.auth_token=s3cret")
        try:
            self.assertEqual(n.req("GET", "/health")[0], 200)
            st, body = n.req("GET", "/tables")
            self.assertEqual((st, body["error"]["code"]), (401, "unauthorized"))
            self.assertEqual(n.req("GET", "/tables", headers={"Authorization": "Bearer wrong"})[0], 401)
            self.assertEqual(n.req("GET", "/tables", headers={"Authorization": "Bearer s3cret"})[0], 200)
            self.assertEqual(n.req("POST", "/rpc", {"jsonrpc": "2.0", "id": 1, "method": "db.procedures"})[0], 401)
            # A token in the URL is never accepted (URLs end up in logs): docs/security.md.
            for path in ("/tables?token=s3cret", "/tables?access_token=s3cret", "/stats?token=s3cret"):
                self.assertEqual(n.req("GET", path)[0], 401, path)
        finally:
            n.stop()

    def test_bad_config_is_refused_naming_the_key(self):
        for s, key in [("http.prot=1", "http.prot"), ("tick.rate_hz=500", "tick.rate_hz"), ("nope.x=1", "nope"),
                       ("storage.durability=maybe", "storage.durability")]:
            p = subprocess.run([SERVER, "--set", s], capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 2, s)
            self.assertIn(key, p.stderr)
        p = subprocess.run([SERVER, "--set", "procedures.modules=[\"/nonexistent/mod.so\"]", "--set", "http.port=0"],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/nonexistent/mod.so", p.stdout + p.stderr)
        p = subprocess.run([SERVER, "--config", "/nonexistent.json"], capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent.json", p.stderr)

    def test_disk_failures_answer_io_error_naming_the_file(self):
        # Tests run as root, whom file modes do not stop: a regular file where a directory
        # should be makes every create under it fail (ENOTDIR) for anyone.
        data = temp_dir()
        n = Node("storage.snapshot_interval_s=0", data=data)
        try:
            self.assertEqual(n.req("POST", "/table", {"name": "t", "fields": [{"name": "v", "type": "i64"}]})[0], 201)
            shutil.rmtree(data)
            with open(data, "w") as f:
                f.write("not a directory")
            st, body = n.req("POST", "/snapshot")
            self.assertEqual((st, body["error"]["code"]), (500, "io_error"), body)
            self.assertIn(data + "/snapshot-", body["error"]["message"])
            self.assertIn("Not a directory", body["error"]["message"])
            r = n.rpc({"jsonrpc": "2.0", "id": 1, "method": "db.snapshot", "params": {}})[1]
            self.assertEqual((r["error"]["code"], r["error"]["data"]["code"]), (-32000, "io_error"), r)
            self.assertEqual(n.req("GET", "/tables")[0], 200)  # reads go on
        finally:
            os.remove(data)
            os.mkdir(data)
            self.assertEqual(n.stop(), 0)
        # At start: a data dir that cannot be created.
        plain = os.path.join(temp_dir(), "plain")
        with open(plain, "w") as f:
            f.write("x")
        p = subprocess.run([SERVER, "--set", "http.port=0", "--set", "storage.data_dir=" + json.dumps(plain + "/data")],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 2)
        self.assertIn("io_error", p.stdout + p.stderr)
        self.assertIn(plain + "/data", p.stdout + p.stderr)
        # --verify names the kind: io_error for a file it cannot read, corruption for a damaged one.
        v = subprocess.run([SERVER, "--verify", plain + ".missing"], capture_output=True, text=True, timeout=20)
        self.assertEqual(v.returncode, 1)
        self.assertIn("io_error", v.stdout)
        v = subprocess.run([SERVER, "--verify", plain], capture_output=True, text=True, timeout=20)
        self.assertEqual(v.returncode, 1)
        self.assertIn("corruption", v.stdout)

    def test_graceful_stop_answers_in_flight(self):
        n = Node("procedures.modules=[" + json.dumps(GAME) + "]")
        n.rpc({"jsonrpc": "2.0", "id": 1, "method": "setup"})
        owner = n.req("POST", "/table/players/record", {"name": "a"})[1]["id"]
        import threading
        result = {}

        def slow():
            result["r"] = n.rpc({"jsonrpc": "2.0", "id": 2, "method": "spawn", "params": {"owner": owner, "n": 2000000}})

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.2)
        rc = n.stop(signal.SIGINT)
        t.join(30)
        self.assertEqual(rc, 0)
        self.assertEqual(result["r"][0], 200)
        self.assertEqual(result["r"][1]["result"]["spawned"], 2000000)


if __name__ == "__main__":
    SERVER, GAME = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
