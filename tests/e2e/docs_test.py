#!/usr/bin/env python3
"""The curl examples of docs/api.md, run in order against a fresh node: the page stays honest.

usage: docs_test.py SERVER_BINARY DOCS_API_MD [unittest args]

An example is a ```sh block whose command starts with `curl` (one command a block, `\\` continues
a line), with comment lines giving what it answers:
    # → 201                         the HTTP status (required)
    # X-Tickdb-Version: …           a header the answer must carry (… matches any value)
and, right after the block, the expected body:
    ```json   a JSON subset: objects may hold more keys; "…" matches any value, a string ending
              in "…" matches by prefix, an array ending in "…" may go on
    ```text   lines the body must contain
No body block: nothing is checked beyond the status (a 204 must then be empty).

Each command runs with curl itself (no shell), `localhost:8080` replaced by the node's
127.0.0.1:port, with -sS, a 10 s bound, and -o/-D/-w to capture body, headers and status. After
the last one, every route of http/rest_routes.cpp must have been called by some example (the
node's /stats counts requests by route).
"""
import json
import os
import re
import shlex
import subprocess
import sys
import unittest

from tickdb_node import NodeProcess, temp_dir

SERVER = None
DOC = None
SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ANY = "…"


class Example:
    def __init__(self, line, command):
        self.line = line  # 1-based line of the ```sh fence
        self.command = command
        self.status = None
        self.headers = []  # (name, value)
        self.body_kind = None  # "json" | "text"
        self.body = None


def parse_examples(text):
    """Every example of the page, in order; raises on a malformed one."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```sh":
            i += 1
            continue
        start = i + 1
        j = i + 1
        block = []
        while j < len(lines) and lines[j].strip() != "```":
            block.append(lines[j])
            j += 1
        i = j + 1
        commands, comments, cur = [], [], ""
        for raw in block:
            s = raw.strip()
            if not cur and s.startswith("#"):
                comments.append(s)
                continue
            if not s and not cur:
                continue
            cur += (" " if cur else "") + s
            if cur.endswith("\\"):
                cur = cur[:-1].rstrip()
                continue
            commands.append(cur)
            cur = ""
        if not commands or not commands[0].startswith("curl "):
            continue  # a shell block that is no example
        if len(commands) != 1:
            raise AssertionError("docs line %d: one curl command a block, found %d" % (start, len(commands)))
        ex = Example(start, commands[0])
        for c in comments:
            m = re.match(r"#\s*→\s*(\d{3})\b", c)
            if m:
                ex.status = int(m.group(1))
                continue
            m = re.match(r"#\s*([A-Za-z][A-Za-z0-9-]*):\s*(.*)$", c)
            if m:
                ex.headers.append((m.group(1), m.group(2).strip()))
        if ex.status is None:
            raise AssertionError("docs line %d: the example gives no status (# → 200)" % start)
        # The body block right after (blank lines allowed).
        k = i
        while k < len(lines) and not lines[k].strip():
            k += 1
        if k < len(lines) and lines[k].strip() in ("```json", "```text"):
            kind = lines[k].strip()[3:]
            m = k + 1
            body = []
            while m < len(lines) and lines[m].strip() != "```":
                body.append(lines[m])
                m += 1
            ex.body_kind = kind
            ex.body = "\n".join(body)
            if kind == "json":
                try:
                    ex.body = json.loads(ex.body)
                except ValueError as e:
                    raise AssertionError("docs line %d: the expected JSON does not parse: %s" % (k + 1, e))
            i = m + 1
        out.append(ex)
    return out


def match(expected, actual, path="$"):
    """None when `actual` holds `expected` (see the module doc), else what differs."""
    if expected == ANY:
        return None
    if isinstance(expected, str) and expected.endswith(ANY) and isinstance(actual, str):
        return None if actual.startswith(expected[:-1]) else "%s: %r does not start with %r" % (path, actual, expected[:-1])
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return "%s: expected an object, got %r" % (path, actual)
        for k, v in expected.items():
            if k not in actual:
                return "%s: no key %r in %r" % (path, k, actual)
            d = match(v, actual[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return "%s: expected an array, got %r" % (path, actual)
        open_end = bool(expected) and expected[-1] == ANY
        items = expected[:-1] if open_end else expected
        if len(actual) < len(items) or (not open_end and len(actual) != len(items)):
            return "%s: expected %d items%s, got %d: %r" % (path, len(items), " or more" if open_end else "", len(actual), actual)
        for n, (e, a) in enumerate(zip(items, actual)):
            d = match(e, a, "%s[%d]" % (path, n))
            if d:
                return d
        return None
    # bool is an int in Python: keep true and 1 apart.
    if type(expected) is bool or type(actual) is bool:
        return None if type(expected) is type(actual) and expected == actual else "%s: %r != %r" % (path, actual, expected)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return None if expected == actual else "%s: %r != %r" % (path, actual, expected)
    return None if expected == actual else "%s: %r != %r" % (path, actual, expected)


def registered_routes():
    with open(os.path.join(SOURCE, "http", "rest_routes.cpp")) as f:
        routes = set(re.findall(r'table_\.add\(\s*"([A-Z]+)",\s*"(/[^"]*)"', f.read()))
    assert len(routes) >= 30, "found only %d routes in rest_routes.cpp" % len(routes)
    return routes


class DocsExamples(unittest.TestCase):
    def test_matcher(self):
        self.assertIsNone(match({"a": 1, "b": ANY}, {"a": 1, "b": [2], "c": 3}))
        self.assertIsNotNone(match({"a": 1}, {"a": 2}))
        self.assertIsNotNone(match({"a": 1}, {"b": 1}))
        self.assertIsNone(match([1, ANY], [1, 2, 3]))
        self.assertIsNotNone(match([1], [1, 2]))
        self.assertIsNone(match("unique index…", "unique index 'x'"))
        self.assertIsNotNone(match(True, 1))
        self.assertIsNone(match(0.5, 0.5))

    def test_the_examples_of_api_md_answer_as_written(self):
        with open(DOC) as f:
            examples = parse_examples(f.read())
        self.assertGreaterEqual(len(examples), 40, "docs/api.md has fewer examples than it had")
        node = NodeProcess(SERVER)
        work = temp_dir("tickdb-docs-")
        failures = []
        try:
            host = "127.0.0.1:%d" % node.port
            for n, ex in enumerate(examples):
                argv = [a.replace("localhost:8080", host) for a in shlex.split(ex.command)]
                self.assertEqual(argv[0], "curl")
                for a in argv:
                    self.assertNotIn("localhost", a, "docs line %d: a host other than localhost:8080" % ex.line)
                body_file = os.path.join(work, "body%d" % n)
                head_file = os.path.join(work, "head%d" % n)
                run = argv + ["-sS", "--max-time", "10", "-o", body_file, "-D", head_file, "-w", "%{http_code}"]
                p = subprocess.run(run, capture_output=True, text=True, timeout=20)
                where = "docs/api.md line %d: %s" % (ex.line, ex.command)
                if p.returncode != 0:
                    failures.append("%s\n  curl exited %d: %s" % (where, p.returncode, p.stderr.strip()))
                    continue
                status = int(p.stdout.strip()[-3:])
                with open(body_file, "rb") as f:
                    body = f.read().decode("utf-8", "replace")
                with open(head_file) as f:
                    headers = {}
                    for h in f.read().splitlines():
                        if ":" in h:
                            k, v = h.split(":", 1)
                            headers[k.strip().lower()] = v.strip()
                if status != ex.status:
                    failures.append("%s\n  status %d, the page says %d; body: %s" % (where, status, ex.status, body[:300]))
                    continue
                for k, v in ex.headers:
                    got = headers.get(k.lower())
                    if got is None or (v != ANY and match(v, got)):
                        failures.append("%s\n  header %s: %r, the page says %r" % (where, k, got, v))
                if ex.body_kind == "json":
                    try:
                        actual = json.loads(body)
                    except ValueError:
                        failures.append("%s\n  the body is no JSON: %s" % (where, body[:300]))
                        continue
                    d = match(ex.body, actual)
                    if d:
                        failures.append("%s\n  %s\n  body: %s" % (where, d, body[:600]))
                elif ex.body_kind == "text":
                    for line in ex.body.split("\n"):
                        if line.strip() and line not in body:
                            failures.append("%s\n  the body lacks the line %r" % (where, line))
                elif status == 204 and body:
                    failures.append("%s\n  a 204 with a body: %s" % (where, body[:200]))
            self.assertEqual(failures, [], "%d of %d examples of docs/api.md do not answer as written:\n%s" % (
                len(failures), len(examples), "\n".join(failures)))
            # Every route is shown by some example.
            p = subprocess.run(["curl", "-sS", "--max-time", "10", "http://%s/stats" % host],
                               capture_output=True, text=True, timeout=20)
            called = {r["route"] for r in json.loads(p.stdout)["requests"]}
            missing = sorted("%s %s" % r for r in registered_routes() if "%s %s" % r not in called)
            self.assertEqual(missing, [], "routes no example of docs/api.md calls")
        finally:
            self.assertEqual(node.stop(), 0)


if __name__ == "__main__":
    SERVER = os.path.abspath(sys.argv[1])
    DOC = os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
