#!/bin/bash
# fuzz.sh - build the libFuzzer targets in build-fuzz/ and run them.
#
# usage: scripts/fuzz.sh [SECONDS]     (default 60 per target)
#        scripts/fuzz.sh --smoke       (the short run of scripts/test.sh)
#
# Configures build-fuzz/ with clang-14 and --enable-fuzzing when needed
# (scripts/setup.sh), then runs `make fuzz FUZZ_SECONDS=SECONDS` there:
# each target on a scratch copy of its seeds (tests/fuzz/corpus/), one
# line "fuzz_TARGET execs=N exec/s=R" each; a crash fails, its input in
# build-fuzz/fuzz-work/TARGET/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh build-fuzz CC=clang-14 --enable-fuzzing
if [[ ${1:-} == --smoke ]]; then
	make -C build-fuzz fuzz-smoke
else
	make -C build-fuzz fuzz FUZZ_SECONDS="${1:-60}"
fi
