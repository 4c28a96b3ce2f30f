#!/bin/sh
# Fuzz _native/khttp.c with libFuzzer + AddressSanitizer + UBSan, then check that
# the pure-Python twin agrees with the C parser on every input the fuzzer kept.
#   bench/fuzz/run.sh [SECONDS]      (default 180; needs clang: apt-get install -y clang)
set -eu
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-180}
WORK=${FUZZ_WORK:-bench/fuzz/work}
mkdir -p "$WORK/corpus"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I_native bench/fuzz/fuzz_khttp.c _native/khttp.c -o "$WORK/fuzz_khttp"
python3 bench/fuzz/fuzz_inputs.py seeds "$WORK/seeds"
"$WORK/fuzz_khttp" -max_total_time="$SECONDS_TO_RUN" -max_len=512 -print_final_stats=1 \
    -artifact_prefix="$WORK/" "$WORK/corpus" "$WORK/seeds" 2>&1 | tee "$WORK/fuzz.log" | grep -E "^(#[0-9]+ +(INITED|DONE)|stat::|==|SUMMARY)" || true
# A crash, leak, timeout or sanitizer report fails the run (the pipe hides the exit status).
if grep -qE "^(==[0-9]+==ERROR|SUMMARY:)" "$WORK/fuzz.log" || ls "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-* >/dev/null 2>&1; then
    echo "fuzzing found a problem: see $WORK/fuzz.log and $WORK/crash-*" >&2
    exit 1
fi
python3 bench/fuzz/fuzz_inputs.py agree "$WORK/corpus"
