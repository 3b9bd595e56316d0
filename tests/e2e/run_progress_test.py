#!/usr/bin/env python3
"""tools/run tells what it does while it builds (issue 14): a line per phase, CMake's progress
lines in a compact form (Makefiles and Ninja), "up to date" when nothing was built, and on a
failed build the compiler's errors and the path of the log that holds the whole output, with a
non-zero exit. A fake `cmake` first on PATH plays the build (nothing is compiled) and a fake
server in the build dir stands in for tickdb-server.

usage: run_progress_test.py [unittest args]
"""
import os
import stat
import subprocess
import tempfile
import textwrap
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAKE_CMAKE = textwrap.dedent("""\
    #!/usr/bin/env bash
    # configure: a line; build: the lines of $FAKE_BUILD_OUTPUT, then exit $FAKE_BUILD_EXIT.
    if [[ " $* " != *" --build "* ]]; then echo "-- Configuring done"; exit 0; fi
    cat "$FAKE_BUILD_OUTPUT"
    exit "${FAKE_BUILD_EXIT:-0}"
    """)

MAKE_OUTPUT = textwrap.dedent("""\
    [  2%] Building CXX object core/CMakeFiles/tickdb_core.dir/table.cpp.o
    [  4%] Building CXX object core/CMakeFiles/tickdb_core.dir/sub/schema.cpp.o
    [ 40%] Linking CXX shared library libtickdb_core.so
    [ 40%] Built target tickdb_core
    Scanning dependencies of target tickdb-server
    [ 99%] Building CXX object tools/server/CMakeFiles/tickdb-server.dir/main.cpp.o
    [100%] Linking CXX executable tickdb-server
    [100%] Built target tickdb-server
    """)

NINJA_OUTPUT = textwrap.dedent("""\
    [1/3] Building CXX object http/CMakeFiles/tickdb_http.dir/server.cpp.o
    [3/3] Linking CXX executable tools/cli/tickdb-cli
    """)

FAILED_OUTPUT = textwrap.dedent("""\
    [  7%] Building CXX object tools/cli/CMakeFiles/tickdb_cli_core.dir/csv.cpp.o
    /src/tools/cli/csv.cpp:96:14: error: expected primary-expression before ';' token
       96 | int broken = ;
    gmake[3]: *** [csv.cpp.o] Error 1
    """)


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


class RunProgress(unittest.TestCase):
    def run_tools_run(self, build_output, exit_code=0):
        tmp = tempfile.mkdtemp(prefix="tickdb-run-test-")
        self.addCleanup(subprocess.run, ["rm", "-rf", tmp])
        bindir, build = os.path.join(tmp, "bin"), os.path.join(tmp, "build")
        os.makedirs(bindir)
        os.makedirs(os.path.join(build, "tools", "server"))
        write_exe(os.path.join(bindir, "cmake"), FAKE_CMAKE)
        write_exe(os.path.join(build, "tools", "server", "tickdb-server"),
                  '#!/usr/bin/env bash\necho "fake server: $*"\n')
        out_file = os.path.join(tmp, "output")
        with open(out_file, "w") as f:
            f.write(build_output)
        env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"], TICKDB_BUILD_DIR=build,
                   FAKE_BUILD_OUTPUT=out_file, FAKE_BUILD_EXIT=str(exit_code),
                   CCACHE_DIR=os.path.join(tmp, "ccache"))
        p = subprocess.run([os.path.join(REPO, "tools", "run"), "--set", "http.port=9"],
                           capture_output=True, text=True, env=env, timeout=120,
                           stdin=subprocess.DEVNULL)
        return p, build

    def test_phases_and_compact_progress_then_the_server(self):
        p, build = self.run_tools_run(MAKE_OUTPUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.splitlines()
        for phase in ("run: [1/3] checking the Debian packages", "run: [2/3] configuring",
                      "run: [3/3] building tickdb-server tickdb_game tickdb-cli"):
            self.assertTrue(any(l.startswith(phase) for l in err), p.stderr)
        progress = [l for l in err if l.startswith("  [")]
        self.assertEqual(progress, ["  [  2%] core/table.cpp", "  [  4%] core/sub/schema.cpp",
                                    "  [ 40%] linking libtickdb_core.so",
                                    "  [ 99%] tools/server/main.cpp",
                                    "  [100%] linking tickdb-server"])
        self.assertFalse(any("Built target" in l or "Scanning" in l for l in err), p.stderr)
        with open(os.path.join(build, "run-build.log")) as f:
            log = f.read()
        self.assertIn("Configuring done", log)  # the log keeps everything
        self.assertIn("Built target tickdb-server", log)
        self.assertEqual(p.stdout.strip(), "fake server: --config config/tickdb.json --set http.port=9")

    def test_ninja_lines_and_up_to_date(self):
        p, _ = self.run_tools_run(NINJA_OUTPUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("  [ 1/3] http/server.cpp\n  [ 3/3] linking tickdb-cli\n", p.stderr)
        p, _ = self.run_tools_run("[100%] Built target tickdb-server\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("run: up to date\n", p.stderr)

    def test_failed_build_shows_the_error_and_the_log(self):
        p, build = self.run_tools_run(FAILED_OUTPUT, exit_code=2)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("run: the build FAILED", p.stderr)
        self.assertIn("csv.cpp:96:14: error: expected primary-expression", p.stderr)
        self.assertIn("run: the whole output is in %s/run-build.log" % build, p.stderr)
        self.assertEqual(p.stdout, "", "the server must not start after a failed build")


if __name__ == "__main__":
    unittest.main()
