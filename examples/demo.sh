#!/usr/bin/env bash
# make demo: run the tour of every feature from a release build.
set -euo pipefail
build=${1:-build/release}
"$build/examples/tour"
