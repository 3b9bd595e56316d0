#!/usr/bin/env python3
"""procedures.timeout_ms, procedures.max_write_bytes and procedures.max_alloc_bytes against
the real tickdb-server with a module whose procedures run away on purpose
(tests/modules/runaway.cpp): each call fails with procedure_failed naming the limit, nothing
of it is committed, and the node goes on (issue 15).

usage: procedure_limits_test.py SERVER_BINARY RUNAWAY_MODULE [unittest args]
Only 127.0.0.1 is used; every wait is bounded. Under sanitizers the memory budget is not
counted (ASan and TSan replace operator new), so that part is skipped there.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tickdb_node import NodeProcess  # noqa: E402

SERVER = MODULE = None


class ProcedureLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One node with the deadline, one with the size limits and none (a slow sanitizer
        # build must not run into the deadline before the limit under test).
        mod = "procedures.modules=" + json.dumps([MODULE])
        cls.timed = NodeProcess(SERVER, mod, "procedures.timeout_ms=300")
        cls.bounded = NodeProcess(SERVER, mod, "procedures.timeout_ms=0",
                                  "procedures.max_write_bytes=1048576",
                                  "procedures.max_alloc_bytes=67108864")
        for cls.node in (cls.timed, cls.bounded):
            cls.call("POST", "/table", {"name": "t", "fields": [{"name": "v", "type": "i64"}]})
            st, body = cls.call("POST", "/table/t/record", {"v": 7})
            assert st == 201, body

    @classmethod
    def tearDownClass(cls):
        cls.timed.stop()
        cls.bounded.stop()

    @classmethod
    def call(cls, method, path, body=None):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", cls.node.port, timeout=120)
        c.request(method, path, body=None if body is None else json.dumps(body))
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data else None)

    def rpc(self, method):
        t0 = time.time()
        st, body = self.call("POST", "/rpc", {"jsonrpc": "2.0", "id": 1, "method": method, "params": {}})
        self.assertEqual(st, 200, body)
        return body, time.time() - t0

    def assert_unchanged_and_alive(self):
        st, body = self.call("GET", "/table/t/records?limit=100")
        self.assertEqual(st, 200, body)
        self.assertEqual([(r["id"], r["v"]) for r in body["records"]], [(1, 7)])
        self.assertEqual(self.call("GET", "/health")[0], 200)
        st, body = self.call("POST", "/table/t/record", {"v": 8})  # writes go on
        self.assertEqual(st, 201, body)
        self.assertEqual(self.call("DELETE", "/table/t/record/%d" % body["id"])[0], 204)

    def test_a_procedure_past_its_deadline_is_stopped(self):
        type(self).node = self.timed
        body, took = self.rpc("test.spin")
        err = body["error"]["data"]
        self.assertEqual(err["code"], "procedure_failed", body)
        self.assertIn("procedures.timeout_ms (300 ms)", body["error"]["message"])
        self.assertLess(took, 10)
        self.assert_unchanged_and_alive()

    def test_a_procedure_that_writes_without_bound_is_refused(self):
        type(self).node = self.bounded
        body, _ = self.rpc("test.write_hog")
        self.assertEqual(body["error"]["data"]["code"], "procedure_failed", body)
        self.assertIn("procedures.max_write_bytes (1048576 bytes)", body["error"]["message"])
        self.assert_unchanged_and_alive()

    def test_a_procedure_that_allocates_without_bound_is_refused(self):
        if os.environ.get("TICKDB_SANITIZE"):
            self.skipTest("no allocation budget under sanitizers (TICKDB_SANITIZE=%s)"
                          % os.environ["TICKDB_SANITIZE"])
        type(self).node = self.bounded
        rss0 = self.node.rss_kib()
        for _ in range(3):
            body, _ = self.rpc("test.alloc_hog")
            self.assertEqual(body["error"]["data"]["code"], "procedure_failed", body)
            self.assertIn("resource_exhausted", body["error"]["message"])
            self.assertIn("procedures.max_alloc_bytes (67108864 bytes)", body["error"]["message"])
        # The memory went back as the call unwound: far below the 1 GiB it asked for.
        self.assertLess(self.node.rss_kib() - rss0, 256 * 1024)
        self.assert_unchanged_and_alive()


if __name__ == "__main__":
    SERVER, MODULE = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
