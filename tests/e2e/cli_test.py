#!/usr/bin/env python3
"""Black-box tests of tickdb-cli (issue 14) against a real tickdb-server: every command family
with --json output checked exactly, the aligned human output, the exit codes (usage 2, server
error 1, unreachable node 3, bad import line 4), TICKDB_URL/TICKDB_TOKEN and --token against
a node with http.auth_token, import of JSON lines and CSV with a bad line (its number
reported, earlier batches in, its batch not), export/import round trips that are exact (u64
near 2^64, floats, UTF-8, composites; 1M records in the release run, 20k under sanitizers),
`watch` printing JSON lines after a write, and the prompt driven through stdin.

usage: cli_test.py CLI_BINARY SERVER_BINARY [unittest args]
Only 127.0.0.1 is used; every wait is bounded (subprocess timeouts, a deadline for watch).
"""
import json
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
import unittest

from tickdb_node import NodeProcess, temp_dir

CLI = None
SERVER = None
BIG = 20000 if os.environ.get("TICKDB_SANITIZE") else 1000000


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKDB_")}
    env.update(extra)
    return env


def cli(*args, url=None, env=None, stdin=None, timeout=120):
    """Runs tickdb-cli; (exit code, stdout, stderr)."""
    argv = [CLI] + (["--url", url] if url else []) + [str(a) for a in args]
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                       env=env if env is not None else clean_env())
    return p.returncode, p.stdout, p.stderr


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = NodeProcess(SERVER, "storage.snapshot_interval_s=0", data=temp_dir("tickdb-cli-"))
        cls.url = "http://127.0.0.1:%d" % cls.node.port

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def ok(self, *args, **kw):
        rc, out, err = cli(*args, url=self.url, **kw)
        self.assertEqual(rc, 0, "tickdb-cli %s: %s%s" % (args, out, err))
        return out

    def js(self, *args, **kw):
        out = self.ok("--json", *args, **kw)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1, out)
        return json.loads(lines[0])

    def fails(self, code, *args, url=None, **kw):
        rc, out, err = cli(*args, url=url or self.url, **kw)
        self.assertEqual(rc, code, "tickdb-cli %s: %s%s" % (args, out, err))
        return err

    # -- schema ------------------------------------------------------------------------------

    def test_schema_commands(self):
        vec = self.js("type", "create", "v3s", "x:f32", "y:f32", "z:f32")
        self.assertEqual(vec, {"name": "v3s", "size": 12, "fields": [
            {"name": "x", "offset": 0, "size": 4, "type": "f32"},
            {"name": "y", "offset": 4, "size": 4, "type": "f32"},
            {"name": "z", "offset": 8, "size": 4, "type": "f32"}]})
        self.assertIn(vec, self.js("type", "list")["types"])
        self.assertEqual(self.js("type", "show", "v3s"), vec)
        t = self.js("table", "create", "schema_t", "hp:i32=100", "name:str16", "pos:v3s")
        self.assertEqual(t, {"count": 0, "fields": [
            {"default": 100, "name": "hp", "offset": 0, "size": 4, "type": "i32"},
            {"name": "name", "offset": 4, "size": 16, "type": "str"},
            {"name": "pos", "offset": 20, "size": 12, "type": "v3s"}],
            "indexes": [], "name": "schema_t", "record_size": 32})
        self.assertEqual(self.js("table", "show", "schema_t"), t)
        self.assertIn(t, self.js("tables")["tables"])
        # The default of hp:i32=100 reached the node.
        self.assertEqual(self.js("insert", "schema_t", "{}")["hp"], 100)
        t2 = self.js("field", "add", "schema_t", "mana:u16=5")
        self.assertEqual(t2["fields"][-1], {"default": 5, "name": "mana", "offset": 32, "size": 2, "type": "u16"})
        self.assertEqual(t2["record_size"], 34)
        self.assertEqual(self.js("get", "schema_t", 1)["mana"], 5)
        self.assertEqual(self.js("field", "remove", "schema_t", "mana")["record_size"], 32)
        err = self.fails(1, "type", "drop", "v3s")  # a table uses it: 409 conflict
        self.assertIn("conflict", err)
        self.assertEqual(self.js("table", "drop", "schema_t"), {"ok": True})
        self.assertEqual(self.js("type", "drop", "v3s"), {"ok": True})
        self.assertIn("not_found", self.fails(1, "table", "show", "schema_t"))

    def test_bad_field_spec_is_a_usage_error(self):
        self.assertIn("str16", self.fails(2, "table", "create", "bad_t", "name:str"))
        self.assertIn("NAME:TYPE", self.fails(2, "table", "create", "bad_t", "hp"))
        self.assertIn("4096", self.fails(2, "table", "create", "bad_t", "s:str5000"))

    # -- records -----------------------------------------------------------------------------

    def test_records(self):
        self.ok("table", "create", "rec_t", "hp:i32", "name:str16", "score:u64")
        r = self.js("insert", "rec_t", '{"hp": 10, "name": "ana", "score": 18446744073709551615}')
        self.assertEqual(r, {"hp": 10, "id": 1, "name": "ana", "score": 18446744073709551615})
        self.assertEqual(self.js("insert", "rec_t", '{"hp":1}', '{"hp":2}'), {"ids": [2, 3]})
        self.assertEqual(self.js("insert", "rec_t", '[{"hp":4}]'), {"ids": [4]})
        self.assertEqual(self.js("get", "rec_t", 1), r)
        self.assertEqual(self.js("update", "rec_t", 1, '{"hp": 9}'),
                         {"hp": 9, "id": 1, "name": "ana", "score": 18446744073709551615})
        self.assertEqual(self.js("delete", "rec_t", 2), {"ok": True})
        self.assertIn("not_found", self.fails(1, "get", "rec_t", 2))
        err = self.fails(1, "insert", "rec_t", '{"hp": "x"}')
        self.assertIn("invalid_argument", err)
        self.assertIn("not valid JSON", self.fails(2, "insert", "rec_t", "{hp:"))
        self.assertEqual(self.js("insert", "rec_t", "-", stdin='{"hp": 77}')["hp"], 77)

    def test_list_query_and_paging(self):
        self.ok("table", "create", "page_t", "hp:i32", "team:str8")
        recs = [{"hp": i, "team": "red" if i % 2 else "blue"} for i in range(25)]
        self.assertEqual(len(self.js("insert", "page_t", json.dumps(recs))["ids"]), 25)
        page = self.js("list", "page_t", "--limit", 10)
        self.assertEqual([r["id"] for r in page["records"]], list(range(1, 11)))
        self.assertEqual((page["count"], page["total"], page["next_after"]), (10, 25, 10))
        # Filter, order, select; then the cursor to the next page.
        p1 = self.js("list", "page_t", "--filter", 'team = "red" && hp > 4', "--order", "-hp",
                     "--select", "hp", "--limit", 3)
        self.assertEqual(p1["records"], [{"hp": 23, "id": 24}, {"hp": 21, "id": 22}, {"hp": 19, "id": 20}])
        p2 = self.js("list", "page_t", "--filter", 'team = "red" && hp > 4', "--order", "-hp",
                     "--select", "hp", "--limit", 3, "--cursor", p1["next_cursor"])
        self.assertEqual([r["hp"] for r in p2["records"]], [17, 15, 13])
        everything = self.js("list", "page_t", "--filter", 'team = "red" && hp > 4', "--order", "-hp",
                             "--select", "hp", "--limit", 3, "--all")
        self.assertEqual([r["hp"] for r in everything["records"]], [23, 21, 19, 17, 15, 13, 11, 9, 7, 5])
        self.assertEqual(everything["count"], 10)
        # query: the same, the filter in its JSON form, sent as a body.
        q = self.js("query", "page_t", "--filter", '["&&", ["=", "team", "red"], [">", "hp", 4]]',
                    "--order", "-hp", "--select", "hp", "--limit", 3)
        self.assertEqual(q["records"], p1["records"])
        self.assertIn("invalid_argument", self.fails(1, "list", "page_t", "--filter", "hpp < 3"))
        self.assertIn("invalid_argument", self.fails(1, "list", "page_t", "--limit", 0))

    def test_human_output_is_aligned(self):
        self.ok("table", "create", "human_t", "hp:i32", "name:str16")
        self.ok("insert", "human_t", '{"hp": 5, "name": "ana"}', '{"hp": 12345, "name": "日本語"}',
                '{"hp": -7, "name": "bé"}')
        out = self.ok("list", "human_t").splitlines()
        self.assertEqual(out[0].split(), ["id", "hp", "name"])
        rule = out[1]
        self.assertTrue(set(rule) <= {"-", " "}, rule)
        spans = []  # (start, end) of each column, from the rule line
        i = 0
        while i < len(rule):
            if rule[i] == "-":
                j = i
                while j < len(rule) and rule[j] == "-":
                    j += 1
                spans.append((i, j))
                i = j
            else:
                i += 1
        self.assertEqual(len(spans), 3)

        def width(s):  # terminal columns: CJK counts 2
            return sum(2 if "\u2e80" <= c <= "\ua4cf" else 1 for c in s)

        rows = out[2:5]
        for row in rows:
            # Numbers right-aligned: each ends where its column ends.
            self.assertEqual(len(row[:spans[0][1]]), spans[0][1])
            self.assertNotEqual(row[spans[0][1] - 1], " ", row)
            self.assertNotEqual(row[spans[1][1] - 1], " ", row)
            # Text left-aligned at its column's start (in terminal columns).
            self.assertNotEqual(row[spans[2][0]], " ", row)
            self.assertEqual(width(row[:spans[2][0]]), spans[2][0])
        self.assertEqual(rows[1][spans[1][0]:spans[1][1]], "12345")
        self.assertEqual(out[5], "3 records of 3")

    # -- indexes, relations, operations -------------------------------------------------------

    def test_indexes_and_relations(self):
        self.ok("table", "create", "owners", "name:str8")
        self.ok("table", "create", "items", "owner:u64", "tag:str8")
        self.ok("insert", "owners", '{"name":"ana"}')
        ix = self.js("index", "create", "items", "items_tag", "tag", "--type", "hash", "--unique")
        self.assertEqual({k: ix[k] for k in ("name", "table", "fields", "type", "unique", "entries", "auto")},
                         {"name": "items_tag", "table": "items", "fields": ["tag"], "type": "hash",
                          "unique": True, "entries": 0, "auto": False})
        rel = self.js("relation", "create", "items", "owner", "owners", "--on-delete", "cascade")
        self.assertEqual({k: rel[k] for k in ("from_table", "from_field", "to_table", "on_delete")},
                         {"from_table": "items", "from_field": "owner", "to_table": "owners",
                          "on_delete": "cascade"})
        self.assertIn(rel, self.js("relation", "list")["relations"])
        names = sorted(i["name"] for i in self.js("index", "list", "items")["indexes"])
        self.assertEqual(len(names), 2)  # ours and the relation's automatic one
        self.assertIn("items_tag", names)
        self.ok("insert", "items", '{"owner": 1, "tag": "a"}')
        self.assertIn("unique_violation", self.fails(1, "insert", "items", '{"owner": 1, "tag": "a"}'))
        self.assertIn("foreign_key_violation", self.fails(1, "insert", "items", '{"owner": 9, "tag": "b"}'))
        self.fails(2, "relation", "create", "items", "owner", "owners", "--on-delete", "explode")
        self.assertEqual(self.js("relation", "delete", rel["id"]), {"ok": True})
        self.assertEqual(self.js("index", "drop", "items", "items_tag"), {"ok": True})
        self.assertEqual(self.js("index", "list", "items"), {"indexes": []})

    def test_operations(self):
        h = self.js("health")
        self.assertEqual(h["status"], "ok")
        self.assertEqual(set(h), {"status", "node", "epoch", "tick", "uptime_s"})
        self.assertIsInstance(self.js("stats"), dict)
        c = self.js("cluster")
        self.assertEqual(c["node"], h["node"])
        self.assertIn("db.insert", [p["name"] for p in self.js("procedures")])
        snap = self.js("snapshot")
        self.assertEqual(set(snap), {"path", "bytes", "ms"})
        self.ok("table", "create", "call_t", "hp:i32")
        self.assertEqual(self.js("call", "db.insert", '{"table": "call_t", "values": {"hp": 3}}'),
                         {"hp": 3, "id": 1})
        self.assertEqual(self.js("call", "db.get", '{"table": "call_t", "id": 1}'), {"hp": 3, "id": 1})
        self.assertIn("not_found", self.fails(1, "call", "db.get", '{"table": "call_t", "id": 5}'))
        self.assertIn("-32601", self.fails(1, "call", "no_such_procedure"))
        self.assertIn("status:", self.ok("health"))

    # -- exit codes, environment, auth -------------------------------------------------------

    def test_exit_codes(self):
        self.assertIn("not expected", self.fails(2, "frobnicate"))
        self.fails(2, "get", "some_table")                # missing id
        self.fails(2, "get", "some_table", "not-a-number")
        self.fails(2, "--url", "ftp://x", "tables")
        err = self.fails(1, "table", "show", "no_such_table")
        self.assertIn("not_found: table 'no_such_table' does not exist", err)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
        s.close()
        err = self.fails(3, "health", url="http://127.0.0.1:%d" % closed)
        self.assertIn("cannot reach", err)
        self.fails(3, "watch", "x", url="http://127.0.0.1:%d" % closed)
        rc, out, _ = cli("--help", url=self.url)
        self.assertEqual(rc, 0)
        self.assertIn("import", out)

    def test_env_url(self):
        rc, out, err = cli("--json", "health", env=clean_env(TICKDB_URL=self.url))
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["status"], "ok")
        # --url wins over the environment.
        rc, _, _ = cli("health", url="http://127.0.0.1:1", env=clean_env(TICKDB_URL=self.url))
        self.assertEqual(rc, 3)

    def test_token_auth(self):
        n = NodeProcess(SERVER, "storage.snapshot_interval_s=0", "http.auth_token=\"s3cret\"",
                        data=temp_dir("tickdb-cli-auth-"))
        try:
            url = "http://127.0.0.1:%d" % n.port
            self.assertIn("unauthorized", self.fails(1, "tables", url=url))
            self.assertIn("unauthorized", self.fails(1, "--token", "wrong", "tables", url=url))
            rc, out, err = cli("--json", "--token", "s3cret", "tables", url=url)
            self.assertEqual((rc, json.loads(out)), (0, {"tables": []}), err)
            rc, out, err = cli("--json", "tables", env=clean_env(TICKDB_URL=url, TICKDB_TOKEN="s3cret"))
            self.assertEqual((rc, json.loads(out)), (0, {"tables": []}), err)
            rc, _, _ = cli("--token", "s3cret", "table", "create", "sec", "hp:i32", url=url)
            self.assertEqual(rc, 0)
            # watch sends the token on the upgrade too.
            w = Watch(url, "sec", "--token", "s3cret")
            try:
                snap = w.line()
                self.assertEqual(snap["type"], "snapshot")
            finally:
                w.stop()
        finally:
            n.stop()

    # -- import / export ---------------------------------------------------------------------

    def test_import_jsonl_bad_line_stops_before_its_batch(self):
        self.ok("table", "create", "imp_j", "hp:i32", "name:str8")
        path = os.path.join(temp_dir(), "in.jsonl")
        with open(path, "w") as f:
            for i in range(1, 26):
                f.write('{"hp": %s, "name": "n%d"}\n' % ('"oops"' if i == 17 else i, i))
        err = self.fails(4, "import", "imp_j", path, "--batch", 5)
        self.assertIn("line 17", err)
        self.assertIn("hp", err)
        self.assertIn("15 records imported", err)
        page = self.js("list", "imp_j", "--limit", 100)
        self.assertEqual([r["hp"] for r in page["records"]], list(range(1, 16)))
        # Not JSON at all, and a field the table does not have.
        with open(path, "w") as f:
            f.write('{"hp": 1}\n{"hp": \n')
        self.assertIn("line 2: not valid JSON", self.fails(4, "import", "imp_j", path))
        with open(path, "w") as f:
            f.write('{"hp": 1}\n\n{"mana": 2}\n')
        self.assertIn("line 3: unknown field 'mana'", self.fails(4, "import", "imp_j", path))
        self.assertEqual(self.js("table", "show", "imp_j")["count"], 15)
        self.assertIn("cannot open", self.fails(4, "import", "imp_j", path + ".missing.jsonl"))

    def test_import_csv_bad_line_and_server_refusal(self):
        self.ok("table", "create", "imp_c", "hp:i8", "name:str8")
        path = os.path.join(temp_dir(), "in.csv")
        with open(path, "w") as f:
            f.write("name,hp\n")
            for i in range(1, 13):
                f.write('"n,%d",%s\n' % (i, "300" if i == 9 else str(i)))  # 300 is out of i8
        err = self.fails(4, "import", "imp_c", path, "--batch", 4)
        self.assertIn("line 10", err)  # the header is line 1
        self.assertIn("'hp'", err)
        self.assertIn("8 records imported", err)
        page = self.js("list", "imp_c")
        self.assertEqual([(r["hp"], r["name"]) for r in page["records"]],
                         [(i, "n,%d" % i) for i in range(1, 9)])
        self.assertIn("unknown column 'mana'",
                      self.fails(4, "import", "imp_c", self._write("h.csv", "hp,mana\n1,2\n")))
        # A batch the node refuses (an id already taken) names its lines; earlier batches stay.
        self.ok("table", "create", "imp_r", "hp:i32")
        jl = self._write("r.jsonl", "".join('{"id": %d, "hp": %d}\n' % (i, i) for i in [1, 2, 3, 4, 2, 6]))
        err = self.fails(1, "import", "imp_r", jl, "--batch", 3)
        self.assertIn("lines 4-6", err)
        self.assertIn("already_exists", err)
        self.assertIn("3 records imported", err)
        self.assertEqual(self.js("table", "show", "imp_r")["count"], 3)

    def _write(self, name, text):
        path = os.path.join(temp_dir(), name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def _roundtrip(self, n, fmt):
        src, dst = "rt_src_%s" % fmt, "rt_dst_%s" % fmt
        if not any(t["name"] == "rt_vec" for t in self.js("type", "list")["types"]):
            self.ok("type", "create", "rt_vec", "x:f32", "y:f64", "z:i16")
        for t in (src, dst):
            self.ok("table", "create", t, "big:u64", "neg:i64", "f:f64", "g:f32", "ok:bool",
                    "name:str24", "pos:rt_vec")
        rnd = random.Random(14)
        names = ["ana", "日本語", "a,b", 'say "hi"', "line\nbreak", "ñandú 🦆", "", " pad "]
        path = os.path.join(temp_dir(), "gen.jsonl")
        expect = {}
        with open(path, "w", encoding="utf-8") as f:
            for i in range(1, n + 1):
                r = {"big": 2**64 - 1 - rnd.randrange(1000), "neg": -2**63 + rnd.randrange(1000),
                     "f": rnd.uniform(-1e300, 1e300) if i % 3 else rnd.random() * 1e-300,
                     "g": rnd.choice([0.1, -2.5, 3.4028234663852886e38, 1.401298464324817e-45]),
                     "ok": i % 2 == 0, "name": names[i % len(names)],
                     "pos": {"x": 1.5, "y": rnd.random(), "z": -i % 32768}}
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
                if i % 997 == 1:
                    expect[i] = r
        self.assertEqual(self.js("import", src, path, "--batch", 5000, timeout=300),
                         {"table": src, "imported": n})
        out1 = os.path.join(temp_dir(), "one." + fmt)
        self.assertEqual(self.js("export", src, "--format", fmt, "--output", out1, timeout=300),
                         {"table": src, "exported": n, "file": out1})
        self.assertEqual(self.js("import", dst, out1, "--batch", 5000, timeout=300)["imported"], n)
        rc, out2, err = cli("export", dst, "--format", fmt, url=self.url, timeout=300)
        self.assertEqual(rc, 0, err)
        with open(out1, encoding="utf-8", newline="") as f:
            one = f.read()
        self.assertEqual(len(one), len(out2))
        self.assertTrue(one == out2, "the second export differs from the first")
        # The values themselves, against what was generated (ids kept by the import).
        for i, r in expect.items():
            got = self.js("get", dst, i)
            for k in ("big", "neg", "f", "ok", "name"):
                self.assertEqual(got[k], r[k], (i, k))
            self.assertEqual(got["pos"]["y"], r["pos"]["y"])
            self.assertEqual(got["pos"]["z"], r["pos"]["z"])
        return one

    def test_roundtrip_jsonl_exact(self):
        self._roundtrip(BIG, "jsonl")

    def test_roundtrip_csv_exact(self):
        text = self._roundtrip(20000, "csv")
        header = text.split("\n", 1)[0]
        self.assertEqual(header, "id,big,neg,f,g,ok,name,pos.x,pos.y,pos.z")
        self.assertIn('"a,b"', text)
        self.assertIn('"say ""hi"""', text)
        self.assertIn('"line\nbreak"', text)

    def test_export_filter(self):
        self.ok("table", "create", "exp_f", "hp:i32")
        self.ok("insert", "exp_f", json.dumps([{"hp": i} for i in range(30)]))
        rc, out, _ = cli("export", "exp_f", "--filter", "hp >= 25", "--page", 2, url=self.url)
        self.assertEqual(rc, 0)
        self.assertEqual([json.loads(l) for l in out.splitlines()],
                         [{"hp": i, "id": i + 1} for i in range(25, 30)])

    # -- watch, prompt -----------------------------------------------------------------------

    def test_watch_prints_json_lines_after_a_write(self):
        self.ok("table", "create", "watch_t", "hp:i32", "name:str8")
        self.ok("insert", "watch_t", '{"hp": 1, "name": "a"}', '{"hp": 90, "name": "b"}')
        w = Watch(self.url, "watch_t", "--filter", "hp < 50")
        try:
            snap = w.line()
            self.assertEqual(snap["type"], "snapshot")
            self.assertEqual(snap["rows"], [{"hp": 1, "id": 1, "name": "a"}])
            self.ok("insert", "watch_t", '{"hp": 7, "name": "c"}')
            d = w.line()
            self.assertEqual(d["type"], "delta")
            self.assertEqual(d["ins"], [{"hp": 7, "id": 3, "name": "c"}])
            self.ok("update", "watch_t", 1, '{"hp": 60}')  # leaves the filter
            d = w.line()
            self.assertEqual((d["out"], d["ins"], d["upd"]), ([1], [], []))
            self.ok("delete", "watch_t", 3)
            self.assertEqual(w.line()["del"], [3])
        finally:
            w.stop()
        self.assertIn("not_found", self.fails(1, "watch", "no_such_table"))

    def test_prompt_through_stdin(self):
        script = "\n".join([
            "table create prompt_t hp:i32 'name:str16'",
            "insert prompt_t '{\"hp\": 1, \"name\": \"a b\"}'",
            'insert prompt_t "{\\"hp\\": 2, \\"name\\": \\"c\\"}"   # a comment',
            "",
            "get prompt_t 2",
            "--json get prompt_t 1",
            "get prompt_t 99",
            "bogus",
            "'unterminated",
            "list prompt_t",
            "exit",
            "get prompt_t 1",  # never run
        ]) + "\n"
        rc, out, err = cli("--json", url=self.url, stdin=script)
        lines = out.splitlines()
        self.assertEqual(json.loads(lines[1]), {"hp": 1, "id": 1, "name": "a b"})
        self.assertEqual(json.loads(lines[2]), {"hp": 2, "id": 2, "name": "c"})
        self.assertEqual(json.loads(lines[3]), {"hp": 2, "id": 2, "name": "c"})
        self.assertEqual(json.loads(lines[4]), {"hp": 1, "id": 1, "name": "a b"})
        self.assertEqual(json.loads(lines[5])["count"], 2)
        self.assertEqual(len(lines), 6, out)
        self.assertIn("not_found", err)
        self.assertIn("bogus", err)
        self.assertIn("unterminated single quote", err)
        self.assertEqual(rc, 0)  # the status of the last command (list)
        # End of input without exit: the last command's status (a server error here).
        rc, out, err = cli(url=self.url, stdin="get prompt_t 99\n", env=clean_env(TICKDB_URL=self.url))
        self.assertEqual(rc, 1, err)


class Watch:
    """`tickdb-cli watch` in non-terminal mode; its JSON lines read with a deadline."""

    def __init__(self, url, table, *args):
        self.p = subprocess.Popen([CLI, "--url", url, "watch", table] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=clean_env())
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line)
        self.q.put(None)

    def line(self, timeout=10):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("watch printed nothing within %d s" % timeout)
        if line is None:
            raise AssertionError("watch ended: " + self.p.stderr.read())
        return json.loads(line)

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(10)


if __name__ == "__main__":
    CLI, SERVER = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
