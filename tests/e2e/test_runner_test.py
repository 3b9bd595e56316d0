#!/usr/bin/env python3
"""tickdb-test-runner, run as its users run it: scenario files written here, the runner's
output and exit code read back.

usage: test_runner_test.py RUNNER SERVER GAME_MODULE [unittest args]
Proves: a failing step is reported at its file:line with the expected and the actual status
and body, the tally `N passed, N failed, N skipped` and the exit code are right, parse errors
name their lines and run nothing, `crash` is a real SIGKILL that loses nothing acknowledged,
`restart` is a graceful stop (exit 0) and a new process on the same data, waits are bounded,
data dirs are removed (or kept with --keep). Only 127.0.0.1 is used; every wait is bounded.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tickdb_node  # noqa: E402

RUNNER = SERVER = GAME = None


class RunnerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tickdb-runner-test-")
        self.tmp = os.path.join(self.dir, "tmp")  # the runner's TMPDIR: its data dirs go here
        os.mkdir(self.tmp)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def scenario(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text.lstrip("\n"))
        return path

    def run_runner(self, *args, timeout=60):
        env = dict(os.environ, TMPDIR=self.tmp)
        cmd = [RUNNER, "--server", SERVER, "--module-dir", os.path.dirname(GAME)] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        self.stdout = p.stdout  # the report (the nodes' echoed output goes to stderr)
        self.stderr = p.stderr
        return p.returncode, p.stdout + p.stderr

    def last_line(self, out):
        return self.stdout.strip().splitlines()[-1]

    def test_a_failing_step_is_reported_at_its_line_with_expected_and_actual(self):
        f = self.scenario("fail.scenario", """
# line 1
POST /table {"name": "t", "fields": [{"name": "hp", "type": "i32"}]}
expect 201 {"name": "t"}

POST /table/t/record {"hp": 100}
expect 201 {"hp": 99}

GET /health
expect 200
""")
        g = self.scenario("status.scenario", """
GET /health
expect 200 {"status": "ok"}
GET /table/nope
expect 200 {"name": "nope"}
""")
        rc, out = self.run_runner(f, g)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL %s:5: POST /table/t/record\n" % f, out)
        self.assertIn('  expected: 201 {"hp":99}\n', out)
        self.assertIn('  actual:   201 {"id":1,"hp":100}\n', out)
        self.assertIn("body: at $.hp: expected 99, got 100", out)
        self.assertIn("FAIL %s:3: GET /table/nope\n" % g, out)
        self.assertIn('  expected: 200 {"name":"nope"}\n', out)
        self.assertRegex(out, r'  actual:   404 \{"error":\{"code":"not_found",')
        self.assertIn("status: expected 200, got 404", out)
        # fail: 1 passed, 1 failed, 1 skipped (the step after the failure); status: 1, 1, 0.
        self.assertIn("FAIL %s (1 passed, 1 failed, 1 skipped" % f, out)
        self.assertTrue(self.last_line(out).startswith("2 passed, 2 failed, 1 skipped (2 scenarios, 2 failed"), out)

    def test_a_passing_run_exits_zero_and_counts_every_step(self):
        f = self.scenario("pass.scenario", """
module tickdb_game
rpc setup
expect result {"created": true}
POST /table/players/records {"records": [{"name": "ana", "score": 5}, {"name": "bo", "score": 9}]}
expect 201 {"ids": ["$=ana", "$any"]}
GET /table/players/record/${ana}
expect 200 {"name": "ana", "score": 5, "nickname": "$absent"}
PUT /table/players/record/${ana} {"name": "$ana"}
expect 200 {"name": "$$ana"}
GET /table/players/records?limit=1
expect 200 {"records": [{"id": ${ana}}], "next_after": "$ne:null", "total": "$ge:2"}
GET /table/players/records
expect 200 {"records": [{"id": "$number"}, "..."]}
rpc leaderboard {"k": 2}
expect result [{"name": "bo"}, {"name": "$string", "score": "$lt:6"}]
rpc no_such_method
expect error -32601
POST /rpc [{"jsonrpc": "2.0", "id": 1, "method": "db.get", "params": {"table": "players", "id": ${ana}}}]
expect 200 [{"result": {"name": "$$ana"}}]
""")
        rc, out = self.run_runner(f)
        self.assertEqual(rc, 0, out)
        self.assertTrue(self.last_line(out).startswith("9 passed, 0 failed, 0 skipped (1 scenarios, 0 failed"), out)
        self.assertEqual(os.listdir(self.tmp), [], "the data dir must be removed after the run")

    def test_matching_mismatches_say_where(self):
        cases = [
            ('GET /health\nexpect 200 {"nope": "$any"}\n', "body: at $.nope: missing key 'nope'"),
            ('GET /health\nexpect 200 {"status": "$absent"}\n', "expected no key 'status'"),
            ('GET /tables\nexpect 200 {"tables": [{"name": "x"}]}\n', "body: at $.tables: expected 1 elements, got 0"),
            ('GET /health\nexpect 200 {"tick": "$lt:-1"}\n', "body: at $.tick: expected lt:-1, got"),
            ('GET /health\nexpect 200 {"status": "$ne:ok"}\n', 'expected anything but "ok", got "ok"'),
            ('GET /table/${nothing}\nexpect 200\n', "unknown variable ${nothing}"),
        ]
        files = [self.scenario("m%d.scenario" % i, text) for i, (text, _) in enumerate(cases)]
        rc, out = self.run_runner(*files)
        self.assertEqual(rc, 1, out)
        for f, (_, reason) in zip(files, cases):
            self.assertIn("FAIL %s:1: " % f, out)
            self.assertIn(reason, out)
        self.assertTrue(self.last_line(out).startswith("0 passed, 6 failed, 0 skipped"), out)

    def test_parse_errors_name_their_lines_and_nothing_runs(self):
        f = self.scenario("bad.scenario", """
config nodot=1
GET health
expect 200
POST /x {"a":
expect 201
rpc setup
expect result {"a": "$bogus"}
expect 200
frobnicate
wait 5y GET /health
expect 200
GET /health
""")
        rc, out = self.run_runner("-v", f)
        self.assertEqual(rc, 1, out)
        for line, msg in [(1, "'config' needs section.key=value"),
                          (2, "GET needs a path starting with '/'"),
                          (4, "JSON not closed before line 5"),
                          (7, 'unknown directive "$bogus"'),
                          (8, "'expect' without a request before it"),
                          (9, "unknown step 'frobnicate'"),
                          (10, "'wait' needs a duration"),
                          (12, "a request needs an 'expect' line after it")]:
            self.assertRegex(out, r"%s:%d: parse error: [^\n]*%s" % (re.escape(f), line, re.escape(msg)))
        self.assertEqual(out.count("parse error:"), 8, out)
        self.assertNotIn("node pid", out)  # nothing was started
        self.assertTrue(self.last_line(out).startswith("0 passed, 1 failed, 0 skipped"), out)

    def test_crash_is_a_sigkill_that_loses_nothing_acknowledged(self):
        rows = ", ".join('{"n": %d}' % i for i in range(500))
        f = self.scenario("crash.scenario", """
POST /table {"name": "t", "fields": [{"name": "n", "type": "i64"}]}
expect 201
GET /health
expect 200 {"epoch": "$=epoch"}
POST /table/t/records {"records": [%s]}
expect 201 {"ids": [1, "..."]}
POST /table/t/record {"n": -1}
expect 201 {"id": 501}
PUT /table/t/record/7 {"n": 700}
expect 200 {"n": 700}
DELETE /table/t/record/8
expect 204
crash
GET /health
expect 200 {"epoch": "$ne:${epoch}"}
GET /table/t
expect 200 {"count": 500}
GET /table/t/record/501
expect 200 {"n": -1}
GET /table/t/record/7
expect 200 {"n": 700}
GET /table/t/record/8
expect 404
POST /table/t/record {"n": 1}
expect 201 {"id": 502}
""" % rows)
        rc, out = self.run_runner("-v", "--node-output", "--keep", f)
        self.assertEqual(rc, 0, out)
        self.assertTrue(self.last_line(out).startswith("13 passed, 0 failed, 0 skipped"), out)
        m = re.search(r"crash: node pid (\d+) killed by signal 9 \(SIGKILL\)", out)
        self.assertTrue(m, out)
        # The nodes' own output: the first process never stopped gracefully (no "stopping"
        # between its start and the second start); the second one did, at the end.
        starts = re.split(r"node\| [^\n]*listening on[^\n]*\n", self.stderr)
        self.assertEqual(len(starts), 3, self.stderr)
        self.assertNotIn("stopping", starts[1], self.stderr)
        self.assertIn("SIGTERM: stopping", starts[2], self.stderr)
        pids = re.findall(r"node pid (\d+) listening", out)
        self.assertEqual(len(pids), 2, out)
        self.assertNotEqual(pids[0], pids[1])
        kept = re.search(r"kept the data dir of .*: (\S+)", out)
        self.assertTrue(kept and os.path.isdir(kept.group(1)), out)

    def test_restart_is_graceful_and_keeps_the_data(self):
        f = self.scenario("restart.scenario", """
module tickdb_game
rpc setup
expect result {"created": true}
POST /table/players/record {"name": "ana", "score": 3}
expect 201 {"id": "$=ana"}
restart
rpc leaderboard {"k": 5}
expect result [{"id": ${ana}, "name": "ana", "score": 3}]
restart
GET /table/players
expect 200 {"count": 1}
""")
        rc, out = self.run_runner("-v", "--node-output", f)
        self.assertEqual(rc, 0, out)
        self.assertEqual(len(re.findall(r"restart: node pid \d+ exited 0", out)), 2, out)
        self.assertEqual(out.count("SIGTERM: stopping"), 3, out)  # two restarts and the end
        self.assertEqual(len(set(re.findall(r"node pid (\d+) listening", out))), 3, out)
        self.assertTrue(self.last_line(out).startswith("6 passed, 0 failed"), out)

    def test_headers_reach_the_node_until_removed(self):
        f = self.scenario("auth.scenario", """
config http.auth_token=s3cret
GET /tables
expect 401 {"error": {"code": "unauthorized"}}
header Authorization: Bearer ${token}
GET /tables
expect 200 {"tables": []}
rpc db.procedures
expect result "$array"
header Authorization:
GET /tables
expect 401
""")
        rc, out = self.run_runner("--var", "token=s3cret", f)
        self.assertEqual(rc, 0, out)
        self.assertTrue(self.last_line(out).startswith("4 passed, 0 failed, 0 skipped"), out)

    def test_a_node_that_dies_fails_its_step_at_once_and_says_how(self):
        f = self.scenario("die.scenario", """
wait 20s GET /table/never
expect 200
GET /health
expect 200
""")
        env = dict(os.environ, TMPDIR=self.tmp)
        p = subprocess.Popen([RUNNER, "--server", SERVER, "-v", f], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
        try:
            t0 = time.monotonic()
            line = p.stdout.readline()
            m = re.search(r"node pid (\d+) listening", line)
            self.assertTrue(m, line)
            # The runner's child, named by its id (SIGKILL: ASan would catch a SIGSEGV).
            os.kill(int(m.group(1)), signal.SIGKILL)
            out = line + p.stdout.read()
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertLess(time.monotonic() - t0, 15, "the wait must end when the node is gone")
        self.assertEqual(p.returncode, 1, out)
        self.assertIn("FAIL %s:1: wait 20s GET /table/never" % f, out)
        self.assertIn("the node is gone (killed by signal 9 (SIGKILL))", out)
        self.assertNotIn("did not stop cleanly", out)
        self.assertTrue(out.strip().splitlines()[-1].startswith("0 passed, 1 failed, 1 skipped"), out)

    def test_sigint_stops_the_node_and_removes_its_data_dir(self):
        f = self.scenario("long.scenario", """
wait 20s GET /table/never
expect 200
GET /health
expect 200
""")
        env = dict(os.environ, TMPDIR=self.tmp)
        p = subprocess.Popen([RUNNER, "--server", SERVER, "-v", f], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
        try:
            line = p.stdout.readline()
            m = re.search(r"node pid (\d+) listening", line)
            self.assertTrue(m, line)
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out = line + p.stdout.read()
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertLess(time.monotonic() - t0, 10, out)
        self.assertEqual(p.returncode, 130, out)
        self.assertIn("; interrupted", out)
        self.assertFalse(os.path.exists("/proc/%s" % m.group(1)), "the node must be gone")
        self.assertEqual(os.listdir(self.tmp), [], "the data dir must be removed")

    def test_a_wait_is_bounded(self):
        f = self.scenario("wait.scenario", """
wait 300ms GET /table/never
expect 200
""")
        t0 = time.monotonic()
        rc, out = self.run_runner(f)
        self.assertEqual(rc, 1, out)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("FAIL %s:1: wait 0.3s GET /table/never" % f, out)
        self.assertIn("no match within 0.3 s (", out)
        self.assertIn("status: expected 200, got 404", out)

    def test_a_wait_passes_once_the_ticks_got_there(self):
        f = self.scenario("tick.scenario", """
config tick.rate_hz=100
GET /health
expect 200 {"tick": "$=t0"}
wait 5s GET /health
expect 200 {"tick": "$gt:${t0}"}
""")
        rc, out = self.run_runner(f)
        self.assertEqual(rc, 0, out)

    def test_a_module_that_is_not_there_fails_the_scenario(self):
        f = self.scenario("nomodule.scenario", """
module no_such_module
GET /health
expect 200
""")
        rc, out = self.run_runner(f)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL %s:1: module no_such_module" % f, out)
        self.assertIn("libno_such_module.so", out)
        self.assertTrue(self.last_line(out).startswith("0 passed, 1 failed, 1 skipped"), out)

    def test_url_mode_runs_against_a_running_node_and_refuses_restart(self):
        node = tickdb_node.NodeProcess(SERVER)
        try:
            f = self.scenario("url.scenario", """
GET /health
expect 200 {"status": "ok"}
restart
GET /health
expect 200
""")
            rc, out = self.run_runner("--url", "http://127.0.0.1:%d" % node.port, f)
            self.assertEqual(rc, 1, out)
            self.assertIn("FAIL %s:3: restart" % f, out)
            self.assertIn("restart needs a node the runner started (not --url)", out)
            self.assertTrue(self.last_line(out).startswith("1 passed, 1 failed, 1 skipped"), out)
        finally:
            node.stop()

    def test_usage_errors_exit_2(self):
        rc, out = self.run_runner(os.path.join(self.dir, "missing.scenario"))
        self.assertEqual(rc, 2, out)
        self.assertIn("no such file or directory", out)


if __name__ == "__main__":
    RUNNER, SERVER, GAME = (os.path.abspath(a) for a in sys.argv[1:4])
    unittest.main(argv=[sys.argv[0]] + sys.argv[4:], verbosity=2)
