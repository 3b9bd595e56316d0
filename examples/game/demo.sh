#!/usr/bin/env bash
# The game example end to end, through tickdb-cli only: starts a node with the game module and
# `step` ticking, makes the world (setup), three players and 100,000 entities (spawn), watches
# a small corner of the world live (`tickdb-cli watch`, JSON lines) while the tick moves
# everything, hits the corner and the centre with `damage_area`, scores each player by the
# entities it has left, asks `leaderboard`, and prints what happened. It checks what it prints
# (deltas seen, counts that add up, leaderboard order) and exits non-zero on any failure.
#
# usage: examples/game/demo.sh [--server PATH] [--cli PATH] [--module PATH]
#                              [--entities N] [--seconds S]
#   paths also from TICKDB_SERVER, TICKDB_CLI, TICKDB_GAME_MODULE; default: the build tree
#   (TICKDB_BUILD_DIR, else build/ at the top of the repo). Needs jq (tools/install-deps).
# Only 127.0.0.1 is used, on a port the OS picks (http.port 0); the data dir is a temp dir,
# removed at exit; every wait has a deadline.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${TICKDB_BUILD_DIR:-$repo/build}"
server="${TICKDB_SERVER:-$build/tools/server/tickdb-server}"
cli_bin="${TICKDB_CLI:-$build/tools/cli/tickdb-cli}"
module="${TICKDB_GAME_MODULE:-$build/examples/game/libtickdb_game.so}"
entities=100000
seconds=3
start_timeout=20

die() {
  echo "demo: FAILED: $*" >&2
  exit 1
}
usage() {
  sed -n '9,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --server) server="$2"; shift 2 ;;
    --cli) cli_bin="$2"; shift 2 ;;
    --module) module="$2"; shift 2 ;;
    --entities) entities="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    -h | --help) usage ;;
    *) echo "demo: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ -x "$server" ]] || die "no tickdb-server at $server (build it: tools/run, or set TICKDB_SERVER / --server)"
[[ -x "$cli_bin" ]] || die "no tickdb-cli at $cli_bin (set TICKDB_CLI / --cli)"
[[ -f "$module" ]] || die "no game module at $module (set TICKDB_GAME_MODULE / --module)"
command -v jq >/dev/null || die "jq is needed (tools/install-deps installs it)"
[[ "$entities" =~ ^[0-9]+$ && "$entities" -ge 3 ]] || die "--entities must be a number >= 3"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 ]] || die "--seconds must be a whole number >= 1"
module="$(cd "$(dirname "$module")" && pwd)/$(basename "$module")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tickdb-demo.XXXXXX")"
server_pid=""
watch_pid=""
cleanup() {
  local rc=$?
  if [[ -n "$watch_pid" ]]; then kill "$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; fi
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # A graceful stop writes a last snapshot; give it a bound, then kill.
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f "$tmp/server.log" ]]; then
    echo "--- the node's log (last 20 lines) ---" >&2
    tail -n 20 "$tmp/server.log" >&2
    if [[ -s "$tmp/watch.err" ]]; then echo "--- watch's stderr ---" >&2; cat "$tmp/watch.err" >&2; fi
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the node ------------------------------------------------------------------------------
# config/game.json as a user runs it, with the module's real path, a free port and a temp dir.
# The log exists before the node starts: the background job opens it only once it runs, and
# the loop below reads it at once (CI saw sed fail on a log not yet created).
: >"$tmp/server.log"
"$server" --config "$repo/config/game.json" \
  --set "procedures.modules=[\"$module\"]" \
  --set http.address='"127.0.0.1"' --set http.port=0 \
  --set "storage.data_dir=\"$tmp/data\"" --set storage.snapshot_interval_s=0 \
  >"$tmp/server.log" 2>&1 &
server_pid=$!

port=""
deadline=$((SECONDS + start_timeout))
while :; do
  kill -0 "$server_pid" 2>/dev/null || die "tickdb-server exited at start"
  if [[ -z "$port" ]]; then
    port="$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$tmp/server.log" | head -n 1)"
  fi
  if [[ -n "$port" ]] && "$cli_bin" --url "http://127.0.0.1:$port" --timeout 1000 health >/dev/null 2>&1; then break; fi
  ((SECONDS < deadline)) || die "the node did not answer /health within ${start_timeout} s"
  sleep 0.05
done
url="http://127.0.0.1:$port"

cli() { "$cli_bin" --url "$url" --timeout 20000 "$@"; }
js() { cli --json "$@"; }
say() { printf '==> %s\n' "$*"; }

rate="$("$server" --config "$repo/config/game.json" --print-config | jq -r '.tick.rate_hz')"
say "node up on $url (config/game.json: the game module, step ticking at $rate Hz)"

# --- the world -----------------------------------------------------------------------------
js call setup >/dev/null
js insert players '{"name": "ana"}' '{"name": "bob"}' '{"name": "cyd"}' >"$tmp/players.json"
mapfile -t pids < <(jq -r '.ids[]' "$tmp/players.json")
[[ ${#pids[@]} -eq 3 ]] || die "expected 3 player ids, got: $(cat "$tmp/players.json")"
# 50% / 30% / 20% of the entities.
shares=($((entities * 5 / 10)) $((entities * 3 / 10)))
shares+=($((entities - shares[0] - shares[1])))
spawned=0
for i in 0 1 2; do
  n="$(js call spawn "{\"owner\": ${pids[$i]}, \"n\": ${shares[$i]}}" | jq -r '.spawned')"
  spawned=$((spawned + n))
done
total0="$(js list entities --limit 1 | jq -r '.total')"
[[ "$total0" == "$entities" && "$spawned" == "$entities" ]] ||
  die "spawned $spawned, the table holds $total0, asked for $entities"
say "setup, 3 players (ids ${pids[*]}), spawned ${shares[*]} entities: $total0 in the table"

first="$(js list entities --limit 1 --select pos)"
eid="$(jq -r '.records[0].id' <<<"$first")"
pos0="$(jq -c '.records[0].pos' <<<"$first")"
tick0="$(js health | jq -r '.tick')"

# --- watch a corner of the world while the tick moves everything ---------------------------
region='pos.x < -800 && pos.y < -800 && pos.z < -800'
"$cli_bin" --url "$url" watch entities --filter "$region" --select pos,hp --rate 10 \
  >"$tmp/watch.jsonl" 2>"$tmp/watch.err" &
watch_pid=$!
deadline=$((SECONDS + 10))
until grep -q '"type":"snapshot"' "$tmp/watch.jsonl" 2>/dev/null; do
  kill -0 "$watch_pid" 2>/dev/null || die "tickdb-cli watch exited: $(cat "$tmp/watch.err")"
  ((SECONDS < deadline)) || die "watch sent no snapshot within 10 s"
  sleep 0.05
done
snap_rows="$(grep -m1 '"type":"snapshot"' "$tmp/watch.jsonl" | jq '.rows | length')"
say "watching entities where $region: $snap_rows rows in the snapshot; ticking for $seconds s"
t0=$(date +%s.%N)
sleep "$seconds" # the demo's duration, not a readiness wait

# --- damage --------------------------------------------------------------------------------
corner="$(js call damage_area '{"center": {"x": -900, "y": -900, "z": -900}, "radius": 150, "amount": 150}')"
centre="$(js call damage_area '{"center": {"x": 0, "y": 0, "z": 0}, "radius": 400, "amount": 40}')"
hit1="$(jq -r '.hit' <<<"$corner")"; killed1="$(jq -r '.killed' <<<"$corner")"
hit2="$(jq -r '.hit' <<<"$centre")"; killed2="$(jq -r '.killed' <<<"$centre")"
killed=$((killed1 + killed2))
say "damage_area at the corner: hit $hit1, killed $killed1; at the centre: hit $hit2, killed $killed2"

# The corner's kills are in the watched region: wait (bounded) for watch to report deletions.
if ((killed1 > 0)); then
  # A bound, not a pause: it ends as soon as the deletion is seen (a loaded or sanitizer
  # build may take seconds).
  deadline=$((SECONDS + 20))
  # grep, not `jq -e`: jq 1.6 sets its status from the last line only, and the last line may
  # still be being written.
  until grep -qE '^\{"type":"delta".*"del":\[[0-9]' "$tmp/watch.jsonl" 2>/dev/null; do
    ((SECONDS < deadline)) || die "watch saw no deletion within 20 s of damage_area killing $killed1"
    sleep 0.05
  done
fi
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
watch_pid=""
t1=$(date +%s.%N)
tick1="$(js health | jq -r '.tick')"

# --- what happened -------------------------------------------------------------------------
ticks=$((tick1 - tick0))
elapsed="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
# What the watch saw: one JSON line per delta that changed the region.
read -r deltas ins upd del out < <(jq -rs '[.[] | select(.type == "delta")] |
  "\(length) \(map(.ins | length) | add // 0) \(map(.upd | length) | add // 0) \(map(.del | length) | add // 0) \(map(.out | length) | add // 0)"' \
  "$tmp/watch.jsonl")
after="$(js list entities --filter "id = $eid" --select pos --limit 1)"
pos1="$(jq -c '.records[0].pos // "killed"' <<<"$after")"
total1="$(js list entities --limit 1 | jq -r '.total')"

# Score each player by the entities it has left, then ask the module's leaderboard.
sum=0
for p in "${pids[@]}"; do
  left="$(js list entities --filter "owner = $p" --count exact --select owner --limit 1 | jq -r '.total')"
  sum=$((sum + left))
  js update players "$p" "{\"score\": $left}" >/dev/null
done
js call leaderboard '{"k": 3}' >"$tmp/leaderboard.json"
rows="$(jq 'length' "$tmp/leaderboard.json")"

echo
echo "tickdb game demo: what happened"
line() { printf '  %-20s %s\n' "$1:" "$2"; }
line "entities spawned" "$entities (3 players)"
line "ticks run" "$ticks in $elapsed s, each moving every entity (step)"
line "entity $eid moved" "$(jq -r '"(\(.x), \(.y), \(.z))"' <<<"$pos0") -> $(jq -r 'if type == "object" then "(\(.x), \(.y), \(.z))" else . end' <<<"$pos1")"
line "watch snapshot" "$snap_rows rows ($region)"
line "deltas seen" "$deltas (ins $ins, upd $upd, del $del, out $out)"
line "damage hits" "$((hit1 + hit2))"
line "damage kills" "$killed"
line "entities left" "$total1 (= $entities - $killed)"
line "leaderboard rows" "$rows (score = entities left)"
jq -r '.[] | "    #\(.id) \(.name) \(.score)"' "$tmp/leaderboard.json"

# --- checks --------------------------------------------------------------------------------
((ticks > 0)) || die "the tick did not run"
[[ "$pos0" != "$pos1" ]] || die "entity $eid did not move"
((deltas > 0)) || die "watch saw no delta"
((killed1 == 0 || del > 0)) || die "watch saw no deletion"
((del <= killed1)) || die "watch saw $del deletions in its region, damage_area killed only $killed1"
((total1 == entities - killed)) || die "$total1 entities left, expected $entities - $killed"
((sum == total1)) || die "players' entities add up to $sum, the table holds $total1"
((rows == 3)) || die "leaderboard has $rows rows, expected 3"
jq -e '[.[].score] as $s | $s == ($s | sort | reverse) and ($s | add) == '"$total1" \
  "$tmp/leaderboard.json" >/dev/null || die "leaderboard is not ordered by score, or its scores do not add up"
echo "demo: ok"
