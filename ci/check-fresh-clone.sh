#!/usr/bin/env bash
# Try the README's two set-up commands as a new user would: a fresh clone, a fresh venv.
# The first command (install + run the quickstart with demo backends) is run in the
# background, answered with curl and `keepwarm stats`, then stopped by its process group;
# the second (install test dependencies + run the whole suite) must exit 0.
# Usage: bash ci/check-fresh-clone.sh [REPO]   (default: this checkout's committed HEAD)
set -euo pipefail
repo=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
work=$(mktemp -d /tmp/keepwarm-fresh.XXXXXX)
run_pid=
cleanup() {
    if [ -n "$run_pid" ]; then kill -TERM -- "-$run_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

readme_command() {   # the Nth ```sh block of the README (1-based)
    awk -v n="$1" '/^```sh/{k++; next} /^```/{next} k==n && NF {print; exit}' "$work/a/README.md"
}

git clone -q "$repo" "$work/a"
git clone -q "$repo" "$work/b"
run_cmd=$(readme_command 1)
test_cmd=$(readme_command 2)
echo "README command 1: $run_cmd"
echo "README command 2: $test_cmd"

cd "$work/a"
export KEEPWARM_SOCKET="$work/kw.sock"
setsid bash -c "$run_cmd" > "$work/run.log" 2>&1 < /dev/null &
run_pid=$!
ok=
for _ in $(seq 1 120); do
    if curl -fsS -m 2 http://127.0.0.1:8080/ > "$work/curl.out" 2>/dev/null; then ok=1; break; fi
    sleep 1
done
if [ -z "$ok" ]; then echo "quickstart did not answer on 127.0.0.1:8080"; cat "$work/run.log"; exit 1; fi
echo "curl through the quickstart: $(cat "$work/curl.out")"
.venv/bin/keepwarm stats
kill -TERM -- "-$run_pid"; wait "$run_pid" || true; run_pid=

cd "$work/b"
bash -c "$test_cmd"
echo "both README commands work on a fresh clone"
