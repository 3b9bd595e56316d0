#!/usr/bin/env python3
"""Black-box tests of queries over HTTP (issue 12): GET /table/{name}/records with filter,
order, select, cursor, count and explain; POST /table/{name}/query; db.list and db.query over
/rpc; X-Tickdb-Version; the errors a client sees. The engine's exactness is proven by the
differential unit test (tests/core/query_test.cpp); this proves the HTTP edge.

usage: query_test.py SERVER_BINARY GAME_MODULE [unittest args]
Only 127.0.0.1 is used; every wait is bounded.
"""
import http.client
import json
import sys
import unittest
import urllib.parse

from tickdb_node import NodeProcess, temp_dir

SERVER = None


class Node(NodeProcess):
    def __init__(self):
        super().__init__(SERVER, "storage.snapshot_interval_s=0", data=temp_dir("tickdb-query-"))

    def req(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data else None), r

    def get(self, **params):
        return self.req("GET", "/table/p/records?" + urllib.parse.urlencode(params))

    def get_full(self, table, **params):
        return self.req("GET", "/table/%s/records?" % table + urllib.parse.urlencode(params))

    def get_table(self, table, **params):
        st, body, _ = self.get_full(table, **params)
        assert st == 200, body
        return body

    def rpc(self, method, params):
        st, out, r = self.req("POST", "/rpc", {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        return out, r


class Queries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.n = Node()
        n = cls.n
        assert n.req("POST", "/type", {"name": "vec2", "fields": [{"name": "x", "type": "f32"},
                                                                  {"name": "y", "type": "f32"}]})[0] == 201
        assert n.req("POST", "/table", {"name": "p", "fields": [
            {"name": "hp", "type": "i32"}, {"name": "team", "type": "str", "size": 8},
            {"name": "pos", "type": "vec2"}, {"name": "score", "type": "u64"}]})[0] == 201
        teams = ["red", "blue", "green", "été vu"]
        cls.recs = [{"hp": (i * 37) % 101, "team": teams[i % 4], "pos": {"x": i / 4, "y": -i},
                     "score": (i * 7919) % 1000 + (2 ** 63 if i % 10 == 0 else 0)} for i in range(300)]
        st, body, _ = n.req("POST", "/table/p/records", {"records": cls.recs})
        assert st == 201, body
        for i, r in enumerate(cls.recs):
            r["id"] = i + 1

    @classmethod
    def tearDownClass(cls):
        cls.n.stop()

    def expect(self, pred, key=None, reverse=False):
        out = [r for r in self.recs if pred(r)]
        if key:
            out.sort(key=lambda r: r["id"])
            out.sort(key=key, reverse=reverse)
        return out

    def test_filter_order_select_and_cursor_over_the_url(self):
        # '+' and %20 are spaces; the non-ASCII literal arrives as UTF-8.
        want = self.expect(lambda r: r["hp"] < 50 and r["team"] in ("red", "été vu"), key=lambda r: -r["score"])
        got, params = [], {"filter": 'hp < 50 && team in ("red", "été vu")', "order": "-score",
                           "select": "score,pos.x", "limit": 7}
        versions = set()
        for _ in range(100):
            st, body, r = self.n.get(**params)
            self.assertEqual(st, 200, body)
            versions.add(r.getheader("X-Tickdb-Version"))
            self.assertIsNone(body["total"])  # count=none by default with a filter
            self.assertIsNone(body["next_after"])  # not the id order
            got += body["records"]
            if body["next_cursor"] is None:
                break
            self.assertEqual(body["count"], 7)
            params["cursor"] = body["next_cursor"]
        self.assertEqual(got, [{"id": r["id"], "score": r["score"], "pos": {"x": r["pos"]["x"]}} for r in want])
        self.assertEqual(len(versions), 1)
        self.assertTrue(all(v and v.isdigit() for v in versions))

    def test_json_form_in_the_url_and_in_a_body_count_and_explain(self):
        f = ["&&", ["<", "hp", {"field": "pos.x"}], ["!in", "team", ["blue"]], ["^=", "team", "gr"]]
        want = self.expect(lambda r: r["hp"] < r["pos"]["x"] and r["team"] != "blue" and r["team"].startswith("gr"))
        self.assertTrue(want)
        st, body, _ = self.n.get(filter=json.dumps(f), count="exact", explain="true", limit=1000)
        self.assertEqual((st, body["total"], [r["id"] for r in body["records"]]), (200, len(want), [r["id"] for r in want]))
        self.assertEqual(body["plan"]["index"], None)
        self.assertEqual(body["plan"]["scanned"], 300 + 300)  # the page's walk and the exact count
        st, body2, r = self.n.req("POST", "/table/p/query", {"filter": f, "count": "exact", "limit": 1000})
        self.assertEqual((st, body2["records"], body2["total"]), (200, body["records"], len(want)))
        self.assertIsNotNone(r.getheader("X-Tickdb-Version"))
        # A filter too long for a URL fits in a body.
        long_f = " || ".join("hp = %d" % i for i in range(60)) + " || team ~ \"" + "x" * 4000 + "\""
        st, body, _ = self.n.get(filter=long_f)
        self.assertEqual((st, body["error"]["code"]), (400, "invalid_argument"))
        self.assertIn("longer than 4096 bytes", body["error"]["message"])
        st, body, _ = self.n.req("POST", "/table/p/query", {"filter": long_f, "count": "exact"})
        self.assertEqual((st, body["total"]), (200, len(self.expect(lambda r: r["hp"] < 60))))

    def test_default_order_pages_by_after_and_cursor_and_offset(self):
        st, p1, _ = self.n.get(limit=100)
        self.assertEqual((p1["total"], p1["next_after"], len(p1["records"])), (300, 100, 100))
        st, p2, _ = self.n.get(limit=100, after=p1["next_after"])
        st, p2c, _ = self.n.get(limit=100, cursor=p1["next_cursor"])
        self.assertEqual(p2["records"], p2c["records"])
        self.assertEqual(p2["records"][0]["id"], 101)
        st, last, _ = self.n.get(limit=100, offset=250)
        self.assertEqual((len(last["records"]), last["next_after"], last["next_cursor"]), (50, None, None))
        st, d, _ = self.n.get(order="-id", limit=3, filter="hp >= 100")
        self.assertEqual([r["id"] for r in d["records"]], [r["id"] for r in self.expect(lambda r: r["hp"] >= 100)][::-1][:3])

    def test_bad_queries_answer_400_with_the_position(self):
        cases = [
            ({"filter": "hpp < 5"}, "filter: unknown field 'hpp' at 1:1"),
            ({"filter": "hp < 5 &&\nteam = 3"}, "filter: str field 'team' cannot be compared with 3 at 2:1"),
            ({"filter": "hp <"}, "filter: expected a value (a number, a string, true, false or a field) at 1:5"),
            ({"filter": '["<", "hp"]'}, "filter: '<' takes a field and a value at "),
            ({"filter": "[1, 2"}, "filter: "),
            ({"filter": ""}, "filter: the filter is empty"),
            ({"filter": "hp = 2147483648"}, "out of range for i32 field 'hp'"),
            ({"order": "-nope"}, "order: field 'nope' does not exist in table 'p'"),
            ({"order": "a,b,c,d,e"}, "order: at most 4 fields"),
            ({"select": "hp,nope"}, "select: field 'nope' does not exist in table 'p'"),
            ({"cursor": "zzzz"}, "cursor: not a cursor of this query"),
            ({"limit": "0"}, "limit must be 1..10000"),
            ({"limit": "x"}, "limit must be an unsigned integer"),
            ({"offset": "100001"}, "offset must be at most 100000"),
            ({"after": "3", "order": "-hp"}, "'after' pages in id order only"),
            ({"count": "maybe"}, "count: expected \"exact\" or \"none\""),
            ({"explain": "1"}, "explain: expected true or false"),
            ({"colour": "red"}, "unknown parameter 'colour'"),
        ]
        for params, msg in cases:
            st, body, _ = self.n.get(**params)
            self.assertEqual(st, 400, (params, body))
            self.assertEqual(body["error"]["code"], "invalid_argument")
            self.assertIn(msg, body["error"]["message"], params)
        # A cursor of another query is refused.
        st, body, _ = self.n.get(order="-hp", limit=2)
        st, body, _ = self.n.get(order="hp", limit=2, cursor=body["next_cursor"])
        self.assertEqual(st, 400)
        self.assertIn("cursor: it belongs to another filter, order or select", body["error"]["message"])
        st, body, _ = self.n.req("POST", "/table/p/query", "[1]")
        self.assertEqual((st, body["error"]["code"]), (400, "invalid_argument"))
        st, body, _ = self.n.req("POST", "/table/p/query", "{")
        self.assertEqual((st, body["error"]["code"]), (400, "bad_json"))
        st, body, _ = self.n.req("GET", "/table/nope/records?filter=a%3D1")
        self.assertEqual((st, body["error"]["code"]), (404, "not_found"))

    def test_rpc_db_list_and_db_query(self):
        out, _ = self.n.rpc("db.query", {"table": "p", "filter": ["=", "team", "blue"], "order": ["-hp", "id"],
                                         "select": ["hp"], "limit": 5})
        want = self.expect(lambda r: r["team"] == "blue", key=lambda r: -r["hp"])[:5]
        self.assertEqual(out["result"]["records"], [{"id": r["id"], "hp": r["hp"]} for r in want])
        out2, _ = self.n.rpc("db.list", {"table": "p", "filter": 'team = "blue"', "order": "-hp,id",
                                         "select": "hp", "limit": 5})
        self.assertEqual(out2["result"]["records"], out["result"]["records"])
        out3, _ = self.n.rpc("db.list", {"table": "p", "filter": 'team = "blue"', "order": "-hp,id",
                                         "select": "hp", "limit": 5, "cursor": out2["result"]["next_cursor"]})
        self.assertEqual(out3["result"]["records"][0]["id"],
                         self.expect(lambda r: r["team"] == "blue", key=lambda r: -r["hp"])[5]["id"])
        out, _ = self.n.rpc("db.query", {"table": "p", "filter": "hpp = 1"})
        self.assertEqual(out["error"]["data"]["code"], "invalid_argument")
        self.assertIn("db.query: filter: unknown field 'hpp' at 1:1", out["error"]["message"])
        out, _ = self.n.rpc("db.list", {"table": "p", "bogus": 1})
        self.assertIn("unknown parameter 'bogus'", out["error"]["message"])

    def test_the_version_header_moves_with_writes(self):
        st, _, r1 = self.n.get(limit=1)
        st, body, _ = self.n.req("POST", "/table/p/record", {"hp": 5000, "team": "x"})
        self.assertEqual(st, 201)
        st, page, r2 = self.n.get(filter="hp = 5000", count="exact")
        self.assertGreater(int(r2.getheader("X-Tickdb-Version")), int(r1.getheader("X-Tickdb-Version")))
        self.assertEqual((page["total"], page["records"][0]["team"]), (1, "x"))
        self.assertEqual(self.n.req("DELETE", "/table/p/record/%d" % body["id"])[0], 204)
        st, page, _ = self.n.get(filter="hp = 5000", count="exact")
        self.assertEqual(page["total"], 0)


class Indexes(unittest.TestCase):
    """Indexes over HTTP: created, listed, described, used by the planner, unique constraints."""

    @classmethod
    def setUpClass(cls):
        cls.n = Node()

    @classmethod
    def tearDownClass(cls):
        cls.n.stop()

    def test_index_lifecycle_and_unique_constraints(self):
        n = self.n
        st, t, _ = n.req("POST", "/table", {"name": "u", "fields": [
            {"name": "name", "type": "str", "size": 12}, {"name": "team", "type": "u32"}, {"name": "score", "type": "i64"}],
            "indexes": [{"name": "u_name", "fields": ["name"], "type": "hash", "unique": True}]})
        self.assertEqual(st, 201, t)
        self.assertEqual([(i["name"], i["type"], i["unique"], i["auto"]) for i in t["indexes"]],
                         [("u_name", "hash", True, False)])
        st, ix, _ = n.req("POST", "/table/u/index", {"name": "u_team_score", "fields": ["team", "score"]})
        self.assertEqual((st, ix["table"], ix["fields"], ix["type"], ix["unique"], ix["entries"]),
                         (201, "u", ["team", "score"], "ordered", False, 0))
        for i in range(200):
            st, body, _ = n.req("POST", "/table/u/record", {"name": "n%d" % i, "team": i % 4, "score": (i * 37) % 101})
            self.assertEqual(st, 201, body)
        st, lst, _ = n.req("GET", "/table/u/indexes")
        self.assertEqual({i["name"]: i["entries"] for i in lst["indexes"]}, {"u_name": 200, "u_team_score": 200})
        self.assertTrue(all(i["bytes"] > 0 for i in lst["indexes"]))
        # A duplicate key is refused, naming the index and both ids; nothing changes.
        st, body, _ = n.req("POST", "/table/u/record", {"name": "n7"})
        self.assertEqual((st, body["error"]["code"]), (409, "unique_violation"))
        self.assertIn("u_name", body["error"]["message"])
        self.assertIn("8", body["error"]["message"])
        st, body, _ = n.req("PUT", "/table/u/record/1", {"name": "n2"})
        self.assertEqual((st, body["error"]["code"]), (409, "unique_violation"))
        st, body, _ = n.req("POST", "/table/u/records", {"records": [{"name": "fresh"}, {"name": "fresh"}]})
        self.assertEqual((st, body["error"]["code"]), (409, "unique_violation"))
        self.assertEqual(n.get_table("u", filter='name = "fresh"', count="exact")["total"], 0)
        # A transaction may swap two unique values.
        out, _ = n.rpc("db.transaction", {"ops": [
            {"method": "db.update", "params": {"table": "u", "id": 1, "values": {"name": "n1"}}},
            {"method": "db.update", "params": {"table": "u", "id": 2, "values": {"name": "n0"}}}]})
        self.assertIn("result", out, out)
        self.assertEqual(n.get_table("u", filter='name = "n0"')["records"][0]["id"], 2)
        # A unique index over duplicates is refused.
        st, body, _ = n.req("POST", "/table/u/index", {"name": "u_team_unique", "fields": ["team"], "unique": True})
        self.assertEqual((st, body["error"]["code"]), (409, "unique_violation"))
        self.assertIn("u_team_unique", body["error"]["message"])
        # Bad definitions.
        for bad, msg in [({"name": "x", "fields": []}, ""), ({"name": "x", "fields": ["nope"]}, "nope"),
                         ({"name": "x", "fields": ["a", "b", "c", "d", "e"]}, ""),
                         ({"name": "x", "fields": ["team"], "type": "btree"}, "type"),
                         ({"name": "1x", "fields": ["team"]}, ""), ({"fields": ["team"]}, "name"),
                         ({"name": "x", "fields": ["team"], "colour": 1}, "colour")]:
            st, body, _ = n.req("POST", "/table/u/index", bad)
            self.assertEqual((st, body["error"]["code"]), (400, "invalid_argument"), bad)
            self.assertIn(msg, body["error"]["message"])
        st, body, _ = n.req("POST", "/table/u/index", {"name": "u_name", "fields": ["team"]})
        self.assertEqual((st, body["error"]["code"]), (409, "already_exists"))
        st, body, _ = n.req("DELETE", "/table/u/field/team")
        self.assertEqual((st, body["error"]["code"]), (409, "conflict"))
        self.assertIn("u_team_score", body["error"]["message"])
        # The planner uses the indexes; the answers are the scan's.
        st, page, _ = n.get_full("u", filter='name = "n42"', explain="true")
        self.assertEqual((page["plan"]["index"], page["plan"]["scanned"], [r["name"] for r in page["records"]]),
                         ("u_name", 1, ["n42"]))
        st, page, _ = n.get_full("u", filter="team = 2 && score >= 50", order="score", limit=5, explain="true")
        self.assertEqual(page["plan"]["index"], "u_team_score")
        self.assertLessEqual(page["plan"]["scanned"], 10)  # the page, one more, and ties at its end
        want = sorted([(s, i + 1) for i in range(200) for s in [(i * 37) % 101] if i % 4 == 2 and s >= 50])[:5]
        self.assertEqual([(r["score"], r["id"]) for r in page["records"]], want)
        # Dropping.
        self.assertEqual(n.req("DELETE", "/table/u/index/u_team_score")[0], 204)
        st, body, _ = n.req("DELETE", "/table/u/index/u_team_score")
        self.assertEqual((st, body["error"]["code"]), (404, "not_found"))
        st, page, _ = n.get_full("u", filter="team = 2 && score >= 50", order="score", limit=5, explain="true")
        self.assertEqual((page["plan"]["index"], [(r["score"], r["id"]) for r in page["records"]]), (None, want))
        # Over RPC.
        out, _ = n.rpc("db.create_index", {"table": "u", "name": "u_score", "fields": ["score"], "type": "ordered"})
        self.assertEqual(out["result"]["entries"], 200)
        out, _ = n.rpc("db.create_index", {"table": "u", "name": "u_score2", "fields": ["score"], "unique": True})
        self.assertEqual(out["error"]["data"]["code"], "unique_violation")
        out, _ = n.rpc("db.drop_index", {"table": "u", "name": "u_score"})
        self.assertEqual(out["result"], True)

    def test_relations_get_an_automatic_index(self):
        n = self.n
        for name, fields in [("owners", [{"name": "x", "type": "i32"}]), ("items", [{"name": "owner", "type": "u64"}])]:
            self.assertEqual(n.req("POST", "/table", {"name": name, "fields": fields})[0], 201)
        st, rel, _ = n.req("POST", "/relation", {"from_table": "items", "from_field": "owner", "to_table": "owners",
                                                 "on_delete": "cascade"})
        self.assertEqual(st, 201, rel)
        st, lst, _ = n.req("GET", "/table/items/indexes")
        autos = [i for i in lst["indexes"] if i["auto"]]
        self.assertEqual([(i["fields"], i["type"]) for i in autos], [(["owner"], "ordered")])
        st, body, _ = n.req("DELETE", "/table/items/index/" + autos[0]["name"])
        self.assertEqual((st, body["error"]["code"]), (409, "conflict"))
        self.assertEqual(n.req("POST", "/table/owners/record", {"x": 1})[0], 201)
        for _ in range(3):
            self.assertEqual(n.req("POST", "/table/items/record", {"owner": 1})[0], 201)
        st, page, _ = n.get_full("items", filter="owner = 1", explain="true", count="exact")
        self.assertEqual((page["plan"]["index"], page["total"]), (autos[0]["name"], 3))
        self.assertEqual(n.req("DELETE", "/table/owners/record/1")[0], 204)
        self.assertEqual(n.get_table("items", count="exact")["total"], 0)
        self.assertEqual(n.req("DELETE", "/relation/%d" % rel["id"])[0], 204)
        self.assertEqual([i for i in n.req("GET", "/table/items/indexes")[1]["indexes"] if i["auto"]], [])

class IndexDurability(unittest.TestCase):
    """Index definitions survive a graceful restart (snapshot) and a crash (log replay)."""

    def test_indexes_come_back_after_restart_and_crash(self):
        import signal
        data = temp_dir("tickdb-query-dur-")
        n = NodeProcess(SERVER, "storage.snapshot_interval_s=0", data=data)
        try:
            n.req = Node.req.__get__(n)
            st, _, _ = n.req("POST", "/table", {"name": "d", "fields": [{"name": "k", "type": "u32"}, {"name": "s", "type": "str", "size": 4}],
                                                "indexes": [{"name": "d_k", "fields": ["k"], "type": "hash", "unique": True}]})
            self.assertEqual(st, 201)
            for i in range(50):
                self.assertEqual(n.req("POST", "/table/d/record", {"k": i, "s": "a"})[0], 201)
            self.assertEqual(n.req("POST", "/table/d/index", {"name": "d_s", "fields": ["s", "k"]})[0], 201)
            self.assertEqual(n.stop(), 0)
            for how in ("graceful", "crash"):
                n = NodeProcess(SERVER, "storage.snapshot_interval_s=0", data=data)
                n.req = Node.req.__get__(n)
                st, lst, _ = n.req("GET", "/table/d/indexes")
                self.assertEqual({i["name"]: (i["entries"], i["unique"]) for i in lst["indexes"]},
                                 {"d_k": (50 + (how == "crash"), True), "d_s": (50 + (how == "crash"), False)}, how)
                st, page, _ = n.req("GET", "/table/d/records?filter=k%3D7&explain=true")
                self.assertEqual((page["plan"]["index"], [r["k"] for r in page["records"]]), ("d_k", [7]))
                st, body, _ = n.req("POST", "/table/d/record", {"k": 7})
                self.assertEqual((st, body["error"]["code"]), (409, "unique_violation"))
                if how == "graceful":
                    # One more acknowledged write, then a crash: the log replays it into the indexes.
                    self.assertEqual(n.req("POST", "/table/d/record", {"k": 1000, "s": "z"})[0], 201)
                    self.assertEqual(n.stop(signal.SIGKILL), -9)
            st, page, _ = n.req("GET", "/table/d/records?filter=" + urllib.parse.quote('s = "z"') + "&explain=true")
            self.assertEqual((page["plan"]["index"], [r["k"] for r in page["records"]]), ("d_s", [1000]))
        finally:
            n.stop()

if __name__ == "__main__":
    SERVER = sys.argv[1]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
