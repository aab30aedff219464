#!/usr/bin/env bash
# make demo: run the tour of every feature from a release build, then trace
# an unmodified program with objmem-trace: its top 10 sites and the HTML
# report.
set -euo pipefail
build=${1:-build/release}
"$build/examples/tour"

cli="$build/tools/trace/objmem-trace"
if [ ! -x "$cli" ]; then
  echo "objmem-trace was not built (Linux only): the tour ends here."
  exit 0
fi
# A program every Debian machine has: python3 building, encoding and
# decoding a JSON document; perl, which Debian always installs, where there
# is no python3.  By their full paths: a python3 found on PATH may be a
# script (a pyenv shim) that execs the interpreter, and the report would be
# the script's.
if [ -x /usr/bin/python3 ]; then
  what="python3 building a dict of 50000 entries, encoding it to JSON and back"
  # Every object from malloc: by default Python carves small objects out
  # of arenas it maps itself, and malloc sees only the large ones.
  export PYTHONMALLOC=malloc
  prog=(/usr/bin/python3 -c 'import json; d = {"key%d" % i: [i, str(i) * 3, {"n": i}] for i in range(50000)}; text = json.dumps(d); print("  %d entries, %d characters of JSON" % (len(json.loads(text)), len(text)))')
elif [ -x /usr/bin/perl ]; then
  what="perl building a hash of 50000 entries and sorting its keys"
  prog=(/usr/bin/perl -e 'my %h; $h{"key$_"} = [$_, "v" x ($_ % 50)] for 1 .. 50000; my @k = sort keys %h; printf "  %d keys sorted\n", scalar @k')
else
  echo "Neither /usr/bin/python3 nor /usr/bin/perl: no program to trace."
  exit 0
fi

out="$build/demo"
mkdir -p "$out"
name=$(basename "${prog[0]}")
trace="$out/$name.trace"
html="$(cd "$out" && pwd)/$name.html"
printf '\n== Finally: objmem-trace on a program built without objmem ==\n\n'
echo "objmem-trace run -- $what:"
"$cli" run -q -o "$trace" -- "${prog[@]}"
# Its top 10 sites (allocating lines) at the peak: by the end the
# interpreter has freed nearly everything.  Distribution binaries come
# without debug information, so their sites have no line: each is named
# by its function, or without a symbol, by its offset in the module.
echo
"$cli" report "$trace" --top 10 --peak
if ! pkg-config --exists libdw 2>/dev/null; then
  echo "(built without libdw: frames are named by module only; install"
  echo " libdw-dev and rebuild for function names and lines)"
fi
"$cli" html "$trace" -o "$html"
echo
echo "The whole recording, with its flame graph and its memory over time:"
echo "  $html"
