#!/usr/bin/env bash
# make test: builds objmem in every configuration CI relies on and runs the
# suite in each.  Stages:
#   gcc-debug     gcc, OBJMEM_DEBUG=3 (all checks), warnings as errors
#   clang-release clang, OBJMEM_DEBUG=0, warnings as errors
#                 (both require libdw, so that native frames get lines)
#   asan-ubsan    gcc, AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan          gcc, ThreadSanitizer, the tests labelled threads
#   gc-stress     gcc, ASan+UBSan, a collection at every tracked allocation
#                 (all but the 10^7-object tests)
#   valgrind      memcheck over the subset listed in tests/CMakeLists.txt
#   dladdr        gcc, OBJMEM_LIBDW=OFF: native frames named through dladdr,
#                 and the packaging without libdw
#   fuzz          clang, libFuzzer + ASan + UBSan: fuzz_snapshot_load and
#                 fuzz_trace_read for 30 s each, from freshly made seed
#                 corpora; a crash fails it
# Ends with "stages: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
JOBS=$(nproc 2>/dev/null || echo 2)

# Install what the stages need when it is missing (idempotent; needs root).
need=()
for tool in cmake:cmake gcc:gcc clang:clang g++:g++ valgrind:valgrind \
            pkg-config:pkgconf; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
# libdw (elfutils) resolves native frames to file:line; found through
# pkg-config, so a missing pkg-config counts as missing libdw too.
pkg-config --exists libdw >/dev/null 2>&1 || need+=(libdw-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing tools (${need[*]}); install them or run as root" >&2
    exit 1
  fi
fi

# Chromium renders objmem-trace's HTML report in trace_html_browser (the test
# is skipped without it): installed when missing, and a failed install only
# skips that test.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing: chromium (for trace_html_browser)"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null ||
    echo "chromium could not be installed; trace_html_browser will be skipped" >&2
fi

# heaptrack is what trace_heaptrack compares objmem-trace's figures with
# (skipped without it): installed the same way.
if ! command -v heaptrack >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing: heaptrack (for trace_heaptrack)"
  apt-get update -qq && apt-get install -y -qq heaptrack >/dev/null ||
    echo "heaptrack could not be installed; trace_heaptrack will be skipped" >&2
fi

# libFuzzer ships apart from clang on Debian and Ubuntu (libclang-rt-N-dev):
# install it when a fuzzer does not link.
fuzzer_links() {
  local out rc
  out=$(mktemp) || return 1
  echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
    clang -fsanitize=fuzzer -x c - -o "$out" >/dev/null 2>&1
  rc=$?
  rm -f "$out"
  return $rc
}
if ! fuzzer_links; then
  rt_pkg="libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
  echo "installing: $rt_pkg (libFuzzer)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "$rt_pkg" >/dev/null
  else
    echo "clang -fsanitize=fuzzer does not link; install $rt_pkg or run as root" >&2
  fi
fi

passed=0
failed=0
failed_names=()
stage() {  # stage NAME CONFIGURE-ARGS... -- CTEST-ARGS...
  local name=$1; shift
  local cfg=() ct=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do cfg+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  ct=("$@")
  echo "=== stage $name"
  if cmake -S . -B "$BUILD/$name" -DOBJMEM_WERROR=ON "${cfg[@]}" >/dev/null &&
     cmake --build "$BUILD/$name" -j "$JOBS" >/dev/null &&
     (cd "$BUILD/$name" && ctest --output-on-failure -j "$JOBS" "${ct[@]}"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); failed_names+=("$name")
  fi
}

stage gcc-debug -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DOBJMEM_DEBUG=3 \
      -DOBJMEM_LIBDW=ON
stage clang-release -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release \
      -DOBJMEM_DEBUG=0 -DOBJMEM_LIBDW=ON
stage asan-ubsan -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DOBJMEM_DEBUG=2 \
      -DOBJMEM_SANITIZE=address,undefined
stage gc-stress -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DOBJMEM_DEBUG=2 \
      -DOBJMEM_SANITIZE=address,undefined -DOBJMEM_GC_STRESS=ON -- -LE "big|hygiene"
stage tsan -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DOBJMEM_DEBUG=1 \
      -DOBJMEM_SANITIZE=thread -- -L threads
stage valgrind -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DOBJMEM_DEBUG=1 \
      -DOBJMEM_VALGRIND=ON -- -L memcheck
stage dladdr -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DOBJMEM_DEBUG=2 \
      -DOBJMEM_LIBDW=OFF -- -R "native_frames|exports|install_consumers"

# The fuzz stage: the targets and their seed corpora, then 30 s of fuzzing
# over each (the corpora are made afresh each run, in the current format
# versions: snapshots by fuzz_make_corpus, trace files by objmem-trace
# recording a few commands, exactly and sampled).
trace_seeds() {
  local dir=$1 cli=$1/tools/trace/objmem-trace
  rm -rf "$dir/trace-corpus" && mkdir -p "$dir/trace-corpus" &&
    "$cli" run -q --interval 1 -o "$dir/trace-corpus/ls" -- ls -l / >/dev/null &&
    "$cli" run -q --frames 4 -o "$dir/trace-corpus/sort" -- \
      sort README.md >/dev/null &&
    "$cli" run -q --sample-rate 4096 -o "$dir/trace-corpus/sampled" -- \
      sh -c 'ls / | sort' >/dev/null
}
fuzz_stage() {
  local dir="$BUILD/fuzz"
  echo "=== stage fuzz"
  if cmake -S . -B "$dir" -DOBJMEM_WERROR=ON -DCMAKE_C_COMPILER=clang \
       -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOBJMEM_DEBUG=2 -DOBJMEM_FUZZ=ON \
       -DOBJMEM_BUILD_TESTS=OFF -DOBJMEM_BUILD_EXAMPLES=OFF >/dev/null &&
     cmake --build "$dir" -j "$JOBS" --target fuzz_snapshot_load \
       fuzz_make_corpus fuzz_trace_read objmem-trace >/dev/null &&
     rm -rf "$dir/corpus" && mkdir -p "$dir/corpus" &&
     "$dir/fuzz/fuzz_make_corpus" "$dir/corpus" &&
     "$dir/fuzz/fuzz_snapshot_load" -max_total_time=30 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" \
       >"$dir/fuzz.log" 2>&1 &&
     trace_seeds "$dir" &&
     "$dir/fuzz/fuzz_trace_read" -max_total_time=30 -max_len=262144 \
       -print_final_stats=1 -artifact_prefix="$dir/trace-" \
       "$dir/trace-corpus" >"$dir/fuzz-trace.log" 2>&1; then
    grep -E "^(Done|stat::number_of_executed_units)" "$dir/fuzz.log" \
      "$dir/fuzz-trace.log"
    passed=$((passed + 1))
  else
    local log
    for log in "$dir/fuzz.log" "$dir/fuzz-trace.log"; do
      [ -f "$log" ] && tail -n 40 "$log"
    done
    failed=$((failed + 1)); failed_names+=(fuzz)
  fi
}
fuzz_stage

[ $failed -gt 0 ] && echo "failed stages: ${failed_names[*]}"
echo "stages: $passed passed, $failed failed"
[ $failed -eq 0 ]
