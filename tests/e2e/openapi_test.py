#!/usr/bin/env python3
"""/openapi.json of a live node, checked by a client generator's linter and against the routes.

usage: openapi_test.py SERVER_BINARY [unittest args]

- `redocly lint` (npm @redocly/cli, installed by tools/install-deps into .cache/npm) finds no
  error in the document of a node with tables of every field type, with and without
  http.auth_token; a deliberately broken copy is refused (so a lint that passes means something).
- Every route registered in http/rest_routes.cpp is in the document, and every operation of the
  document is served: for each path, the methods the node allows there (the Allow header of a
  405 to TRACE) are exactly the document's.
- Per table: <Table>Record with the field types, typed paths that reference it.
Only 127.0.0.1 is used; redocly runs with its telemetry off.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import unittest

from tickdb_node import NodeProcess, temp_dir

SERVER = None
SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REDOCLY = os.environ.get("TICKDB_REDOCLY") or os.path.join(SOURCE, ".cache", "npm", "node_modules", ".bin", "redocly")


def request(port, method, path, body=None, token=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Authorization": "Bearer " + token} if token else {}
    c.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data, r


def setup_catalog(port, token=None):
    def call(method, path, body):
        st, data, _ = request(port, method, path, body, token)
        assert st == 201, (path, st, data)
    call("POST", "/type", {"name": "vec3", "fields": [{"name": "x", "type": "f32"}, {"name": "y", "type": "f32"}, {"name": "z", "type": "f32"}]})
    call("POST", "/table", {"name": "players", "fields": [
        {"name": "hp", "type": "i32", "default": 100}, {"name": "pos", "type": "vec3"},
        {"name": "name", "type": "str", "size": 16}, {"name": "alive", "type": "bool"},
        {"name": "speed", "type": "f64"}, {"name": "level", "type": "u8"}, {"name": "gold", "type": "u64"}]})
    call("POST", "/table", {"name": "game_state", "fields": [{"name": "tick", "type": "i64"}, {"name": "mood", "type": "i8"}]})
    call("POST", "/table", {"name": "items", "fields": [{"name": "owner", "type": "u64"}, {"name": "weight", "type": "f32"}]})
    call("POST", "/relation", {"from_table": "items", "from_field": "owner", "to_table": "players"})


def lint(doc, name):
    """redocly lint on `doc`: (errors, warnings, output)."""
    d = temp_dir("tickdb-openapi-")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true", NO_COLOR="1")
    # Run in an empty directory: no redocly.yaml of anyone else's changes the rules.
    p = subprocess.run([REDOCLY, "lint", "--format=json", path], cwd=d, env=env,
                       capture_output=True, text=True, timeout=120)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        raise AssertionError("redocly lint gave no JSON (rc %d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr))
    problems = out.get("problems", [])
    errors = [x for x in problems if x.get("severity") == "error"]
    warnings = [x for x in problems if x.get("severity") == "warn"]
    if errors:
        assert p.returncode != 0, "redocly lint reported errors but exited 0"
    return errors, warnings, p


def describe(problems):
    return "\n".join("  %s %s: %s at %s" % (x["severity"], x["ruleId"], x["message"],
                                             ",".join(l.get("pointer", "?") for l in x.get("location", [])))
                     for x in problems)


def registered_routes():
    """(METHOD, pattern) of every table_.add in http/rest_routes.cpp."""
    with open(os.path.join(SOURCE, "http", "rest_routes.cpp")) as f:
        text = f.read()
    routes = set(re.findall(r'table_\.add\(\s*"([A-Z]+)",\s*"(/[^"]*)"', text))
    assert len(routes) >= 30, "the route parser found only %d routes: rest_routes.cpp changed shape?" % len(routes)
    return routes


class OpenApiLint(unittest.TestCase):
    """redocly lint on live documents: no errors."""

    @classmethod
    def setUpClass(cls):
        if not os.access(REDOCLY, os.X_OK):
            raise AssertionError("redocly not found at %s: run tools/install-deps (it installs @redocly/cli "
                                 "into .cache/npm)" % REDOCLY)

    def check_node(self, token=None):
        sets = ["http.auth_token=" + json.dumps(token)] if token else []
        node = NodeProcess(SERVER, *sets)
        try:
            setup_catalog(node.port, token)
            st, data, _ = request(node.port, "GET", "/openapi.json", token=token)
            self.assertEqual(st, 200)
            doc = json.loads(data)
        finally:
            self.assertEqual(node.stop(), 0)
        errors, warnings, p = lint(doc, "openapi.json")
        sys.stderr.write("redocly lint (%s): %d errors, %d warnings\n%s\n" % (
            "auth" if token else "open", len(errors), len(warnings), describe(warnings)))
        self.assertEqual(errors, [], "redocly lint reports errors:\n" + describe(errors))
        return doc

    def test_open_node_document_lints_without_errors(self):
        doc = self.check_node()
        self.assertEqual(doc["security"], [])
        self.assertNotIn("securitySchemes", doc["components"])
        self.assertTrue(doc["servers"][0]["url"].startswith("http://127.0.0.1:"))

    def test_document_with_a_token_lints_and_applies_the_bearer_scheme(self):
        doc = self.check_node(token="s3cret")
        self.assertEqual(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer")
        self.assertEqual(doc["security"], [{"bearer": []}])
        self.assertEqual(doc["paths"]["/health"]["get"]["security"], [])
        self.assertIn("401", doc["paths"]["/table/players/record/{id}"]["get"]["responses"])
        self.assertNotIn("s3cret", json.dumps(doc))

    def test_a_broken_document_is_refused(self):
        # The lint is worth something only if it fails: a dangling $ref and an operation
        # without responses must be errors.
        node = NodeProcess(SERVER)
        try:
            st, data, _ = request(node.port, "GET", "/openapi.json")
            doc = json.loads(data)
        finally:
            node.stop()
        doc["paths"]["/tables"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
            "$ref": "#/components/schemas/NoSuchSchema"}
        del doc["paths"]["/types"]["get"]["responses"]
        errors, _, p = lint(doc, "broken.json")
        self.assertNotEqual(errors, [], "redocly lint found nothing wrong in a broken document")
        self.assertNotEqual(p.returncode, 0)


class OpenApiRoutes(unittest.TestCase):
    """The document and the routes the node serves are the same set."""

    @classmethod
    def setUpClass(cls):
        cls.node = NodeProcess(SERVER)
        setup_catalog(cls.node.port)
        st, data, _ = request(cls.node.port, "GET", "/openapi.json")
        assert st == 200
        cls.doc = json.loads(data)

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def allowed(self, path):
        """The methods the node serves at a concrete path (from a 405's Allow), HEAD aside."""
        st, data, r = request(self.node.port, "TRACE", path)
        self.assertEqual(st, 405, "%s: %s %s (the node serves no route there)" % (path, st, data[:200]))
        return {m.strip() for m in r.getheader("Allow", "").split(",") if m.strip() and m.strip() != "HEAD"}

    @staticmethod
    def concrete(path):
        values = {"name": "players", "id": "1", "field": "hp", "index": "ix"}
        return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)

    def doc_operations(self):
        return {(m.upper(), path) for path, ops in self.doc["paths"].items() for m in ops}

    def test_every_registered_route_is_in_the_document(self):
        ops = self.doc_operations()
        missing = sorted(r for r in registered_routes() if r not in ops)
        self.assertEqual(missing, [], "routes of rest_routes.cpp missing from /openapi.json")

    def test_every_registered_route_is_served(self):
        # Keeps the source parse honest: what it found, the node answers.
        for method, pattern in sorted(registered_routes()):
            self.assertIn(method, self.allowed(self.concrete(pattern)), pattern)

    def test_every_path_of_the_document_serves_exactly_its_methods(self):
        registered = registered_routes()
        typed = 0
        for path, ops in self.doc["paths"].items():
            documented = {m.upper() for m in ops}
            self.assertEqual(self.allowed(self.concrete(path)), documented, path)
            for m in documented:
                if (m, path) not in registered:
                    # Only the typed paths of a table may go beyond the route table, each one
                    # an instance of a registered pattern.
                    self.assertRegex(path, r"^/table/(players|game_state|items)/")
                    generic = re.sub(r"^/table/\w+/", "/table/{name}/", path)
                    self.assertIn((m, generic), registered, path)
                    typed += 1
        self.assertEqual(typed, 3 * 8)

    def test_operation_ids_are_unique_and_every_ref_resolves(self):
        ids = [op["operationId"] for ops in self.doc["paths"].values() for op in ops.values()]
        self.assertEqual(len(ids), len(set(ids)))

        def refs(j):
            if isinstance(j, dict):
                for k, v in j.items():
                    if k == "$ref":
                        yield v
                    else:
                        yield from refs(v)
            elif isinstance(j, list):
                for v in j:
                    yield from refs(v)
        for r in set(refs(self.doc)):
            node = self.doc
            for part in r[2:].split("/"):
                self.assertIn(part, node, r)
                node = node[part]

    def test_typed_records_per_table(self):
        s = self.doc["components"]["schemas"]
        rec = s["PlayersRecord"]
        p = rec["properties"]
        self.assertEqual(set(rec["required"]), {"id", "hp", "pos", "name", "alive", "speed", "level", "gold"})
        self.assertEqual((p["hp"]["type"], p["hp"]["format"], p["hp"]["default"]), ("integer", "int32", 100))
        self.assertEqual((p["level"]["minimum"], p["level"]["maximum"]), (0, 255))
        self.assertEqual((p["gold"]["format"], p["gold"]["maximum"]), ("uint64", 18446744073709551615))
        self.assertEqual(p["name"]["maxLength"], 16)
        self.assertEqual(p["alive"]["type"], "boolean")
        self.assertEqual((p["speed"]["type"], p["speed"]["format"]), ("number", "double"))
        self.assertEqual(sorted(p["pos"]["properties"]), ["x", "y", "z"])
        self.assertEqual(s["GameStateRecord"]["properties"]["mood"]["minimum"], -128)
        get = self.doc["paths"]["/table/players/record/{id}"]["get"]
        self.assertEqual(get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
                         "#/components/schemas/PlayersRecord")
        page = self.doc["paths"]["/table/items/records"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        self.assertEqual(page["$ref"], "#/components/schemas/ItemsPage")
        # The typed answer is what the node answers.
        st, data, _ = request(self.node.port, "POST", "/table/players/record", {"name": "ana"})
        self.assertEqual(st, 201)
        self.assertEqual(set(json.loads(data)), set(rec["required"]))

    def test_document_follows_the_catalog(self):
        st, _, _ = request(self.node.port, "POST", "/table", {"name": "late", "fields": [{"name": "n", "type": "u16"}]})
        self.assertEqual(st, 201)
        st, data, _ = request(self.node.port, "GET", "/openapi.json")
        doc = json.loads(data)
        self.assertIn("LateRecord", doc["components"]["schemas"])
        self.assertIn("/table/late/record/{id}", doc["paths"])
        self.assertEqual(request(self.node.port, "DELETE", "/table/late")[0], 204)
        st, data, _ = request(self.node.port, "GET", "/openapi.json")
        self.assertNotIn("/table/late/record/{id}", json.loads(data)["paths"])


if __name__ == "__main__":
    SERVER = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)
