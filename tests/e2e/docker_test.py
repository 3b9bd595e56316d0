#!/usr/bin/env python3
"""What can be checked of docker/ without a Docker engine (issue 14): compose.yaml parses (with
Debian's python3-yaml) and describes two nodes that can join (services, named volumes on /data,
the config each mounts and that config accepted by `tickdb-server --print-config`, HTTP on
0.0.0.0 inside and published on loopback only, peers by service name, a healthcheck on
/health); the Dockerfile has its stages, a non-root USER, VOLUME /data, a HEALTHCHECK, the
EXPOSEd ports the configs use, and installs through `tools/install-deps` what the built
binaries link (checked with ldd and dpkg against the `runtime` group); docker/README.md says the
image is not built in CI.

usage: docker_test.py SERVER_BINARY CLI_BINARY GAME_MODULE [unittest args]
Nothing listens: the server only prints configs.
"""
import os
import sys

try:
    import yaml  # noqa: F401
except ImportError:  # a Python without Debian's packages first on PATH (e.g. pyenv)
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import json
import re
import shlex
import subprocess
import unittest

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKER = os.path.join(REPO, "docker")
SERVER = CLI = MODULE = None


def print_config(path):
    p = subprocess.run([SERVER, "--print-config", "--config", path], capture_output=True,
                       text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("tickdb-server --print-config --config %s: exit %d: %s"
                             % (path, p.returncode, p.stderr))
    return json.loads(p.stdout)


def dockerfile_instructions(path):
    """[(stage index, INSTRUCTION, arguments)] with continuations joined, comments dropped."""
    out, stage, pending = [], -1, ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = pending + line, ""
            word, _, args = line.strip().partition(" ")
            word = word.upper()
            if word == "FROM":
                stage += 1
            out.append((stage, word, args.strip()))
    return out


def exec_form(args):
    """A JSON array (exec form) or a shell string, as a list of words."""
    args = args.strip()
    if args.startswith("["):
        return json.loads(args)
    return shlex.split(args)


class Compose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(DOCKER, "compose.yaml")) as f:
            cls.compose = yaml.safe_load(f)
        cls.services = cls.compose["services"]

    def config_of(self, name):
        """The config file a service mounts at the path its command passes to --config."""
        svc = self.services[name]
        cmd = svc["command"]
        self.assertIn("--config", cmd, name)
        target = cmd[cmd.index("--config") + 1]
        for v in svc["volumes"]:
            src, dst = v.split(":")[0], v.split(":")[1]
            if dst == target:
                self.assertTrue(src.startswith("./"), "%s: bind-mount a file of docker/: %s" % (name, v))
                path = os.path.normpath(os.path.join(DOCKER, src))
                self.assertTrue(os.path.isfile(path), "%s mounts %s, which does not exist" % (name, path))
                self.assertTrue(v.endswith(":ro"), "%s: mount the config read-only: %s" % (name, v))
                return path
        self.fail("%s mounts nothing at %s (its --config)" % (name, target))

    def test_two_nodes_built_from_the_repo_with_the_dockerfile(self):
        self.assertEqual(sorted(self.services), ["node-a", "node-b"])
        for name, svc in self.services.items():
            build = svc["build"]
            self.assertEqual(os.path.normpath(os.path.join(DOCKER, build["context"])), REPO, name)
            self.assertTrue(os.path.isfile(os.path.join(REPO, build["dockerfile"])), name)
            self.assertEqual(svc["image"], self.services["node-a"]["image"], "one image for both")

    def test_data_on_named_volumes_one_per_node(self):
        declared = self.compose.get("volumes") or {}
        seen = set()
        for name, svc in self.services.items():
            data = [v for v in svc["volumes"] if v.split(":")[1] == "/data"]
            self.assertEqual(len(data), 1, "%s: one volume on /data: %s" % (name, svc["volumes"]))
            vol = data[0].split(":")[0]
            self.assertIn(vol, declared, "%s: /data on the named volume %r, declared at the top" % (name, vol))
            self.assertNotIn(vol, seen, "two nodes share the data volume %r" % vol)
            seen.add(vol)

    def test_healthcheck_asks_the_nodes_health_route(self):
        for name, svc in self.services.items():
            hc = svc["healthcheck"]
            test = hc["test"]
            self.assertIn(test[0], ("CMD", "CMD-SHELL"), name)
            cmd = " ".join(test[1:])
            port = print_config(self.config_of(name))["http"]["port"]
            # tickdb-cli health is GET /health; curl would need its URL.
            self.assertTrue(re.search(r"tickdb-cli .*--url http://127\.0\.0\.1:%d\b.* health$" % port, cmd)
                            or re.search(r"curl .*http://127\.0\.0\.1:%d/health" % port, cmd), cmd)
            for k in ("interval", "timeout", "retries", "start_period"):
                self.assertIn(k, hc, name)

    def test_configs_are_accepted_and_form_one_cluster(self):
        cfgs = {name: print_config(self.config_of(name)) for name in self.services}
        self.assertEqual(len({c["node"]["name"] for c in cfgs.values()}), len(cfgs), "node names must differ")
        self.assertEqual(len({c["cluster"]["name"] for c in cfgs.values()}), 1, "one cluster.name")
        for name, c in cfgs.items():
            svc = self.services[name]
            self.assertEqual(c["http"]["address"], "0.0.0.0", name)
            self.assertEqual(c["storage"]["data_dir"], "/data", name)
            cl = c["cluster"]
            self.assertNotEqual(cl["port"], 0, name)
            self.assertTrue(cl["allow_remote"], name)
            # The address a node publishes is the name its peers reach it by: the service name.
            self.assertEqual(cl["address"], name)
            self.assertEqual(svc.get("hostname", name), name)
            self.assertIn("cluster", svc["networks"])
            self.assertTrue(cl["peers"], "%s has no peers" % name)
            for peer in cl["peers"]:
                host, _, port = peer.rpartition(":")
                self.assertIn(host, self.services, "%s: peer %s is not a compose service" % (name, peer))
                self.assertNotEqual(host, name)
                self.assertEqual(int(port), cfgs[host]["cluster"]["port"], peer)
            # HTTP published on the host's loopback only; the cluster port never.
            for p in svc.get("ports", []):
                host_ip, _, rest = str(p).partition(":")
                self.assertEqual(host_ip, "127.0.0.1", "%s publishes %s beyond loopback" % (name, p))
                self.assertEqual(int(rest.split(":")[1]), c["http"]["port"], p)
                self.assertNotEqual(int(rest.split(":")[1]), cl["port"], "cluster port published: %s" % p)
        self.assertIn("cluster", self.compose.get("networks") or {})


class Dockerfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ins = dockerfile_instructions(os.path.join(DOCKER, "Dockerfile"))
        cls.stages = [args for _, w, args in cls.ins if w == "FROM"]
        cls.last = len(cls.stages) - 1

    def of(self, word, stage=None):
        return [a for s, w, a in self.ins if w == word and (stage is None or s == stage)]

    def test_multi_stage_on_bookworm(self):
        self.assertGreaterEqual(len(self.stages), 2)
        names = []
        for s in self.stages:
            m = re.match(r"debian:bookworm(-slim)?(@\S+)?\s+AS\s+(\w[\w.-]*)$", s, re.I)
            self.assertIsNotNone(m, "FROM %s: Debian bookworm, a named stage" % s)
            names.append(m.group(3))
        for a in self.of("COPY", self.last):
            m = re.search(r"--from=(\S+)", a)
            if m:
                self.assertIn(m.group(1), names[:-1], a)

    def test_packages_through_install_deps(self):
        build_runs = " ".join(self.of("RUN", 0))
        self.assertRegex(build_runs, r"tools/install-deps build\b")
        runtime_runs = " ".join(self.of("RUN", self.last))
        self.assertRegex(runtime_runs, r"install-deps runtime\b")
        self.assertTrue(any("tools/install-deps" in a for a in self.of("COPY", self.last)))

    def test_runs_as_a_non_root_user_with_data_on_a_volume(self):
        users = self.of("USER", self.last)
        self.assertTrue(users, "no USER in the runtime stage")
        self.assertNotIn(users[-1].split(":")[0], ("root", "0"))
        self.assertIn(users[-1].split(":")[0], " ".join(self.of("RUN", self.last)),
                      "the USER is made in the runtime stage")
        vols = [v for a in self.of("VOLUME", self.last) for v in exec_form(a)]
        self.assertIn("/data", vols)

    def test_healthcheck_exposes_and_default_config(self):
        hc = self.of("HEALTHCHECK", self.last)
        self.assertEqual(len(hc), 1)
        self.assertRegex(hc[0], r"CMD .*tickdb-cli.*http://127\.0\.0\.1:8080.*health")
        exposed = {int(p.split("/")[0]) for a in self.of("EXPOSE", self.last) for p in a.split()}
        with open(os.path.join(DOCKER, "node-a.json")) as f:
            a = json.load(f)
        self.assertIn(a["http"]["port"], exposed)
        self.assertIn(a["cluster"]["port"], exposed)
        self.assertEqual(exec_form(self.of("ENTRYPOINT", self.last)[-1]), ["tickdb-server"])
        # The image's own config (a single node) is accepted, binds 0.0.0.0, and is where CMD
        # points; the game module is where the configs load it from.
        cmd = exec_form(self.of("CMD", self.last)[-1])
        target = cmd[cmd.index("--config") + 1]
        copies = [exec_form(a) for a in self.of("COPY", self.last)]
        src = [c[0] for c in copies if c[-1] == target]
        self.assertEqual(len(src), 1, "no COPY to %s" % target)
        cfg = print_config(os.path.join(REPO, src[0]))
        self.assertEqual(cfg["http"]["address"], "0.0.0.0")
        self.assertEqual(cfg["storage"]["data_dir"], "/data")
        mod_dirs = [c[-1] for c in copies if any(x.endswith("libtickdb_game.so") for x in c[:-1])]
        self.assertEqual(len(mod_dirs), 1)
        for path in [os.path.join(REPO, src[0])] + [os.path.join(DOCKER, n) for n in ("node-a.json", "node-b.json")]:
            for m in print_config(path)["procedures"]["modules"]:
                self.assertEqual(os.path.dirname(m) + "/", mod_dirs[0].rstrip("/") + "/", path)
                self.assertEqual(os.path.basename(m), "libtickdb_game.so")

    def test_build_context_leaves_out_build_trees(self):
        with open(os.path.join(DOCKER, "Dockerfile.dockerignore")) as f:
            ignored = {l.strip() for l in f if l.strip() and not l.startswith("#")}
        self.assertTrue({".git", "build*"} <= ignored, ignored)


def libraries_of(binary):
    """What `binary` loads (ldd): (the Debian packages holding those libraries (dpkg -S), the
    basenames of tickdb's own shared libraries, which come from the build tree)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30, check=True).stdout
    pkgs, own = set(), set()
    for line in out.splitlines():
        m = re.search(r"=>\s+(/\S+)", line)
        if not m:
            continue
        lib = m.group(1)
        if os.path.basename(lib).startswith("libtickdb_"):
            own.add(os.path.basename(lib))
            continue
        cands = [lib, os.path.realpath(lib)]
        cands += [c[4:] if c.startswith("/usr/") else "/usr" + c for c in list(cands)]
        for c in cands:
            p = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True, timeout=30)
            if p.returncode == 0:
                pkgs.add(p.stdout.split(":")[0].strip())
                break
        else:
            raise AssertionError("%s loads %s, which no Debian package holds" % (binary, lib))
    # A sanitizer build links its runtimes; the image is a release build.
    return {p for p in pkgs if not re.match(r"lib(asan|ubsan|tsan|lsan)\d", p)}, own


def depends_closure(pkgs):
    """pkgs and everything they depend on (installed packages, Depends and Pre-Depends)."""
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            continue
        for alt in r.stdout.split(","):
            for name in alt.split("|"):
                name = name.strip().split(" ")[0].split(":")[0]
                if name:
                    todo.append(name)
    return seen


class RuntimePackages(unittest.TestCase):
    def test_runtime_group_covers_what_the_binaries_link(self):
        listed = subprocess.run([os.path.join(REPO, "tools/install-deps"), "--list", "runtime"],
                                capture_output=True, text=True, timeout=30, check=True).stdout.split()
        self.assertTrue(listed)
        covered = depends_closure(listed)
        for binary in (SERVER, CLI, MODULE):
            missing = libraries_of(binary)[0] - covered
            self.assertFalse(missing, "%s needs %s, which `tools/install-deps runtime` does not "
                             "install (nor anything it depends on)" % (binary, sorted(missing)))
        # ... and nothing for building: no -dev package, no compiler.
        for p in listed:
            self.assertFalse(p.endswith("-dev") or p in ("g++", "cmake", "make"), p)


class OwnLibraries(unittest.TestCase):
    def test_the_image_has_tickdbs_shared_libraries_on_the_loader_path(self):
        ins = dockerfile_instructions(os.path.join(DOCKER, "Dockerfile"))
        last = max(s for s, _, _ in ins)
        copied, ldconfig_after = {}, False
        for s, w, a in ins:
            if s != last:
                continue
            if w == "COPY" and "--from=" in a:
                words = exec_form(a)
                for src in words[1:-1]:
                    copied[os.path.basename(src)] = words[-1]
            if w == "RUN" and re.search(r"\bldconfig\b", a) and copied:
                ldconfig_after = True
        own = set()
        for binary in (SERVER, CLI, MODULE):
            own |= libraries_of(binary)[1]
        self.assertTrue(own, "tickdb links libtickdb_core.so and libtickdb_actors.so")
        for lib in own:
            # The build tree's RUNPATH is gone in the image: the loader must find them by its
            # cache, so they go to /usr/local/lib and ldconfig runs after the COPY.
            self.assertIn(lib, copied, "the runtime stage does not copy %s" % lib)
            self.assertEqual(copied[lib].rstrip("/"), "/usr/local/lib", lib)
        self.assertTrue(ldconfig_after, "no RUN ldconfig after copying the libraries")


class Readme(unittest.TestCase):
    def test_says_how_to_build_and_run_and_that_ci_does_not_build_it(self):
        with open(os.path.join(DOCKER, "README.md")) as f:
            text = f.read()
        self.assertIn("docker build -f docker/Dockerfile", text)
        self.assertIn("docker compose -f docker/compose.yaml up", text)
        self.assertRegex(text, r"not built in CI")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    SERVER, CLI, MODULE = (os.path.abspath(a) for a in sys.argv[1:4])
    unittest.main(argv=[sys.argv[0]] + sys.argv[4:])
