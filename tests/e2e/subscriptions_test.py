#!/usr/bin/env python3
"""Black-box tests of live subscriptions over WebSocket (issue 13), with Debian's
python3-websockets: hello, snapshot + ready at one version, deltas that chain, exact
ins/upd/del/out for filters and projections, several tables in one frame, resume within the
retain window, reset on a schema change, ended on a dropped table, auth, protocol errors and
their close codes, a slow consumer closed with 4008, and a random write storm whose deltas,
applied by a client, give the table exactly.

usage: subscriptions_test.py SERVER_BINARY GAME_MODULE [unittest args]
Only 127.0.0.1 is used; every wait is bounded by a deadline.
"""
import os
import sys

from tickdb_node import need_debian_module  # noqa: E402

need_debian_module("websockets")

import asyncio
import http.client
import json
import random
import subprocess
import time
import unittest

import websockets

from tickdb_node import NodeProcess, read_events, temp_dir

SERVER = None


class Node(NodeProcess):
    def __init__(self, *sets):
        super().__init__(SERVER, "storage.snapshot_interval_s=0", *sets, data=temp_dir("tickdb-subs-"))

    def req(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data else None), r

    def url(self):
        return "ws://127.0.0.1:%d/ws" % self.port


async def recv(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, pred, timeout=5.0, keep=None):
    """Frames until pred(frame); every frame seen is appended to keep."""
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0:
            raise AssertionError("no such frame within %.1f s; saw %s" % (timeout, (keep or [])[-5:]))
        f = await recv(ws, left)
        if keep is not None:
            keep.append(f)
        if pred(f):
            return f


async def subscribe(ws, sub, table, **kw):
    """Sends subscribe; returns (rows of the snapshot, ready frame)."""
    await ws.send(json.dumps(dict(op="subscribe", sub=sub, table=table, **kw)))
    rows = []
    while True:
        f = await recv(ws)
        if f["type"] == "snapshot" and f["sub"] == sub:
            rows += f["rows"]
        elif f["type"] == "ready" and f["sub"] == sub:
            return rows, f
        elif f["type"] == "error":
            raise AssertionError(f)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


class Subscriptions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.n = Node()
        n = cls.n
        assert n.req("POST", "/table", {"name": "p", "fields": [
            {"name": "hp", "type": "i32"}, {"name": "team", "type": "str", "size": 8}, {"name": "x", "type": "f32"}]})[0] == 201
        assert n.req("POST", "/table", {"name": "q", "fields": [{"name": "v", "type": "u32"}]})[0] == 201

    @classmethod
    def tearDownClass(cls):
        cls.n.stop()

    def test_snapshot_then_deltas_exact_for_filter_and_select(self):
        n = self.n

        async def go():
            ids = [n.req("POST", "/table/p/record", {"hp": i * 10, "team": "red" if i % 2 else "blue"})[1]["id"]
                   for i in range(6)]
            async with websockets.connect(n.url(), subprotocols=["tickdb.v1"]) as ws:
                self.assertEqual(ws.subprotocol, "tickdb.v1")
                hello = await recv(ws)
                self.assertEqual(hello["type"], "hello")
                st, health, _ = n.req("GET", "/health")
                self.assertEqual(hello["epoch"], health["epoch"])
                rows, ready = await subscribe(ws, "s", "p", filter="hp >= 20 && team = \"red\"", select=["hp"])
                self.assertEqual(ready["version"], hello["version"])
                self.assertEqual(ready["count"], len(rows))
                self.assertEqual(sorted(r["id"] for r in rows), [ids[3], ids[5]])
                self.assertEqual(set(rows[0]), {"id", "hp"})
                self.assertEqual([f["name"] for f in ready["schema"]["fields"]], ["hp"])
                last = ready["version"]
                seen = []

                async def delta():
                    f = await recv_until(ws, lambda f: f["type"] == "delta", keep=seen)
                    nonlocal last
                    self.assertEqual(f["from"], last)  # the chain has no gap
                    last = f["to"]
                    return f["changes"]["s"]

                # enters the filter -> ins; changes a selected field -> upd; leaves -> out; deleted -> del
                n.req("PUT", "/table/p/record/%d" % ids[1], {"hp": 50})
                self.assertEqual((await delta())["ins"], [{"id": ids[1], "hp": 50}])
                n.req("PUT", "/table/p/record/%d" % ids[3], {"hp": 31})
                ch = await delta()
                self.assertEqual((ch["upd"], ch["ins"], ch["del"], ch["out"]), ([{"id": ids[3], "hp": 31}], [], [], []))
                n.req("PUT", "/table/p/record/%d" % ids[3], {"team": "blue"})
                self.assertEqual((await delta())["out"], [ids[3]])
                n.req("DELETE", "/table/p/record/%d" % ids[5])
                self.assertEqual((await delta())["del"], [ids[5]])
                # A change to an unselected field sends nothing; progress keeps the chain going.
                n.req("PUT", "/table/p/record/%d" % ids[1], {"x": 2.5})
                f = await recv_until(ws, lambda f: f["type"] in ("delta", "progress"), keep=seen, timeout=3)
                self.assertEqual(f["type"], "progress")
                self.assertGreater(f["version"], last)
                last = f["version"]
                # Two tables in one transaction: one frame; a second subscription joins the chain.
                rows, ready2 = await subscribe(ws, "t", "q")
                self.assertGreaterEqual(ready2["version"], last)
                last = ready2["version"] if ready2["version"] > last else last
                out, _ = None, None
                st, out, _ = n.req("POST", "/rpc", {"jsonrpc": "2.0", "id": 1, "method": "db.transaction", "params": {"ops": [
                    {"method": "db.insert", "params": {"table": "p", "values": {"hp": 99, "team": "red"}}},
                    {"method": "db.insert", "params": {"table": "q", "values": {"v": 7}}}]}})
                f = await recv_until(ws, lambda f: f["type"] == "delta", keep=seen)
                self.assertEqual(set(f["changes"]), {"s", "t"})
                self.assertEqual(f["changes"]["t"]["ins"][0]["v"], 7)
                # ping, unsubscribe
                await ws.send(json.dumps({"op": "ping"}))
                await recv_until(ws, lambda f: f["type"] == "pong")
                await ws.send(json.dumps({"op": "unsubscribe", "sub": "t"}))
                e = await recv_until(ws, lambda f: f["type"] == "ended")
                self.assertEqual((e["sub"], e["reason"]), ("t", "unsubscribed"))
                # The hub's figures are in /metrics and /stats.
                c = http.client.HTTPConnection("127.0.0.1", n.port, timeout=10)
                c.request("GET", "/metrics")
                m = c.getresponse().read().decode()
                c.close()
                self.assertRegex(m, r"(?m)^tickdb_subscription_deltas_total [1-9]")
                self.assertRegex(m, r"(?m)^tickdb_subscription_connections [1-9]")
                st, stats, _ = n.req("GET", "/stats")
                self.assertGreaterEqual(stats["subscriptions"]["subscriptions"], 1)
        run(go())

    def test_errors_keep_the_connection_and_protocol_errors_close_it(self):
        n = self.n

        async def go():
            async with websockets.connect(n.url()) as ws:
                await recv(ws)
                for op, code, text in [
                    ({"op": "subscribe", "sub": "a", "table": "nope"}, "not_found", "table 'nope' does not exist"),
                    ({"op": "subscribe", "sub": "a", "table": "p", "filter": "hpp = 1"}, "invalid_argument",
                     "filter: unknown field 'hpp' at 1:1"),
                    ({"op": "subscribe", "sub": "a", "table": "p", "select": ["nope"]}, "invalid_argument", "select:"),
                    ({"op": "subscribe", "table": "p"}, "invalid_argument", "'sub'"),
                    ({"op": "subscribe", "sub": "a", "table": "p", "colour": 1}, "invalid_argument", "colour"),
                ]:
                    await ws.send(json.dumps(op))
                    f = await recv_until(ws, lambda f: f["type"] == "error")
                    self.assertEqual(f["code"], code, f)
                    self.assertIn(text, f["message"])
                await ws.send(json.dumps({"op": "ping"}))
                await recv_until(ws, lambda f: f["type"] == "pong")  # still up
            for frame, why in [("not json", "JSON"), ("[1]", "object"), (json.dumps({"op": "fly"}), "unknown op"),
                               ("x" * (70 * 1024), "max_incoming_bytes")]:
                async with websockets.connect(n.url(), max_size=None) as ws:
                    await recv(ws)
                    await ws.send(frame)
                    with self.assertRaises(websockets.ConnectionClosed) as cm:
                        for _ in range(10):
                            await recv(ws)
                    self.assertEqual(cm.exception.rcvd.code, 4002, why)
                    self.assertIn(why, cm.exception.rcvd.reason)
            # Without an upgrade, /ws answers 426.
            st, body, _ = n.req("GET", "/ws")
            self.assertEqual(st, 426)
        run(go())

    def test_a_peer_that_goes_quiet_after_the_nodes_close_is_dropped_within_the_grace(self):
        # The node closes (4002: not JSON); the peer then starts a frame whose header it never
        # finishes, so a close it might send later would be payload. The node waits for the
        # peer's close no longer than its close grace (3 s), then drops the TCP connection.
        import socket
        import struct
        s = socket.create_connection(("127.0.0.1", self.n.port), timeout=15)
        try:
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
            got = b""
            while b"\r\n\r\n" not in got:
                part = s.recv(4096)
                self.assertTrue(part, "no handshake answer")
                got += part
            self.assertTrue(got.startswith(b"HTTP/1.1 101"), got[:100])
            got = got[got.index(b"\r\n\r\n") + 4:]
            payload, mask = b"not json", b"\x01\x02\x03\x04"
            s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask +
                      bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))
            s.sendall(b"\x81\xff\x00\x00")  # a text frame of a 64-bit length: 10 of 14 header bytes missing
            start = time.time()
            while True:
                part = s.recv(4096)  # at most 15 s each (the socket's timeout)
                if not part:
                    break
                got += part
                self.assertLess(time.time() - start, 10, "the node keeps sending")
            waited = time.time() - start
            self.assertLess(waited, 6.0, "the node held the closing session %.1f s" % waited)
            # What came before the end: the hello, then the node's close frame with 4002.
            at = got.index(b"\x88")
            self.assertEqual(struct.unpack(">H", got[at + 2:at + 4])[0], 4002, got)
        finally:
            s.close()

    def test_resume_within_the_window_and_reset_otherwise(self):
        n = self.n

        async def go():
            async with websockets.connect(n.url()) as ws:
                hello = await recv(ws)
                rows, ready = await subscribe(ws, "s", "q")
                n.req("POST", "/table/q/record", {"v": 100})
                f = await recv_until(ws, lambda f: f["type"] == "delta")
                token = "%s:%d" % (hello["epoch"], f["to"])
            # Offline: two writes; the resume brings both in one catch-up.
            a = n.req("POST", "/table/q/record", {"v": 101})[1]["id"]
            b = n.req("POST", "/table/q/record", {"v": 102})[1]["id"]
            async with websockets.connect(n.url()) as ws:
                await recv(ws)
                await ws.send(json.dumps({"op": "subscribe", "sub": "s", "table": "q", "since": token}))
                r = await recv_until(ws, lambda f: f["type"] == "ready")
                self.assertTrue(r["resumed"])
                self.assertEqual(r["from"], int(token.split(":")[1]))
                self.assertEqual(sorted(x["id"] for x in r["changes"]["s"]["ins"]), [a, b])
                self.assertIsNone(r["count"])
            async with websockets.connect(n.url()) as ws:
                await recv(ws)
                await ws.send(json.dumps({"op": "subscribe", "sub": "s", "table": "q", "since": "0000:1"}))
                f = await recv_until(ws, lambda f: f["type"] in ("reset", "ready"))
                self.assertEqual((f["type"], f["reason"]), ("reset", "resume_unavailable"))
                r = await recv_until(ws, lambda f: f["type"] == "ready")
                self.assertFalse(r["resumed"])
        run(go())

    def test_schema_change_resets_and_a_dropped_table_ends(self):
        n = self.n

        async def go():
            self.assertEqual(n.req("POST", "/table", {"name": "tmp", "fields": [{"name": "a", "type": "i32"}]})[0], 201)
            n.req("POST", "/table/tmp/record", {"a": 1})
            async with websockets.connect(n.url()) as ws:
                await recv(ws)
                await subscribe(ws, "s", "tmp")
                self.assertEqual(n.req("POST", "/table/tmp/field", {"name": "b", "type": "u8", "default": 3})[0], 201)
                f = await recv_until(ws, lambda f: f["type"] == "reset")
                self.assertEqual(f["reason"], "schema_changed")
                snap = await recv_until(ws, lambda f: f["type"] == "snapshot")
                self.assertEqual(snap["rows"][0]["b"], 3)
                await recv_until(ws, lambda f: f["type"] == "ready")
                self.assertEqual(n.req("DELETE", "/table/tmp")[0], 204)
                f = await recv_until(ws, lambda f: f["type"] == "ended")
                self.assertEqual(f["reason"], "table_dropped")
        run(go())

    def test_removing_a_field_goes_on_ends_or_resets_as_the_subscription_uses_it(self):
        n = self.n

        async def go():
            self.assertEqual(n.req("POST", "/table", {"name": "rm", "fields": [
                {"name": "a", "type": "i32"}, {"name": "b", "type": "i32"}, {"name": "c", "type": "i32"}]})[0], 201)
            for i in range(5):
                n.req("POST", "/table/rm/record", {"a": i, "b": 10 * i, "c": 100 * i})
            async with websockets.connect(n.url()) as ws:
                await recv(ws)
                await subscribe(ws, "keep", "rm", filter="a >= 2", select=["a"])  # uses a only
                await subscribe(ws, "uses_c", "rm", select=["a", "c"])           # selects c
                await subscribe(ws, "all", "rm")                                # every field
                self.assertEqual(n.req("DELETE", "/table/rm/field/b")[0], 200)
                seen = []
                await recv_until(ws, lambda f: f["type"] == "ended" and f["sub"] == "all", keep=seen)
                self.assertEqual(seen[-1]["reason"], "field_removed")
                self.assertFalse([f for f in seen if f["type"] == "reset"], seen)
                # Removing c ends uses_c; keep goes on and still gets its changes.
                self.assertEqual(n.req("DELETE", "/table/rm/field/c")[0], 200)
                f = await recv_until(ws, lambda f: f["type"] == "ended", keep=seen)
                self.assertEqual((f["sub"], f["reason"]), ("uses_c", "field_removed"))
                n.req("PUT", "/table/rm/record/1", {"a": 7})
                f = await recv_until(ws, lambda f: f["type"] == "delta", keep=seen)
                self.assertEqual(f["changes"], {"keep": {"ins": [{"id": 1, "a": 7}], "upd": [], "del": [], "out": []}})
                self.assertFalse([f for f in seen if f["type"] in ("reset", "snapshot")], seen)
                # Adding a field still resets.
                self.assertEqual(n.req("POST", "/table/rm/field", {"name": "d", "type": "u8"})[0], 201)
                f = await recv_until(ws, lambda f: f["type"] == "reset", keep=seen)
                self.assertEqual((f["sub"], f["reason"]), ("keep", "schema_changed"))
        run(go())

    def test_a_write_storm_applied_by_a_client_gives_the_table(self):
        n = self.n
        rnd = random.Random(7)

        async def go():
            self.assertEqual(n.req("POST", "/table", {"name": "storm", "fields": [
                {"name": "k", "type": "i32"}, {"name": "s", "type": "str", "size": 6}]})[0], 201)
            async with websockets.connect(n.url()) as ws:
                await recv(ws)
                rows, ready = await subscribe(ws, "s", "storm", filter="k >= 0", select="k")
                model = {r["id"]: r for r in rows}
                last = ready["version"]
                ids = []
                loop = asyncio.get_running_loop()

                def storm():
                    v = 0
                    for i in range(300):
                        r = rnd.random()
                        if r < 0.5 or not ids:
                            st, body, h = n.req("POST", "/table/storm/record", {"k": rnd.randint(-5, 20), "s": "x"})
                            ids.append(body["id"])
                        elif r < 0.85:
                            st, body, h = n.req("PUT", "/table/storm/record/%d" % rnd.choice(ids),
                                                {"k": rnd.randint(-5, 20)} if rnd.random() < 0.7 else {"s": "y"})
                        else:
                            i = rnd.randrange(len(ids))
                            st, body, h = n.req("DELETE", "/table/storm/record/%d" % ids.pop(i))
                    st, page, h = n.req("GET", "/table/storm/records?limit=10000&filter=k%3E%3D0&select=k")
                    return int(h.getheader("X-Tickdb-Version")), page["records"]

                final_task = loop.run_in_executor(None, storm)
                final_version, final_rows = None, None
                while True:
                    if final_task.done() and final_version is None:
                        final_version, final_rows = final_task.result()
                    if final_version is not None and last >= final_version:
                        break
                    try:
                        f = await recv(ws, 0.5)
                    except asyncio.TimeoutError:
                        continue
                    if f["type"] == "delta":
                        self.assertEqual(f["from"], last)
                        last = f["to"]
                        ch = f["changes"].get("s", {})
                        for r in ch.get("ins", []) + ch.get("upd", []):
                            model[r["id"]] = r
                        for i in ch.get("del", []) + ch.get("out", []):
                            model.pop(i, None)
                    elif f["type"] == "progress":
                        self.assertGreaterEqual(f["version"], last)
                        last = f["version"]
                self.assertEqual(sorted(model.values(), key=lambda r: r["id"]), final_rows)
        run(go())

    def test_server_sent_events_with_ids_and_last_event_id(self):
        n = self.n
        self.assertEqual(n.req("POST", "/table", {"name": "ev", "fields": [{"name": "a", "type": "i32"}]})[0], 201)
        n.req("POST", "/table/ev/record", {"a": 1})

        def open_stream(query, headers=None):
            c = http.client.HTTPConnection("127.0.0.1", n.port, timeout=10)
            c.request("GET", "/table/ev/events" + query, headers=headers or {})
            return c, c.getresponse()

        events = read_events

        c, r = open_stream("?filter=" + "a%20%3E%3D%200" + "&select=a")
        self.assertEqual((r.status, r.getheader("Content-Type")), (200, "text/event-stream"))
        got = events(r, lambda e: e[0] == "ready")
        self.assertEqual(got[0][0], "hello")
        self.assertEqual([e[2]["rows"] for e in got if e[0] == "snapshot"], [[{"id": 1, "a": 1}]])
        ready = got[-1]
        self.assertEqual(ready[1], "%s:%d" % (got[0][2]["epoch"], ready[2]["version"]))
        n.req("POST", "/table/ev/record", {"a": 2})
        got = events(r, lambda e: e[0] == "delta")
        delta = got[-1]
        self.assertEqual(delta[2]["changes"]["ev"]["ins"], [{"id": 2, "a": 2}])
        self.assertEqual(delta[1].split(":")[1], str(delta[2]["to"]))
        c.close()
        # Reconnecting with Last-Event-ID resumes from there (a `since` left in the URL loses).
        n.req("POST", "/table/ev/record", {"a": 3})
        c, r = open_stream("?since=bogus:1", {"Last-Event-ID": delta[1]})
        got = events(r, lambda e: e[0] == "ready")
        self.assertTrue(got[-1][2]["resumed"])
        self.assertEqual([x["a"] for x in got[-1][2]["changes"]["ev"]["ins"]], [3])
        c.close()
        # What is wrong is a plain error before any stream.
        for q, st, code in [("?filter=b%3D1", 400, "invalid_argument"), ("?colour=1", 400, "invalid_argument"),
                            ("?rate_hz=0", 400, "invalid_argument")]:
            c, r = open_stream(q)
            self.assertEqual((r.status, json.loads(r.read())["error"]["code"]), (st, code), q)
            c.close()
        st, body, _ = n.req("GET", "/table/nope/events")
        self.assertEqual((st, body["error"]["code"]), (404, "not_found"))


class Limits(unittest.TestCase):
    @unittest.skipIf(os.environ.get("TICKDB_SANITIZE"), "RSS under a sanitizer's quarantine is no measure (the release run checks it)")
    def test_a_client_that_stops_reading_does_not_grow_the_node(self):
        # Frames of 64 KiB at most, so the queue's high-water mark is 1 MiB; the ring keeps
        # at most 8 MiB. The writer rewrites 2,000 records of 200 bytes in each transaction:
        # without the bound, the stalled client's queue would take ~9 MB a second.
        n = Node("ws.max_frame_bytes=65536", "subscriptions.retain_bytes=8388608", "subscriptions.max_stall_s=60")

        async def go():
            assert n.req("POST", "/table", {"name": "w", "fields": [{"name": "s", "type": "str", "size": 200}]})[0] == 201
            st, body, _ = n.req("POST", "/table/w/records", {"records": [{"s": "a"} for _ in range(2000)]})
            ids = body["ids"]
            loop = asyncio.get_running_loop()
            stop = time.time() + 12

            def writer():
                k = 0
                while time.time() < stop:
                    k += 1
                    ops = [{"method": "db.update", "params": {"table": "w", "id": i, "values": {"s": "%d-%s" % (k, "x" * 190)}}}
                           for i in ids]
                    st, body, _ = n.req("POST", "/rpc", {"jsonrpc": "2.0", "id": k, "method": "db.transaction", "params": {"ops": ops}})
                    assert st == 200 and "result" in body, body
                return k

            w = loop.run_in_executor(None, writer)
            await asyncio.sleep(3)  # the ring fills and the node warms up
            base = n.rss_kib()
            ws = await websockets.connect(n.url(), max_queue=1, read_limit=2 ** 12)
            await recv(ws)
            await ws.send(json.dumps({"op": "subscribe", "sub": "w", "table": "w"}))
            peak = base
            while time.time() < stop:
                peak = max(peak, n.rss_kib())
                await asyncio.sleep(0.25)
            rounds = await w
            figs = n.req("GET", "/stats")[1]["subscriptions"]
            self.assertGreater(rounds, 20, "the writer ran")
            self.assertEqual(figs["connections"], 1, "the stalled client is still attached")
            self.assertLess((peak - base) / 1024, 24, "RSS %d KiB -> %d KiB" % (base, peak))
            ws.transport.abort()  # no close handshake: it does not read

        try:
            run(go())
        finally:
            n.stop()

    def test_auth_by_first_frame_and_a_slow_consumer_is_closed_with_its_token(self):
        n = Node('http.auth_token="s3cret"', "subscriptions.max_stall_s=1", "ws.max_frame_bytes=4096")

        async def go():
            auth = {"Authorization": "Bearer s3cret"}
            assert n.req("POST", "/table", {"name": "big", "fields": [{"name": "s", "type": "str", "size": 200}]},
                         headers=auth)[0] == 201
            async with websockets.connect(n.url()) as ws:
                await ws.send(json.dumps({"op": "ping"}))
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await recv(ws)
                self.assertEqual(cm.exception.rcvd.code, 4001)
            async with websockets.connect(n.url()) as ws:
                await ws.send(json.dumps({"op": "auth", "token": "wrong"}))
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await recv(ws)
                self.assertEqual(cm.exception.rcvd.code, 4001)
            async with websockets.connect(n.url(), extra_headers=auth) as ws:
                self.assertEqual((await recv(ws))["type"], "hello")
            # More changes than one frame holds: reset, then a snapshot in bounded frames.
            async with websockets.connect(n.url(), extra_headers=auth) as ws:
                await recv(ws)
                rows, ready = await subscribe(ws, "b", "big")
                n.req("POST", "/table/big/records", {"records": [{"s": "r%d" % i + "z" * 150} for i in range(100)]}, headers=auth)
                seen = []
                r = await recv_until(ws, lambda f: f["type"] in ("reset", "delta"), keep=seen)
                self.assertEqual((r["type"], r["reason"]), ("reset", "too_many_changes"))
                got = []
                while True:
                    f = await recv(ws)
                    if f["type"] == "snapshot":
                        self.assertLessEqual(len(json.dumps(f)), 4096 + 512)
                        got += f["rows"]
                    if f["type"] == "ready":
                        break
                self.assertEqual((len(got), f["count"]), (len(rows) + 100, len(rows) + 100))
            # A client that stops reading: its frames pile up, then it is closed (4008) with
            # its resume token as the reason; the node stays responsive.
            ws = await websockets.connect(n.url(), max_queue=1, read_limit=2 ** 12, write_limit=2 ** 12)
            await ws.send(json.dumps({"op": "auth", "token": "s3cret"}))
            hello = await recv(ws)
            await ws.send(json.dumps({"op": "subscribe", "sub": "b", "table": "big"}))
            payload = {"records": [{"s": "z" * 200} for _ in range(2000)]}
            end = time.time() + 30
            code = None
            while time.time() < end and code is None:
                n.req("POST", "/table/big/records", payload, headers=auth)
                await asyncio.sleep(0.05)
                if ws.transport.is_closing() or ws.closed:
                    break
                try:
                    n.req("GET", "/health")
                except OSError:
                    pass
                figs = n.req("GET", "/health")[0]
                self.assertEqual(figs, 200)
                if ws.close_code is not None:
                    code = ws.close_code
            # Drain what is left to see the close frame.
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except (websockets.ConnectionClosed, asyncio.TimeoutError):
                pass
            self.assertEqual(ws.close_code, 4008)
            self.assertTrue(ws.close_reason.startswith(hello["epoch"] + ":"))
        try:
            run(go())
        finally:
            n.stop()


class StreamThreads(unittest.TestCase):
    """WebSocket and SSE sessions leave the request/response threads for subscriptions.threads
    threads of their own at subscriptions.nice: streaming yields the CPU to the tick, the actors
    and the HTTP threads (docs/benchmarks.md, subscriptions)."""

    def nice_of_threads(self, pid):
        out = {}
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            out[int(tid)] = int(fields[16])  # field 19 of stat: nice
        return out

    def test_streams_run_on_their_own_threads_at_the_configured_nice(self):
        n = Node("subscriptions.threads=3", "subscriptions.nice=7")
        try:
            self.assertEqual(n.req("POST", "/table", {"name": "s", "fields": [{"name": "v", "type": "i32"}]})[0], 201)
            self.assertEqual(n.req("POST", "/table/s/record", {"v": 1})[0], 201)
            nice = self.nice_of_threads(n.pid)
            self.assertEqual(sorted(nice.values()).count(7), 3, nice)  # started with the node
            self.assertIn(0, nice.values())  # the others keep the node's own priority

            async def go():
                async with websockets.connect(n.url(), subprotocols=["tickdb.v1"]) as ws:
                    await recv(ws)  # hello
                    rows, ready = await subscribe(ws, "a", "s")
                    self.assertEqual([r["v"] for r in rows], [1])
                    # Requests are answered while the stream is open, and its deltas come.
                    self.assertEqual(n.req("POST", "/table/s/record", {"v": 2})[0], 201)
                    f = await recv_until(ws, lambda f: f["type"] == "delta")
                    self.assertEqual([r["v"] for r in f["changes"]["a"]["ins"]], [2])
            run(go())
            c = http.client.HTTPConnection("127.0.0.1", n.port, timeout=10)
            c.request("GET", "/table/s/events")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            lines = [r.fp.readline().decode().rstrip("\n") for _ in range(12)]  # hello, snapshot, ...
            self.assertIn("event: snapshot", lines)
            c.close()
            self.assertEqual(self.nice_of_threads(n.pid), nice)  # no thread came or changed
        finally:
            n.stop()

    def test_the_keys_are_checked(self):
        for bad in ("subscriptions.nice=20", "subscriptions.threads=0"):
            p = subprocess.run([SERVER, "--set", bad, "--print-config"], capture_output=True, text=True, timeout=20)
            self.assertNotEqual(p.returncode, 0, bad)
            self.assertIn(bad.split("=")[0], p.stdout + p.stderr)


if __name__ == "__main__":
    SERVER = sys.argv[1]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
