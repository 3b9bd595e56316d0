#!/usr/bin/env python3
"""Black-box HTTP/1.1 conformance and session-machinery tests of tickdb-server (issue 10).

usage: http_conformance_test.py SERVER_BINARY GAME_MODULE [unittest args]

Starts real tickdb-server processes on free loopback ports (127.0.0.1 only) and speaks to
them as a client would, over raw sockets where http.client would hide what is on the wire:
  - HTTP/1.1 as RFC 9110/9112 says: HEAD, Expect: 100-continue, 204, Host, absolute-form
    targets; a JSON-RPC batch with one unreadable value;
  - the session machinery: pipelining, slow-loris, file descriptors, RSS;
  - /metrics fits Prometheus (`promtool check metrics`) with histograms.
Every wait is bounded by a deadline; nothing sleeps and hopes.
"""
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

from tickdb_node import NodeProcess, temp_dir

SERVER = None
GAME = None


class Node(NodeProcess):
    """A tickdb-server process on a free loopback port (tests/e2e/tickdb_node.py)."""

    def __init__(self, *sets):
        super().__init__(SERVER, *sets, data=temp_dir("tickdb-conf-"))

    def raw(self, timeout=10):
        return Raw(self.port, timeout)

    def req(self, method, target, body=None, headers=None):
        """One request on a fresh connection; returns (status, parsed JSON or text, Response)."""
        c = self.raw()
        try:
            c.send(request(method, target, body, headers))
            r = c.response(head=(method == "HEAD"))
        finally:
            c.close()
        return r.status, r.json_or_text(), r


def request(method, target, body=None, headers=None, host="127.0.0.1", version="HTTP/1.1"):
    """The bytes of one request. body: bytes, str or a JSON value. headers: list of pairs or a
    dict; Host is added unless host is None."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: " + host)
    hs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if body is not None:
        if not any(k.lower() == "content-type" for k, _ in hs):
            hs.append(("Content-Type", "application/json"))
        if not any(k.lower() == "content-length" for k, _ in hs):
            hs.append(("Content-Length", str(len(body))))
    lines += ["%s: %s" % (k, v) for k, v in hs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Response:
    def __init__(self, status, reason, headers, body, head_bytes):
        self.status, self.reason, self.headers, self.body, self.head_bytes = status, reason, headers, body, head_bytes

    def header(self, name):
        """The value of a header (None if absent; joined with ', ' if repeated)."""
        vals = [v for k, v in self.headers if k == name.lower()]
        return ", ".join(vals) if vals else None

    def json(self):
        return json.loads(self.body)

    def json_or_text(self):
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<%d %s %r%s>" % (self.status, self.reason, self.body[:120], "..." if len(self.body) > 120 else "")


class Raw:
    """A raw client connection reading responses exactly as framed on the wire."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.pos = 0

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("no complete answer within the deadline; have %r" % bytes(self.buf[self.pos:self.pos + 200]))
        self.sock.settimeout(min(left, self.timeout))
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            raise TimeoutError("no complete answer within the deadline; have %r" % bytes(self.buf[self.pos:self.pos + 200]))
        if not chunk:
            raise EOFError("connection closed by the node; unread %r" % bytes(self.buf[self.pos:self.pos + 200]))
        if self.pos > 1 << 20:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def _until(self, needle, deadline):
        while True:
            i = self.buf.find(needle, self.pos)
            if i >= 0:
                return i
            self._fill(deadline)

    def _take(self, n, deadline):
        while len(self.buf) - self.pos < n:
            self._fill(deadline)
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def unread(self):
        return bytes(self.buf[self.pos:])

    def response(self, head=False, timeout=None):
        """Reads one response (an interim 1xx one too). head: the answer to a HEAD (no body)."""
        deadline = time.time() + (timeout if timeout is not None else self.timeout)
        end = self._until(b"\r\n\r\n", deadline)
        head_bytes = bytes(self.buf[self.pos:end + 4])
        self.pos = end + 4
        lines = head_bytes[:-4].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError("not a status line (the previous answer's framing was wrong?): %r" % head_bytes[:160])
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip().lower(), v.strip()))
        r = Response(status, m.group(2) or "", headers, b"", head_bytes)
        if head or 100 <= status < 200 or status in (204, 304):
            return r
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                e = self._until(b"\r\n", deadline)
                size = int(bytes(self.buf[self.pos:e]).split(b";")[0], 16)
                self.pos = e + 2
                if size == 0:  # trailers, if any, up to an empty line
                    while True:
                        e = self._until(b"\r\n", deadline)
                        empty = e == self.pos
                        self.pos = e + 2
                        if empty:
                            break
                    break
                body += self._take(size, deadline)
                self._take(2, deadline)
            r.body = body
        elif cl is not None:
            r.body = self._take(int(cl), deadline)
        else:  # read to the end of the connection
            try:
                while True:
                    self._fill(deadline)
            except EOFError:
                pass
            r.body = bytes(self.buf[self.pos:])
            self.pos = len(self.buf)
        return r

    def quiet_for(self, seconds):
        """Waits up to `seconds` for bytes nobody asked for; returns what arrived (b"" if none)."""
        end = time.time() + seconds
        got = b""
        while True:
            left = end - time.time()
            if left <= 0:
                return got
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return got
            chunk = self.sock.recv(65536)
            if not chunk:
                return got
            got += chunk
            self.buf += chunk

    def closed_within(self, seconds):
        """True if the node closes the connection within `seconds` (data before the close is read)."""
        end = time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                try:
                    chunk = self.sock.recv(65536)
                except (ConnectionResetError, OSError):
                    return True
                if not chunk:
                    return True
                self.buf += chunk


def note(fmt, *args):
    """A measured figure, for the log (stderr, beside unittest's own lines)."""
    sys.stderr.write("  [" + (fmt % args) + "] ")
    sys.stderr.flush()


def wait_for(cond, seconds, step=0.05):
    """Polls cond() until it is true or the deadline passes; returns its last value."""
    end = time.time() + seconds
    while True:
        v = cond()
        if v or time.time() >= end:
            return v
        time.sleep(step)


def make_table(node, name, n, fields=None):
    """A table `name` with fields v (i32) and tag (str 8), holding n records with ids 1..n and
    v = id * 7."""
    st, body, _ = node.req("POST", "/table", {"name": name, "fields": fields or [
        {"name": "v", "type": "i32"}, {"name": "tag", "type": "str", "size": 8}]})
    assert st == 201, (st, body)
    if n:
        st, body, _ = node.req("POST", "/table/%s/records" % name,
                               {"records": [{"v": i * 7, "tag": "r%d" % i} for i in range(1, n + 1)]})
        assert st == 201 and body["ids"] == list(range(1, n + 1)), (st, str(body)[:200])


# ----------------------------------------------------------------------------------------------
# Item 5: HTTP/1.1 as RFC 9110/9112 says.
# ----------------------------------------------------------------------------------------------
class Http11(unittest.TestCase):
    MAX_BODY = 65536

    @classmethod
    def setUpClass(cls):
        cls.node = Node("http.max_body_bytes=%d" % cls.MAX_BODY, "procedures.modules=[" + json.dumps(GAME) + "]")
        make_table(cls.node, "h", 3)

    @classmethod
    def tearDownClass(cls):
        assert cls.node.stop() == 0

    def test_head_has_no_body_and_keeps_the_connection_usable(self):
        # (target, whether its body is the same from one request to the next)
        targets = [("/health", False), ("/tables", True), ("/table/h", True), ("/table/h/record/1", True),
                   ("/table/h/records?limit=2", True), ("/metrics", False), ("/stats", False),
                   ("/procedures", True), ("/openapi.json", True), ("/types", True), ("/relations", True)]
        for target, stable in targets:
            with self.subTest(target=target):
                c = self.node.raw()  # one connection per target: a wrong framing spoils only its own
                try:
                    c.send(request("GET", target))
                    g = c.response()
                    self.assertEqual(g.status, 200, (target, g))
                    c.send(request("HEAD", target))
                    h = c.response(head=True)
                    self.assertEqual(h.status, 200, "HEAD %s answered %r (GET answers 200)" % (target, h))
                    extra = c.quiet_for(0.3)
                    self.assertEqual(extra, b"", "HEAD %s: the answer carried %d body bytes: %r" % (target, len(extra), extra[:80]))
                    self.assertIsNotNone(h.header("content-length"), "HEAD %s: no Content-Length (GET sends %d)" % (target, len(g.body)))
                    if stable:
                        self.assertEqual(int(h.header("content-length")), len(g.body), "HEAD %s: Content-Length" % target)
                    else:
                        self.assertGreater(int(h.header("content-length")), 0)
                    self.assertEqual(h.header("content-type"), g.header("content-type"), target)
                    # The next request on the same keep-alive connection is answered as it should be.
                    c.send(request("GET", "/table/h/record/2"))
                    n = c.response()
                    self.assertEqual((n.status, n.json()), (200, {"id": 2, "v": 14, "tag": "r2"}), "after HEAD %s" % target)
                finally:
                    c.close()
        # HEAD of something missing: the GET's status, no body.
        c = self.node.raw()
        try:
            c.send(request("HEAD", "/table/h/record/999"))
            h = c.response(head=True)
            self.assertEqual(h.status, 404, h)
            self.assertEqual(c.quiet_for(0.3), b"", "HEAD answering 404 carried a body")
            c.send(request("GET", "/health"))
            self.assertEqual(c.response().status, 200)
        finally:
            c.close()

    def test_head_pipelined_with_gets(self):
        # HEAD between pipelined GETs: every answer framed right.
        c = self.node.raw()
        try:
            c.send(request("GET", "/table/h/record/1") + request("HEAD", "/table/h/record/1") +
                   request("HEAD", "/tables") + request("GET", "/table/h/record/3"))
            a = c.response()
            b = c.response(head=True)
            t = c.response(head=True)
            d = c.response()
            self.assertEqual((a.status, a.json()["id"]), (200, 1))
            self.assertEqual(b.status, 200, b)
            self.assertEqual(int(b.header("content-length") or -1), len(a.body))
            self.assertEqual(t.status, 200, t)
            self.assertEqual((d.status, d.json_or_text()), (200, {"id": 3, "v": 21, "tag": "r3"}))
        finally:
            c.close()

    def test_expect_100_continue(self):
        body = json.dumps({"v": 5, "tag": "cont"}).encode()
        c = self.node.raw()
        try:
            head = request("POST", "/table/h/record", body, [("Expect", "100-continue")])[:-len(body)]
            c.send(head)
            # curl waits 1 s for the interim answer before sending the body anyway: answer sooner.
            try:
                interim = c.response(timeout=0.9)
            except TimeoutError:
                self.fail("no '100 Continue' within 0.9 s of the headers of a request with 'Expect: 100-continue'")
            self.assertEqual(interim.status, 100, interim)
            self.assertTrue(interim.head_bytes.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.head_bytes)
            c.send(body)
            final = c.response()
            self.assertEqual(final.status, 201, final)
            self.assertEqual(final.json()["tag"], "cont")
            # The connection goes on.
            c.send(request("GET", "/table/h/record/%d" % final.json()["id"]))
            self.assertEqual(c.response().json()["tag"], "cont")
        finally:
            c.close()
        st, body, _ = self.node.req("DELETE", "/table/h/record/%d" % final.json()["id"])
        self.assertEqual(st, 204)

    def test_expect_100_continue_over_the_limit_answers_413_without_the_body(self):
        size = self.MAX_BODY * 4
        c = self.node.raw()
        try:
            c.send(b"POST /table/h/records HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % size)
            try:
                r = c.response(timeout=3)  # the body is never sent
            except TimeoutError:
                self.fail("no final answer within 3 s to 'Expect: 100-continue' with a body over http.max_body_bytes")
            self.assertEqual(r.status, 413, "the first answer must be the final 413, not %r" % r)
            self.assertEqual(r.json()["error"]["code"], "payload_too_large")
        finally:
            c.close()
        self.assertEqual(self.node.req("GET", "/table/h")[1]["count"], 3)

    def test_204_has_no_content_length_and_no_body(self):
        st, rec, _ = self.node.req("POST", "/table/h/record", {"v": 1})
        self.assertEqual(st, 201)
        c = self.node.raw()
        try:
            c.send(request("DELETE", "/table/h/record/%d" % rec["id"]))
            r = c.response()
            self.assertEqual(r.status, 204, r)
            self.assertIsNone(r.header("content-length"), "204 with Content-Length: %r" % r.head_bytes)
            self.assertIsNone(r.header("transfer-encoding"), "204 with Transfer-Encoding: %r" % r.head_bytes)
            self.assertEqual(c.quiet_for(0.3), b"", "204 with a body")
            c.send(request("GET", "/table/h/record/1"))
            self.assertEqual(c.response().json()["id"], 1)
        finally:
            c.close()

    def test_request_without_host_is_400(self):
        for name, data in [
                ("HTTP/1.1 without Host", b"GET /health HTTP/1.1\r\n\r\n"),
                ("HTTP/1.1 with two Host headers", b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")]:
            with self.subTest(name):
                c = self.node.raw()
                try:
                    c.send(data)
                    r = c.response()
                    self.assertEqual(r.status, 400, "%s answered %r" % (name, r))
                    self.assertEqual(r.json()["error"]["code"], "invalid_argument")
                finally:
                    c.close()
        # HTTP/1.0 has no Host requirement.
        c = self.node.raw()
        try:
            c.send(b"GET /health HTTP/1.0\r\n\r\n")
            r = c.response()
            self.assertEqual(r.status, 200, r)
        finally:
            c.close()

    def test_absolute_form_target_is_accepted(self):
        p = self.node.port
        c = self.node.raw()
        try:
            c.send(request("GET", "http://127.0.0.1:%d/health" % p, host="127.0.0.1:%d" % p))
            r = c.response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["status"], "ok")
            c.send(request("GET", "http://127.0.0.1:%d/table/h/records?limit=2" % p, host="127.0.0.1:%d" % p))
            r = c.response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual([x["id"] for x in r.json()["records"]], [1, 2])
            c.send(request("GET", "http://127.0.0.1:%d/table/h/record/3" % p, host="127.0.0.1:%d" % p))
            r = c.response()
            self.assertEqual((r.status, r.json_or_text()), (200, {"id": 3, "v": 21, "tag": "r3"}))
        finally:
            c.close()

    def test_rpc_batch_with_an_unreadable_value_answers_every_call(self):
        before = self.node.req("GET", "/table/h")[1]["count"]
        # 1e400 is no double: nlohmann cannot read the body at all; the call it is in fails
        # alone. (Built by hand: json.dumps cannot write 1e400.)
        batch = ('[{"jsonrpc":"2.0","id":1,"method":"db.get","params":{"table":"h","id":1}},'
                 '{"jsonrpc":"2.0","id":2,"method":"db.insert","params":{"table":"h","values":{"v":1e400}}},'
                 '{"jsonrpc":"2.0","id":3,"method":"db.get","params":{"table":"h","id":3}},'
                 '{"jsonrpc":"2.0","id":"four","method":"db.update","params":{"table":"h","id":2,"values":{"v":-1e400}}}]')
        st, body, r = self.node.req("POST", "/rpc", batch)
        self.assertEqual(st, 200, body)
        self.assertIsInstance(body, list, "a batch answers an array of answers, not %r" % (body,))
        self.assertEqual(len(body), 4, body)
        by_id = {a.get("id"): a for a in body}
        self.assertEqual(set(by_id), {1, 2, 3, "four"}, body)
        for a in body:
            self.assertEqual(a.get("jsonrpc"), "2.0", a)
        self.assertEqual(by_id[1].get("result"), {"id": 1, "v": 7, "tag": "r1"}, by_id[1])
        self.assertEqual(by_id[3].get("result"), {"id": 3, "v": 21, "tag": "r3"}, by_id[3])
        for i in (2, "four"):
            err = by_id[i].get("error")
            self.assertIsInstance(err, dict, by_id[i])
            self.assertNotIn("result", by_id[i])
            self.assertIsInstance(err.get("code"), int, err)
            self.assertIsInstance(err.get("message"), str, err)
            self.assertNotEqual(err["code"], -32700, "one unreadable value is not a parse error of the batch: %r" % err)
        # Nothing written by the bad calls.
        self.assertEqual(self.node.req("GET", "/table/h")[1]["count"], before)
        self.assertEqual(self.node.req("GET", "/table/h/record/2")[1], {"id": 2, "v": 14, "tag": "r2"})
        # Truly broken JSON still answers one parse error.
        st, body, _ = self.node.req("POST", "/rpc", '[{"jsonrpc":"2.0","id":1,"method":"db.get"')
        self.assertEqual(st, 200)
        self.assertEqual(body["error"]["code"], -32700, body)


# ----------------------------------------------------------------------------------------------
# Item 6: the session machinery.
# ----------------------------------------------------------------------------------------------
class Sessions(unittest.TestCase):
    def test_200_pipelined_in_one_write_answered_in_order(self):
        n = Node()
        try:
            make_table(n, "t", 200)
            c = n.raw(timeout=20)
            try:
                c.send(b"".join(request("GET", "/table/t/record/%d" % i) for i in range(1, 201)))
                for i in range(1, 201):
                    r = c.response(timeout=20)
                    self.assertEqual(r.status, 200, (i, r))
                    self.assertEqual(r.json(), {"id": i, "v": i * 7, "tag": "r%d" % i}, "answer %d out of order" % i)
                self.assertEqual(c.quiet_for(0.2), b"")
            finally:
                c.close()
        finally:
            self.assertEqual(n.stop(), 0)

    def test_slow_loris_is_closed_after_timeout_while_others_are_served(self):
        timeout_s = 2.0
        n = Node("http.timeout_s=%g" % timeout_s)
        try:
            make_table(n, "t", 10)

            def gets(count):  # count keep-alive GETs on one connection, one at a time
                c = n.raw()
                try:
                    t0 = time.time()
                    worst = 0
                    for i in range(count):
                        t1 = time.time()
                        c.send(request("GET", "/table/t/record/%d" % (i % 10 + 1)))
                        r = c.response(timeout=5)
                        assert r.status == 200, r
                        worst = max(worst, time.time() - t1)
                    return time.time() - t0, worst
                finally:
                    c.close()

            alone, _ = gets(2000)
            # 20 slow-loris connections, each sending one byte of an endless header every 0.5 s.
            trickle = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
            loris = []
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", n.port), timeout=5)
                loris.append({"sock": s, "t0": time.time(), "sent": 0, "closed": None})
            stop = threading.Event()

            def dribble():
                end = time.time() + 15
                while not stop.is_set() and time.time() < end:
                    open_ = [l for l in loris if l["closed"] is None]
                    if not open_:
                        return
                    for l in open_:
                        try:
                            l["sock"].send(trickle[l["sent"]:l["sent"] + 1])
                            l["sent"] += 1
                        except OSError:
                            l["closed"] = time.time() - l["t0"]
                    tick_end = time.time() + 0.5
                    while time.time() < tick_end:
                        socks = [l["sock"] for l in loris if l["closed"] is None]
                        if not socks:
                            return
                        ready, _, _ = select.select(socks, [], [], max(0, tick_end - time.time()))
                        for l in loris:
                            if l["closed"] is None and l["sock"] in ready:
                                try:
                                    data = l["sock"].recv(4096)
                                except OSError:
                                    data = b""
                                if not data:
                                    l["closed"] = time.time() - l["t0"]

            th = threading.Thread(target=dribble, daemon=True)
            th.start()
            try:
                time.sleep(0.3)  # the trickle has begun
                during, worst = gets(2000)
                still_open = sum(1 for l in loris if l["closed"] is None)
                th.join(timeout_s + 6)
            finally:
                stop.set()
                th.join(5)
                for l in loris:
                    l["sock"].close()
            closed = [l["closed"] for l in loris if l["closed"] is not None]
            note("2000 GETs: %.2f s alone, %.2f s beside slow loris (slowest %.0f ms); %d closed after %s s", alone, during,
                 worst * 1000, len(closed), "%.1f-%.1f" % (min(closed), max(closed)) if closed else "-")
            self.assertLess(alone, 10, "2000 GETs took %.2f s with no slow client" % alone)
            # A session stuck behind a slow client would stall for up to http.timeout_s.
            self.assertLess(worst, 0.5, "a GET beside 20 slow-loris connections took %.2f s" % worst)
            self.assertLess(during, max(5 * alone, alone + 1.0),
                            "2000 GETs took %.2f s beside 20 slow-loris connections (%.2f s alone)" % (during, alone))
            if during < timeout_s - 0.5:
                self.assertEqual(still_open, 20, "slow connections closed before http.timeout_s")
            times = sorted(l["closed"] for l in loris if l["closed"] is not None)
            self.assertEqual(len(times), 20, "%d of 20 slow-loris connections still open %.0f s after http.timeout_s=%g"
                             % (20 - len(times), 6, timeout_s))
            self.assertGreaterEqual(times[0], timeout_s * 0.75, "closed too soon: %r" % times)
            self.assertLessEqual(times[-1], timeout_s + 2.5, "closed too late: %r" % times)
            self.assertEqual(n.req("GET", "/health")[0], 200)
        finally:
            self.assertEqual(n.stop(), 0)

    def test_10000_connections_leave_the_fds_as_they_were(self):
        n = Node()
        try:
            make_table(n, "t", 10)
            for _ in range(20):
                n.req("GET", "/health")
            before = n.fds()
            deadline = time.time() + 45
            ok = 0
            batch = 50
            for start in range(0, 10000, batch):
                self.assertLess(time.time(), deadline, "10,000 connections not done in 45 s (%d done)" % start)
                conns = []
                for i in range(start, start + batch):
                    s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
                    if i % 3 == 0:   # the node closes (Connection: close)
                        s.sendall(request("GET", "/table/t/record/%d" % (i % 10 + 1), headers=[("Connection", "close")]))
                    else:            # keep-alive: the client closes (on every third, with a reset)
                        s.sendall(request("GET", "/table/t/record/%d" % (i % 10 + 1)))
                    conns.append((i, s))
                for i, s in conns:
                    c = Raw.__new__(Raw)
                    c.sock, c.timeout, c.buf, c.pos = s, 10, bytearray(), 0
                    r = c.response()
                    if r.status == 200:
                        ok += 1
                    if i % 3 == 2:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    s.close()
            self.assertEqual(ok, 10000)
            # And 500 that go away in the middle of a request.
            for i in range(500):
                s = socket.create_connection(("127.0.0.1", n.port), timeout=10)
                s.sendall(b"GET /table/t/record/1 HTTP/1.1\r\nHo" if i % 2 else b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
                s.close()
            slack = 4
            wait_for(lambda: n.fds() <= before + slack, 10)
            after = n.fds()
            note("fds %d before, %d after %d connections", before, after, ok)
            self.assertLessEqual(after, before + slack, "open fds %d before, %d after 10,000 connections" % (before, after))
            self.assertEqual(n.req("GET", "/health")[0], 200)
        finally:
            self.assertEqual(n.stop(), 0)

    @unittest.skipIf(os.environ.get("TICKDB_SANITIZE"), "RSS under a sanitizer's quarantine is no measure (the release run checks it)")
    def test_200000_keep_alive_requests_leave_rss_flat(self):
        n = Node()
        try:
            make_table(n, "t", 1000)
            c = n.raw(timeout=20)
            deadline = time.time() + 60
            done = [0]

            def run(count, per_write=100):
                i = done[0]
                end = i + count
                while i < end:
                    self.assertLess(time.time(), deadline, "200,000 requests not done in 60 s (%d done)" % i)
                    k = min(per_write, end - i)
                    reqs = []
                    for j in range(i, i + k):
                        if j % 50 == 49:
                            reqs.append(b"GET /table/t/record/999999 HTTP/1.1\r\nHost: x\r\n\r\n")  # a 404
                        elif j % 50 == 48:
                            reqs.append(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                        else:
                            reqs.append(b"GET /table/t/record/%d HTTP/1.1\r\nHost: x\r\n\r\n" % (j % 1000 + 1))
                    c.send(b"".join(reqs))
                    for j in range(i, i + k):
                        r = c.response(timeout=20)
                        want = 404 if j % 50 == 49 else 200
                        if r.status != want:
                            self.fail("request %d answered %r, not %d" % (j, r, want))
                    i += k
                done[0] = i

            try:
                run(20000)
                rss0 = n.rss_kib()
                run(180000)
                rss1 = n.rss_kib()
                # The connection still answers right.
                c.send(request("GET", "/table/t/record/5"))
                self.assertEqual(c.response().json(), {"id": 5, "v": 35, "tag": "r5"})
            finally:
                c.close()
            note("%d requests; RSS %d KiB after 20,000, %d KiB at the end", done[0], rss0, rss1)
            self.assertLessEqual(rss1 - rss0, 8 * 1024,
                                 "RSS grew from %d KiB to %d KiB over 180,000 keep-alive requests" % (rss0, rss1))
        finally:
            self.assertEqual(n.stop(), 0)


# ----------------------------------------------------------------------------------------------
# Item 2: metrics fit Prometheus.
# ----------------------------------------------------------------------------------------------
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{'types': {name: type}, 'samples': [(name, {label: value}, float)]}"""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ.strip()
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            if not m:
                raise AssertionError("not a sample line: %r" % line)
            samples.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return {"types": types, "samples": samples}


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = n = Node("procedures.modules=[" + json.dumps(GAME) + "]")
        make_table(n, "m", 20)
        for i in range(1, 21):
            n.req("GET", "/table/m/record/%d" % i)
        n.req("GET", "/table/m/record/999")  # 404
        n.req("GET", "/nope")                 # no route
        n.req("PUT", "/health")               # 405
        n.req("POST", "/table/m/record", {"v": 1})
        n.req("POST", "/rpc", {"jsonrpc": "2.0", "id": 1, "method": "db.get", "params": {"table": "m", "id": 1}})
        n.req("GET", "/table/m/records?limit=5")
        for _ in range(5):
            n.req("GET", "/health")
        # Let some ticks run (60 Hz by default).
        assert wait_for(lambda: n.req("GET", "/health")[1]["tick"] >= 10, 10), "no ticks"
        st, cls.text, _ = n.req("GET", "/metrics")
        assert st == 200, st

    @classmethod
    def tearDownClass(cls):
        assert cls.node.stop() == 0

    def test_promtool_check_metrics(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.fail("promtool not found: install Debian's 'prometheus' package (tools/install-deps does)")
        p = subprocess.run([promtool, "check", "metrics"], input=self.text, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "promtool check metrics: rc %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
        self.assertEqual((p.stdout + p.stderr).strip(), "", "promtool check metrics complains:\n%s%s" % (p.stdout, p.stderr))

    def check_histogram(self, m, name):
        """Checks histogram `name`: every series (labels other than le) has buckets with le,
        +Inf equal to _count, cumulative counts, a _sum. Returns {labels: (count, sum)}."""
        self.assertEqual(m["types"].get(name), "histogram", "# TYPE %s histogram is missing (have %r)" % (name, m["types"].get(name)))
        series = {}
        for sname, labels, v in m["samples"]:
            key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            if sname == name + "_bucket":
                self.assertIn("le", labels, (sname, labels))
                series.setdefault(key, [None, None, {}])[2][labels["le"]] = v
            elif sname == name + "_sum":
                series.setdefault(key, [None, None, {}])[1] = v
            elif sname == name + "_count":
                series.setdefault(key, [None, None, {}])[0] = v
        self.assertTrue(series, "no samples of %s" % name)
        for key, (count, total, buckets) in series.items():
            self.assertIsNotNone(count, "%s_count%r missing" % (name, key))
            self.assertIsNotNone(total, "%s_sum%r missing" % (name, key))
            self.assertIn("+Inf", buckets, "%s_bucket%r with le=\"+Inf\" missing" % (name, key))
            self.assertEqual(buckets["+Inf"], count, "%s%r: +Inf bucket != _count" % (name, key))
            finite = sorted((float(le), c) for le, c in buckets.items() if le != "+Inf")
            self.assertGreaterEqual(len(finite), 5, "%s%r: only %d finite buckets" % (name, key, len(finite)))
            counts = [c for _, c in finite] + [buckets["+Inf"]]
            self.assertEqual(counts, sorted(counts), "%s%r: buckets not cumulative: %r" % (name, key, finite))
            self.assertGreaterEqual(total, 0)
        return {key: (v[0], v[1]) for key, v in series.items()}

    def test_request_latency_is_a_histogram_per_route(self):
        m = parse_metrics(self.text)
        series = self.check_histogram(m, "tickdb_http_request_duration_seconds")
        per_route = {}
        for key, (count, _) in series.items():
            labels = dict(key)
            self.assertIn("route", labels, "a request latency series without a route label: %r" % (key,))
            what = labels["route"] + " " + labels.get("method", "")
            per_route[what] = per_route.get(what, 0) + count
        record = [k for k in per_route if "record/{id}" in k and "GET" in k]
        self.assertTrue(record, "no series for the GET record route: %r" % sorted(per_route))
        self.assertGreaterEqual(sum(per_route[k] for k in record), 21)
        health = [k for k in per_route if "health" in k]
        self.assertTrue(health, sorted(per_route))
        self.assertGreaterEqual(sum(per_route[k] for k in health), 5)

    def test_tick_duration_and_lateness_are_histograms(self):
        m = parse_metrics(self.text)
        for name in ("tickdb_tick_duration_seconds", "tickdb_tick_lateness_seconds"):
            with self.subTest(name):
                series = self.check_histogram(m, name)
                self.assertGreaterEqual(sum(v[0] for v in series.values()), 10, "%s counts fewer than 10 ticks" % name)


if __name__ == "__main__":
    SERVER, GAME = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
