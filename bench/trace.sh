#!/usr/bin/env bash
# bench/trace.sh BUILD — the objmem-trace overhead table of `make bench`
# (docs/benchmarks.md, "objmem-trace overhead"), run by bench/run.sh after
# it has built BUILD/tools/trace/objmem-trace (with its preload library)
# and BUILD/bench/trace_workload.
#
# Three programs, each run four ways: untraced; `objmem-trace run` (exact:
# every allocation); `objmem-trace run --sample-rate 524288` (sampled); and
# `heaptrack`.  The programs: bench/trace_workload.c (allocation-heavy C),
# GNU sort on a generated text file, and python3 running
# bench/trace_python.py.  CPU time is user+sys of the whole process tree
# and wall time is elapsed time, both from GNU time on the top command;
# variants and programs are interleaved, BENCH_TRACE_ROUNDS rounds, and the
# minimum of each figure is kept.  Every traced run's output is checked
# against the untraced run's.  The issue's goals, per program:
#   exact: CPU slowdown at most 1/4 of heaptrack's;
#   sampled: CPU time at most 1.1x the untraced run's;
#   files: the exact and the sampled trace files smaller than heaptrack's.
# A missed goal is printed, never an exit status; heaptrack missing makes
# its column and the goals that need it "n/a".
#
# Environment: BENCH_TRACE_ROUNDS (interleaved rounds, default 7),
# BENCH_TRACE_WORKLOAD (trace_workload's ROUNDS, default 20),
# BENCH_TRACE_SORT_MB (size of sort's input in 10^6 bytes, default 100),
# BENCH_TRACE_PYTHON (trace_python.py's ROUNDS, default 4),
# BENCH_TRACE_PROGRAMS (default "workload sort python"); BENCH_COMMAND, the
# command for the docs row.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:?usage: trace.sh BUILD}
tracer="$build/tools/trace/objmem-trace"
workload="$build/bench/trace_workload"
work="$build/trace"
rounds=${BENCH_TRACE_ROUNDS:-7}
workload_n=${BENCH_TRACE_WORKLOAD:-20}
sort_mb=${BENCH_TRACE_SORT_MB:-100}
python_n=${BENCH_TRACE_PYTHON:-4}
programs_text=${BENCH_TRACE_PROGRAMS:-workload sort python}
read -r -a programs <<<"${programs_text//,/ }"
# jemalloc's default rate: one sample per 512 KiB allocated.
sample_rate=524288

for count in "$rounds" "$workload_n" "$sort_mb" "$python_n"; do
    if ! [[ $count =~ ^[1-9][0-9]{0,4}$ ]]; then
        echo "trace.sh: BENCH_TRACE_ROUNDS, _WORKLOAD, _SORT_MB and _PYTHON take whole numbers from 1 to 99999, not '$count'" >&2
        exit 2
    fi
done
((${#programs[@]})) || { echo "trace.sh: BENCH_TRACE_PROGRAMS names no program" >&2; exit 2; }
for prog in "${programs[@]}"; do
    case $prog in
        workload | sort | python) ;;
        *)
            echo "trace.sh: BENCH_TRACE_PROGRAMS takes 'workload', 'sort' and/or 'python', not '$prog'" >&2
            exit 2
            ;;
    esac
done
for file in "$tracer" "$workload" /usr/bin/time; do
    [ -x "$file" ] || { echo "trace.sh: $file is missing (run through bench/run.sh)" >&2; exit 1; }
done
heaptrack_missing=
heaptrack_version=
if command -v heaptrack >/dev/null; then
    heaptrack_version=$(heaptrack --version 2>/dev/null | head -n 1)
else
    heaptrack_missing="not installed"
fi
# sort's order and speed depend on the locale: C compares bytes, and is the
# same on every machine.
export LC_ALL=C
mkdir -p "$work"

# ---- the programs ---------------------------------------------------------------
# cmd_PROG: the command line (an array, read by run_one through a nameref,
# which shellcheck cannot follow: hence its SC2034 exceptions);
# label[PROG]: its name in the table; check[PROG]: how its output is
# compared: "stdout TEXT" (its standard output's line holding TEXT;
# heaptrack adds lines of its own) or "file PATH" (a checksum of the file
# it wrote); env_of[PROG]: variables set for it in every variant.
declare -A label check env_of
# shellcheck disable=SC2034
cmd_workload=("$workload" "$workload_n")
label[workload]="trace_workload $workload_n"
check[workload]="stdout trace_workload: checksum"

# sort: a file of random-looking lines of 8 to 71 base32 characters, made
# once and kept (its name carries its size).  The generator is Python's
# Mersenne Twister with a fixed seed, which gives the same bytes with every
# CPython 3.9 or later; awk's rand() differs between awks.
# --parallel=1: by default sort uses both vCPUs for one input this size,
# and the second is the one heaptrack's interpreter and compressor (and the
# machine's other jobs) need, so the untraced run's CPU and wall times would
# depend on who else wants that CPU.  One thread measures the tracers' cost,
# not the scheduler's.  -S 1G: the buffer size sort would otherwise choose
# from the memory free at the time; with 1 GiB the default input is sorted
# in memory, with no temporary files.  GNU sort makes few allocations (a buffer, the
# line table): this is the case of a real program that does not allocate
# much, where the tracers' fixed costs show.
if [[ " ${programs[*]} " == *" sort "* ]]; then
    sort_input="$work/sort-input-${sort_mb}MB.txt"
    if [ ! -s "$sort_input" ]; then
        echo "trace.sh: writing $sort_input ..." >&2
        python3 - "$((sort_mb * 1000000))" "$sort_input.tmp" <<'EOF'
import base64, random, sys
size, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
done = 0
with open(path, "wb") as f:
    while done < size:
        text = base64.b32encode(rng.randbytes(5 * 8192))
        lines, at = [], 0
        for n in rng.randbytes(1024):
            lines.append(text[at:at + 8 + n % 64])
            at += 8 + n % 64
        data = b"\n".join(lines) + b"\n"
        f.write(data)
        done += len(data)
EOF
        mv "$sort_input.tmp" "$sort_input"
    fi
    # shellcheck disable=SC2034
    cmd_sort=(sort --parallel=1 -S 1G -o "$work/sorted.txt" "$sort_input")
    label[sort]="sort, $sort_mb MB, $(wc -l <"$sort_input") lines"
    check[sort]="file $work/sorted.txt"
fi

# python3: the interpreter itself (sys.executable), not a wrapper such as
# pyenv's shim, which is a shell script that would be traced too.
# PYTHONMALLOC=malloc in every variant, the untraced one included: with the
# default pymalloc, objects of up to 512 bytes come from 256 KiB arenas and
# the tracers would see a few thousand calls, measuring only their fixed
# costs (as sort does); with malloc, every object is a malloc and a free, as
# in a C program (the setting Python's documentation gives for memory
# debuggers such as Valgrind).  PYTHONHASHSEED=0 gives every run the same
# dict layouts.
py_exe=$(python3 -c 'import sys; print(sys.executable)')
# shellcheck disable=SC2034
cmd_python=("$py_exe" "$root/bench/trace_python.py" "$python_n")
label[python]="python3 trace_python.py $python_n"
check[python]="stdout trace_python: checksum"
env_of[python]="PYTHONMALLOC=malloc PYTHONHASHSEED=0"

variants=(untraced exact sampled heaptrack)
[ -z "$heaptrack_missing" ] || variants=(untraced exact sampled)

# ---- measurements ---------------------------------------------------------------
declare -A v
# run_one PROG VARIANT: one timed run; keep the minimum CPU and wall time
# as v[PROG:VARIANT:cpu] and v[PROG:VARIANT:wall], the maximum CPU time as
# v[PROG:VARIANT:cpu-worst] (how much the machine's noise spread the
# rounds: a verdict within that spread means little), the trace file's size as
# v[PROG:VARIANT:bytes], and heaptrack's allocation count.  A failed run or
# an output that differs from the untraced one fails the script.
run_one() {
    local prog=$1 variant=$2 out base="$work/$1-$2" kind what got user sys wall cpu
    local -n cmd="cmd_$prog"
    local -a env_vars pre=()
    read -r -a env_vars <<<"${env_of[$prog]:-}"
    case $variant in
        exact) out="$base.trace"; pre=("$tracer" run -q -o "$out" --) ;;
        sampled) out="$base.trace"; pre=("$tracer" run -q --sample-rate "$sample_rate" -o "$out" --) ;;
        heaptrack) out="$base"; pre=(heaptrack -o "$out") ;;
    esac
    rm -f "$base".*
    if ! env "${env_vars[@]}" /usr/bin/time -f '%U %S %e' -o "$base.time" \
             "${pre[@]}" "${cmd[@]}" >"$base.out" 2>"$base.err"; then
        cat "$base.err" >&2
        echo "trace.sh: $variant run of ${label[$prog]} failed: ${pre[*]} ${cmd[*]}" >&2
        exit 1
    fi
    # heaptrack writes OUT.zst, or OUT.gz without zstd.
    if [ "$variant" = heaptrack ]; then
        if [ -e "$base.zst" ]; then
            out="$base.zst"
        elif [ -e "$base.gz" ]; then
            out="$base.gz"
        else
            echo "trace.sh: heaptrack left no $base.zst or $base.gz" >&2
            exit 1
        fi
        v[$prog:allocations]=$(sed -n 's/^[[:space:]]*allocations:[[:space:]]*//p' "$base.err")
    fi
    [ -z "${out:-}" ] || v[$prog:$variant:bytes]=$(stat -c %s "$out")

    read -r kind what <<<"${check[$prog]}"
    if [ "$kind" = stdout ]; then
        got=$(grep -F "$what" "$base.out" || true)
    else
        got=$(cksum <"$what")
    fi
    if [ "$variant" = untraced ]; then
        [ -n "$got" ] || { echo "trace.sh: ${label[$prog]} printed no '$what'" >&2; exit 1; }
        v[$prog:expect]=${v[$prog:expect]:-$got}
    fi
    if [ "$got" != "${v[$prog:expect]}" ]; then
        echo "trace.sh: the $variant run of ${label[$prog]} gave '$got', untraced '${v[$prog:expect]}'" >&2
        exit 1
    fi

    read -r user sys wall <"$base.time"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    keep "$prog:$variant:cpu" "$cpu" "<"
    keep "$prog:$variant:wall" "$wall" "<"
    keep "$prog:$variant:cpu-worst" "$cpu" ">"
}

# keep KEY VALUE CMP: v[KEY] = VALUE when v[KEY] is unset or VALUE CMP
# v[KEY] holds, CMP being "<" (keep the minimum) or ">" (the maximum).
keep() {
    if [ -z "${v[$1]:-}" ] || awk -v x="$2" -v y="${v[$1]}" "BEGIN { exit !(x $3 y) }"; then
        v[$1]=$2
    fi
}

# The load average before and after: on a shared machine, the one figure
# that says how much the others were running.
load=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "measuring objmem-trace against heaptrack${heaptrack_missing:+ (missing: $heaptrack_missing)}: ${programs[*]}; $rounds rounds ..." >&2
# Each round starts the variants at the next one (untraced first, then
# exact first, ...), so that none always follows the same neighbour: a
# heaptrack run leaves its file's writeback behind it, for one.
nv=${#variants[@]}
for ((round = 0; round < rounds; round++)); do
    for prog in "${programs[@]}"; do
        for ((i = 0; i < nv; i++)); do
            run_one "$prog" "${variants[(round + i) % nv]}"
        done
    done
done

# The last trace files must read back: a fast recorder that writes what its
# reader refuses would make the table meaningless.
for prog in "${programs[@]}"; do
    for variant in exact sampled; do
        if ! "$tracer" report "$work/$prog-$variant.trace" --top 1 >/dev/null 2>"$work/$prog-$variant.report.err"; then
            cat "$work/$prog-$variant.report.err" >&2
            echo "trace.sh: objmem-trace report cannot read $work/$prog-$variant.trace" >&2
            exit 1
        fi
    done
done

load="$load at the start, $(cut -d ' ' -f 1-3 /proc/loadavg) at the end"

# ---- report ---------------------------------------------------------------------
command=${BENCH_COMMAND:-make bench}
for var in BENCH_TRACE_PROGRAMS BENCH_TRACE_PYTHON BENCH_TRACE_SORT_MB BENCH_TRACE_WORKLOAD BENCH_TRACE_ROUNDS; do
    if [ -n "${!var+set}" ]; then
        case ${!var} in
            *' '* | '') command="$var=\"${!var}\" $command" ;;
            *) command="$var=${!var} $command" ;;
        esac
    fi
done

{
    for key in "${!v[@]}"; do
        echo "$key ${v[$key]}"
    done
    for prog in "${programs[@]}"; do
        echo "program $prog ${label[$prog]}"
    done
} | awk -v date="$(date +%F)" -v cmd="$command" \
        -v commit="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)" \
        -v cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)" \
        -v ncpu="$(nproc)" -v kernel="$(uname -r)" -v load="$load" \
        -v py="$("$py_exe" -c 'import platform; print("CPython", platform.python_version())')" \
        -v sortv="$(sort --version | head -n 1)" -v rounds="$rounds" -v rate="$sample_rate" \
        -v ht="${heaptrack_version:-heaptrack missing: $heaptrack_missing}" \
        -v have_ht="$([ -z "$heaptrack_missing" ] && echo 1 || echo 0)" '
$1 == "program" { P[++np] = $2; L[$2] = substr($0, length($1 " " $2 " ") + 1); next }
{ V[$1] = $2 }
function fig(p, var, k) { return V[p ":" var ":" k] }
function size(b) {
    if (b == "") return "-"
    if (b < 10240) return sprintf("%d B", b)
    if (b < 10485760) return sprintf("%.1f KiB", b / 1024)
    return sprintf("%.1f MiB", b / 1048576)
}
function x(a, b) { return (a == "" || b == "" || b + 0 <= 0) ? "-" : sprintf("%.2f", a / b) }
END {
    printf "\nobjmem-trace overhead: CPU (user+sys, whole process tree) and wall time, best of %d interleaved rounds\n", rounds
    printf "%s  commit %s\n%s, %d CPUs, Linux %s; load %s\n%s; %s; %s\n\n", date, commit, cpu, ncpu, kernel, load, ht, sortv, py
    printf "  %-40s %-10s %8s %9s %8s %8s %8s %11s\n", "program", "variant", "CPU s", "(worst)", "wall s", "CPU x", "wall x", "file"
    split("untraced exact sampled heaptrack", W, " ")
    for (i = 1; i <= np; i++) {
        p = P[i]; c0 = fig(p, "untraced", "cpu"); w0 = fig(p, "untraced", "wall")
        for (j = 1; j <= 4; j++) {
            var = W[j]
            first = j == 1 ? L[p] : (j == 2 && V[p ":allocations"] != "" ? "(" V[p ":allocations"] " allocations)" : "")
            if (var == "heaptrack" && !have_ht) { printf "  %-40s %-10s %s\n", first, var, "missing"; continue }
            printf "  %-40s %-10s %8.2f %9s %8.2f %8s %8s %11s\n", first, var, fig(p, var, "cpu"), "(" fig(p, var, "cpu-worst") ")", fig(p, var, "wall"), \
                x(fig(p, var, "cpu"), c0), x(fig(p, var, "wall"), w0), size(fig(p, var, "bytes"))
        }
    }
    print ""
    printf "  CPU s: best of the rounds (worst in parentheses); sampled: --sample-rate %d;\n  allocations: as heaptrack counts them\n\n", rate
    goals = ""
    for (i = 1; i <= np; i++) {
        p = P[i]; c0 = fig(p, "untraced", "cpu")
        ce = fig(p, "exact", "cpu"); cs = fig(p, "sampled", "cpu"); ch = fig(p, "heaptrack", "cpu")
        be = fig(p, "exact", "bytes"); bs = fig(p, "sampled", "bytes"); bh = fig(p, "heaptrack", "bytes")
        printf "  %s\n", L[p]
        if (have_ht) {
            se = ce / c0; sh = ch / c0; limit = sh / 4
            g1 = se <= limit ? "met" : "missed"
            printf "    goal exact CPU slowdown <= heaptrack'"'"'s / 4    %.2fx, limit %.2fx (heaptrack %.2fx)  %s\n", se, limit, sh, \
                g1 == "met" ? "MET" : sprintf("MISSED (%.2fx the limit)", se / limit)
            # The same goal read on the time tracing adds: a program that
            # hardly allocates cannot meet the ratio of slowdowns, both being
            # close to 1; this reading can be met by any program.
            ae = ce - c0; ah = ch - c0
            g1a = ah > 0 && ae <= ah / 4 ? "met" : "missed"
            printf "    (on added CPU time: exact +%.2f s, heaptrack +%.2f s, ratio %s, limit 0.25  %s)\n", ae, ah, \
                (ah > 0 ? sprintf("%.3f", ae / ah) : "n/a"), toupper(g1a)
        } else {
            g1 = "n/a"; g1a = "n/a"
            printf "    goal exact CPU slowdown <= heaptrack'"'"'s / 4    n/a (heaptrack missing)\n"
        }
        ss = cs / c0
        g2 = ss <= 1.1 ? "met" : "missed"
        printf "    goal sampled CPU <= 1.1x untraced           %.2fx  %s\n", ss, \
            g2 == "met" ? "MET" : sprintf("MISSED (%.2fx the limit)", ss / 1.1)
        if (have_ht) {
            g3 = (be + 0 < bh + 0 && bs + 0 < bh + 0) ? "met" : "missed"
            printf "    goal files smaller than heaptrack'"'"'s           exact %s, sampled %s, heaptrack %s  %s\n", size(be), size(bs), size(bh), toupper(g3)
        } else {
            g3 = "n/a"
            printf "    goal files smaller than heaptrack'"'"'s           n/a (heaptrack missing)\n"
        }
        w0 = fig(p, "untraced", "wall")
        C[p] = sprintf("%s: %.2f / %.2f s; %s / %s; %s / %s; %s / %s; %s / %s / %s", L[p], c0, w0, \
            x(ce, c0), x(fig(p, "exact", "wall"), w0), x(cs, c0), x(fig(p, "sampled", "wall"), w0), \
            x(ch, c0), x(fig(p, "heaptrack", "wall"), w0), size(be), size(bs), size(bh))
        goals = goals (i > 1 ? "; " : "") p ": exact " g1 " (added time " g1a "), sampled " g2 ", files " g3
    }
    print ""
    print "row for the objmem-trace overhead table of docs/benchmarks.md (append it, never replace a row):"
    # One cell per program, in a fixed order, whichever were run.
    cells = ""
    split("workload sort python", F, " ")
    for (i = 1; i <= 3; i++) cells = cells " " (F[i] in C ? C[F[i]] : "not run") " |"
    printf "| %s | %s | `%s` | %s, %d CPUs, Linux %s, load %s | %s; %s; %s |%s %s |\n", \
        date, commit, cmd, cpu, ncpu, kernel, load, ht, sortv, py, cells, goals
}'
