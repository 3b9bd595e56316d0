#!/usr/bin/env python3
"""Model-based tests of live subscriptions (issue 13), with Debian's python3-websockets: a
client model that applies snapshots and deltas must equal `GET .../records` with the same
filter and select at the version the model has reached, under random write storms (inserts,
updates, deletes, bulk inserts, transactions over two tables), random filters and selects,
rate_hz, disconnects and resumes, over many seeds; and 100 subscriptions made in the middle
of a write storm, each of which must end equal to the table.

usage: subscription_model_test.py SERVER_BINARY GAME_MODULE [unittest args]
Only 127.0.0.1 is used; every wait is bounded by a deadline; the seeds are fixed.
"""
import os
import sys

from tickdb_node import need_debian_module  # noqa: E402

need_debian_module("websockets")

import asyncio
import http.client
import json
import random
import threading
import time
import unittest
import urllib.parse

import websockets

from tickdb_node import NodeProcess, temp_dir

SERVER = None


class Node(NodeProcess):
    def __init__(self, *sets):
        super().__init__(SERVER, "storage.snapshot_interval_s=0", *sets, data=temp_dir("tickdb-model-"))
        self.local = threading.local()

    def req(self, method, path, body=None):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        data = None if body is None else json.dumps(body)
        for attempt in (0, 1):
            try:
                c.request(method, path, body=data, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None), r
            except (http.client.HTTPException, ConnectionError):
                c.close()
                c = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
                if attempt:
                    raise

    def url(self):
        return "ws://127.0.0.1:%d/ws" % self.port

    def table_at(self, table, filt, select):
        """(version, rows) of the whole table, page by page; every page must be of the same
        version (the callers have paused their writers)."""
        rows, version, after = [], None, None
        while True:
            q = {"limit": 10000}
            if filt:
                q["filter"] = filt
            if select:
                q["select"] = ",".join(select)
            if after is not None:
                q["after"] = after
            st, page, r = self.req("GET", "/table/%s/records?%s" % (table, urllib.parse.urlencode(q)))
            assert st == 200, (st, page)
            v = int(r.getheader("X-Tickdb-Version"))
            assert version is None or v == version, "a write between pages"
            version = v
            rows += page["records"]
            after = page["next_after"]
            if after is None:
                return version, rows


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Model:
    """One subscription's rows, as a client keeps them."""

    def __init__(self):
        self.rows = {}

    def snapshot(self, rows):
        for r in rows:
            self.rows[r["id"]] = r

    def apply(self, ch):
        for r in ch.get("ins", []) + ch.get("upd", []):
            self.rows[r["id"]] = r
        for i in ch.get("del", []) + ch.get("out", []):
            self.rows.pop(i, None)

    def sorted(self):
        return sorted(self.rows.values(), key=lambda r: r["id"])


class Client:
    """A connection and its subscriptions' models; checks the chain of every frame."""

    def __init__(self, test, node):
        self.t, self.node = test, node
        self.ws = None
        self.version = None
        self.epoch = None
        self.models = {}  # sub -> Model
        self.specs = {}   # sub -> (table, filter, select)
        self.pending = {}  # sub -> Model being snapshotted

    async def connect(self):
        self.ws = await websockets.connect(self.node.url(), subprotocols=["tickdb.v1"], max_size=None)
        hello = await self.recv()
        self.t.assertEqual(hello["type"], "hello")
        self.epoch = hello["epoch"]
        self.version = hello["version"]

    async def recv(self, timeout=10.0):
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def subscribe(self, sub, table, filt=None, select=None, rate_hz=None, since=None):
        op = {"op": "subscribe", "sub": sub, "table": table}
        if filt:
            op["filter"] = filt
        if select:
            op["select"] = select
        if rate_hz:
            op["rate_hz"] = rate_hz
        if since:
            op["since"] = since
        self.specs[sub] = (table, filt, select)
        self.pending[sub] = Model()
        await self.ws.send(json.dumps(op))

    def handle(self, f):
        """Applies one frame; returns it."""
        ty = f["type"]
        if ty == "snapshot":
            self.t.assertEqual(f["version"], self.version, "a snapshot is of the connection's version")
            self.pending[f["sub"]].snapshot(f["rows"])
        elif ty == "ready":
            sub = f["sub"]
            self.t.assertEqual(f["version"], self.version)
            m = self.pending.pop(sub)
            if f["resumed"]:
                m = self.models.get(sub) or Model()
                m.apply(f["changes"].get(sub, {}))
            self.models[sub] = m
        elif ty == "reset":
            self.pending[f["sub"]] = Model()
            self.models.pop(f["sub"], None)
        elif ty == "delta":
            self.t.assertEqual(f["from"], self.version, "deltas chain")
            self.t.assertGreater(f["to"], f["from"])
            self.version = f["to"]
            for sub, ch in f["changes"].items():
                self.t.assertIn(sub, self.models, "a delta only for subscriptions that are ready")
                self.models[sub].apply(ch)
        elif ty == "progress":
            self.t.assertGreaterEqual(f["version"], self.version)
            self.version = f["version"]
        elif ty in ("error", "ended"):
            self.t.fail("unexpected %s" % f)
        return f

    async def pump(self, timeout=0.2):
        """Handles frames until none comes within timeout."""
        while True:
            try:
                f = await self.recv(timeout)
            except asyncio.TimeoutError:
                return
            self.handle(f)

    async def reach(self, version, timeout=15.0):
        """Handles frames until every subscription is ready and the chain is at `version`."""
        end = time.time() + timeout
        while self.version < version or self.pending:
            left = end - time.time()
            if left <= 0:
                self.t.fail("the connection reached %s, not %s, within %.0f s (pending %s)"
                            % (self.version, version, timeout, list(self.pending)))
            self.handle(await self.recv(left))

    def check(self, sub):
        table, filt, select = self.specs[sub]
        v, rows = self.node.table_at(table, filt, select)
        # The node's answer is of version v; our model is at self.version >= v only if nothing
        # was written in between: the caller checks while writers are paused.
        self.t.assertEqual(v, self.version, "quiescent: the model is at the table's version")
        self.t.assertEqual(self.models[sub].sorted(), rows, "sub %s (%s, %s) equals the table" % (sub, filt, select))


FILTERS = [None, "k >= 0", "k < 5 || g = 2", "s ^= \"a\"", "g in (1, 3) && k != 7", "!(k > 10)", "x < 0.5"]
SELECTS = [None, ["k"], ["k", "s"], ["g", "x"]]


class Storm:
    """Random writes to tables a and b from a thread, until stopped or `count` done."""

    def __init__(self, node, rnd, count):
        self.node, self.rnd, self.count = node, rnd, count
        self.ids = {"a": [], "b": []}
        self.done = 0
        self.stop = threading.Event()

    def values(self):
        r = self.rnd
        return {"k": r.randint(-3, 15), "g": r.randint(0, 4), "s": r.choice(["a", "ab", "b", "ba", "c"]),
                "x": r.choice([0.0, 0.25, 0.75, 1.5])}

    def one(self):
        r, n = self.rnd, self.node
        t = r.choice(["a", "a", "b"])
        ids = self.ids[t]
        p = r.random()
        if p < 0.35 or len(ids) < 5:
            st, body, _ = n.req("POST", "/table/%s/record" % t, self.values())
            assert st == 201, body
            ids.append(body["id"])
        elif p < 0.45:
            st, body, _ = n.req("POST", "/table/%s/records" % t, {"records": [self.values() for _ in range(r.randint(2, 20))]})
            assert st == 201, body
            ids.extend(body["ids"])
        elif p < 0.8:
            v = self.values()
            keep = r.sample(sorted(v), r.randint(1, 4))
            st, body, _ = n.req("PUT", "/table/%s/record/%d" % (t, r.choice(ids)), {k: v[k] for k in keep})
            assert st == 200, body
        elif p < 0.9:
            i = r.randrange(len(ids))
            st, body, _ = n.req("DELETE", "/table/%s/record/%d" % (t, ids.pop(i)))
            assert st == 204, body
        else:  # one transaction over both tables: it must arrive in one frame
            ops = [{"method": "db.insert", "params": {"table": "a", "values": self.values()}},
                   {"method": "db.insert", "params": {"table": "b", "values": self.values()}}]
            if self.ids["a"]:
                ops.append({"method": "db.update", "params": {"table": "a", "id": r.choice(self.ids["a"]), "values": {"k": r.randint(-3, 15)}}})
            st, body, _ = n.req("POST", "/rpc", {"jsonrpc": "2.0", "id": 1, "method": "db.transaction", "params": {"ops": ops}})
            assert st == 200 and "result" in body, body
            self.ids["a"].append(body["result"][0]["id"])
            self.ids["b"].append(body["result"][1]["id"])

    def run(self):
        while not self.stop.is_set() and self.done < self.count:
            self.one()
            self.done += 1


def make_tables(node, suffix=""):
    for t in ("a", "b"):
        st, body, _ = node.req("POST", "/table", {"name": t + suffix, "fields": [
            {"name": "k", "type": "i32"}, {"name": "g", "type": "u8"},
            {"name": "s", "type": "str", "size": 4}, {"name": "x", "type": "f32"}]})
        assert st == 201, body


class ModelTests(unittest.TestCase):
    def test_models_equal_the_table_under_storms_filters_rates_and_resumes(self):
        seeds = [11, 12, 13, 14, 15, 16]
        deadline = time.time() + 90  # bounded: each seed is small
        for seed in seeds:
            if time.time() > deadline:
                self.fail("seeds ran past the time bound")
            with self.subTest(seed=seed):
                node = Node()
                try:
                    run(self.one_seed(node, seed))
                finally:
                    node.stop()

    async def one_seed(self, node, seed):
        rnd = random.Random(seed)
        make_tables(node)
        storm = Storm(node, random.Random(seed * 7), 10**9)
        for _ in range(30):
            storm.one()
        c = Client(self, node)
        await c.connect()
        subs = []
        for i in range(rnd.randint(2, 4)):
            sub = "s%d" % i
            rate = rnd.choice([None, None, 10, 30])
            await c.subscribe(sub, rnd.choice(["a", "b"]), rnd.choice(FILTERS), rnd.choice(SELECTS),
                              rate_hz=rate if i == 0 else None)
            subs.append(sub)
        loop = asyncio.get_running_loop()
        for rnd_round in range(4):
            # A burst of writes while the client reads, then a quiescent check.
            burst = rnd.randint(40, 120)
            storm.done, storm.count = 0, burst
            writer = loop.run_in_executor(None, storm.run)
            while not writer.done():
                await c.pump(0.05)
            await writer
            v, _ = node.table_at("a", None, None)
            await c.reach(v)
            for sub in subs:
                c.check(sub)
            if rnd_round == 1:
                # A disconnect: writes go on while the client is away; it resumes with its
                # token (one catch-up) and its models must still equal the table.
                token = "%s:%d" % (c.epoch, c.version)
                await c.ws.close()
                for _ in range(rnd.randint(5, 30)):
                    storm.one()
                old = dict(c.models)
                c2 = Client(self, node)
                await c2.connect()
                c2.models = {s: old[s] for s in subs}
                for sub in subs:
                    table, filt, select = c.specs[sub]
                    await c2.subscribe(sub, table, filt, select, since=token)
                c = c2
        await c.ws.close()

    def test_one_hundred_subscriptions_made_during_a_write_storm_end_equal_to_the_table(self):
        node = Node()
        try:
            run(self.hundred(node), timeout=150)
        finally:
            node.stop()

    async def hundred(self, node):
        make_tables(node)
        storm = Storm(node, random.Random(99), 10**9)
        for _ in range(50):
            storm.one()
        loop = asyncio.get_running_loop()
        writer = loop.run_in_executor(None, storm.run)
        rnd = random.Random(5)
        clients = []
        try:
            for i in range(10):
                c = Client(self, node)
                await c.connect()
                clients.append(c)
            made = 0
            while made < 100:
                c = clients[made % len(clients)]
                await c.subscribe("s%d" % made, rnd.choice(["a", "b"]), rnd.choice(FILTERS), rnd.choice(SELECTS))
                made += 1
                for cl in clients:
                    await cl.pump(0.005)
        finally:
            storm.stop.set()
            await writer
        v, _ = node.table_at("a", None, None)
        for c in clients:
            await c.reach(v, timeout=30)
            for sub in list(c.models):
                c.check(sub)
            await c.ws.close()
        self.assertEqual(sum(len(c.models) for c in clients), 100)
        self.assertGreater(storm.done, 100, "the storm ran while the subscriptions were made")


if __name__ == "__main__":
    SERVER = sys.argv[1]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
