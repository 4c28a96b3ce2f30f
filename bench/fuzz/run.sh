#!/bin/sh
# Fuzz _native/khttp.c with libFuzzer + AddressSanitizer + UBSan, then check that
# the pure-Python twin agrees with the C parser on every input the fuzzer kept.
#   bench/fuzz/run.sh [SECONDS]      (default 180)
# With clang (apt-get install -y clang) it is libFuzzer, coverage-guided. Without, gcc
# builds the same harness under the same sanitizers with driver.c, which runs the seeds
# and random mutations of them: no coverage guidance, and the corpus does not grow.
set -eu
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-180}
WORK=${FUZZ_WORK:-bench/fuzz/work}
mkdir -p "$WORK/corpus"
if command -v clang >/dev/null 2>&1; then
    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I_native bench/fuzz/fuzz_khttp.c _native/khttp.c -o "$WORK/fuzz_khttp"
else
    echo "clang not found: gcc, sanitizers and bench/fuzz/driver.c (random mutations, no coverage)" >&2
    gcc -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
        -I_native bench/fuzz/driver.c bench/fuzz/fuzz_khttp.c _native/khttp.c -o "$WORK/fuzz_khttp"
fi
python3 bench/fuzz/fuzz_inputs.py seeds "$WORK/seeds"
"$WORK/fuzz_khttp" -max_total_time="$SECONDS_TO_RUN" -max_len=512 -print_final_stats=1 \
    -artifact_prefix="$WORK/" "$WORK/corpus" "$WORK/seeds" 2>&1 | tee "$WORK/fuzz.log" | grep -E "^(#[0-9]+ +(INITED|DONE)|stat::|==|SUMMARY|.*runtime error)" || true
# A crash, leak, timeout or sanitizer report fails the run (the pipe hides the exit status).
if grep -qE "^(==[0-9]+==ERROR|SUMMARY:)" "$WORK/fuzz.log" || grep -q "runtime error" "$WORK/fuzz.log" \
        || ls "$WORK" | grep -qE "^(crash|leak|timeout)-"; then
    echo "fuzzing found a problem: see $WORK/fuzz.log and $WORK/crash-*" >&2
    exit 1
fi
python3 bench/fuzz/fuzz_inputs.py agree "$WORK/corpus"
python3 bench/fuzz/fuzz_inputs.py agree "$WORK/seeds"
