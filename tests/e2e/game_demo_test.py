#!/usr/bin/env python3
"""Runs examples/game/demo.sh (issue 14, the game example end to end) against the built
binaries and checks what it prints: the tick ran, the watch saw deltas (and the corner's
deletions), the damage and the counts add up, and the leaderboard has its three players in
order of score with scores that add up to the entities left. The whole run must take < 30 s
(90 s under sanitizers, TICKDB_SANITIZE set).

usage: game_demo_test.py DEMO_SH SERVER_BINARY CLI_BINARY GAME_MODULE [unittest args]
The demo uses only 127.0.0.1 and bounds every wait; this test bounds the run itself.
"""
import os
import re
import subprocess
import sys
import time
import unittest

DEMO = SERVER = CLI = MODULE = None
BUDGET_S = 90 if os.environ.get("TICKDB_SANITIZE") else 30


class GameDemo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKDB_")}
        # (TICKDB_SANITIZE only sets this test's budget; the demo gets no TICKDB_* but its paths)
        env.update(TICKDB_SERVER=SERVER, TICKDB_CLI=CLI, TICKDB_GAME_MODULE=MODULE)
        t0 = time.monotonic()
        p = subprocess.run(["bash", DEMO], capture_output=True, text=True, env=env,
                           timeout=BUDGET_S + 30)
        cls.seconds = time.monotonic() - t0
        cls.rc, cls.out, cls.err = p.returncode, p.stdout, p.stderr

    def field(self, name):
        m = re.search(r"^  %s:\s+(.*)$" % re.escape(name), self.out, re.M)
        self.assertIsNotNone(m, "no '%s:' line in:\n%s" % (name, self.out))
        return m.group(1)

    def number(self, name):
        return int(re.match(r"\d+", self.field(name)).group(0))

    def test_runs_clean_within_budget(self):
        self.assertEqual(self.rc, 0, "demo failed:\n%s\n%s" % (self.out, self.err))
        self.assertTrue(self.out.rstrip().endswith("demo: ok"), self.out)
        self.assertLess(self.seconds, BUDGET_S)

    def test_world_is_made_and_ticks(self):
        self.assertEqual(self.number("entities spawned"), 100000)
        self.assertGreater(self.number("ticks run"), 0)
        moved = re.search(r"^  entity \d+ moved:\s+(\(.*?\)) -> (.*)$", self.out, re.M)
        self.assertIsNotNone(moved, self.out)
        self.assertNotEqual(moved.group(1), moved.group(2))

    def test_watch_saw_deltas(self):
        m = re.match(r"(\d+) \(ins (\d+), upd (\d+), del (\d+), out (\d+)\)", self.field("deltas seen"))
        self.assertIsNotNone(m, self.out)
        deltas, ins, upd, dels, out = map(int, m.groups())
        self.assertGreater(deltas, 0)
        self.assertGreater(ins + upd + dels + out, 0)
        # The corner's damage kills inside the watched region: the watch saw some of them go,
        # never more than were killed.
        self.assertGreater(dels, 0)
        self.assertLessEqual(dels, self.number("damage kills"))
        self.assertGreater(self.number("watch snapshot"), 0)

    def test_counts_add_up(self):
        spawned, killed = self.number("entities spawned"), self.number("damage kills")
        self.assertGreaterEqual(self.number("damage hits"), killed)
        self.assertGreater(killed, 0)
        self.assertEqual(self.number("entities left"), spawned - killed)

    def test_leaderboard(self):
        self.assertEqual(self.number("leaderboard rows"), 3)
        rows = re.findall(r"^    #(\d+) (\w+) (\d+)$", self.out, re.M)
        self.assertEqual([r[1] for r in rows], ["ana", "bob", "cyd"], self.out)  # 50/30/20 %
        scores = [int(r[2]) for r in rows]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertEqual(sum(scores), self.number("entities left"))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    DEMO, SERVER, CLI, MODULE = sys.argv[1:5]
    unittest.main(argv=[sys.argv[0]] + sys.argv[5:])
