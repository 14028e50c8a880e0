#!/bin/bash
# test.sh - build vmlab and run every test: the test command of README.md.
#
#   1. scripts/setup.sh: dependencies, configure, build in build/
#   2. make check in build/ (default options), then make check-valgrind
#   3. make check in build-san/ (--enable-sanitizers --enable-debug)
#   3b. scripts/fuzz.sh --smoke: the fuzz targets briefly (build-fuzz/)
#   4. make distcheck in build/ (tarball, read-only srcdir, out of tree)
#
# Prints the .log of every failing test, and ends with one line
# "N passed, N failed" summing the test counts of build/ and build-san/.
# Exits non-zero if anything failed.
#
# Environment (passed through to the tests and to configure):
#   VMLAB_TEST_SCALE      multiplies the loop counts of the long tests
#   VMLAB_CONFIGURE_ARGS  more arguments for configure, split at blanks
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=$(nproc)
passed=0
failed=0
problems=()

say() { printf 'test: %s\n' "$*"; }

# count LOG KEY: the number on the "# KEY: N" line of a test-suite.log.
count() {
	local n
	n=$(sed -n "s/^# $2: *\([0-9][0-9]*\).*/\1/p" "$1" | head -n 1)
	echo "${n:-0}"
}

# check DIR: make check in DIR, add its counts, show failing tests' logs.
check() {
	local dir=$1 log=$1/test-suite.log trs
	rm -f "$log"
	say "make -C $dir check"
	make -C "$dir" -j"$jobs" check || problems+=("make check in $dir/")
	if [[ ! -f $log ]]; then
		# The tests did not get to run (a build error): one failure.
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + $(count "$log" PASS)))
	# ERROR (a crashed test or fixture) and XPASS count as failures too.
	failed=$((failed + $(count "$log" FAIL) + $(count "$log" ERROR) +
		$(count "$log" XPASS)))
	while IFS= read -r trs; do
		printf '\n===== %s =====\n' "${trs%.trs}.log"
		cat "${trs%.trs}.log"
	done < <(find "$dir" -name '*.trs' -exec \
		grep -l -E '^:test-result: (FAIL|ERROR|XPASS)' {} + | sort)
}

# configured_quietly DIR: configure must not write to stderr (see the
# `core` hazard in docs/build.md).
configured_quietly() {
	if [[ -s $1/configure.err ]]; then
		say "configure in $1/ wrote to stderr:"
		cat "$1/configure.err"
		problems+=("configure stderr in $1/")
	fi
}

# build DIR [CONFIGURE-ARG...]: set up, configure and build DIR, then test.
build() {
	local dir=$1
	if bash scripts/setup.sh "$@"; then
		configured_quietly "$dir"
		check "$dir"
	else
		# No tests could run there: one failure.
		problems+=("scripts/setup.sh $*")
		failed=$((failed + 1))
	fi
}

build build
# The unit tests under valgrind (not in build-san/: ASan and valgrind
# exclude each other).
say "make -C build check-valgrind"
make -C build check-valgrind || problems+=("make check-valgrind in build/")
build build-san --enable-sanitizers --enable-debug
# The fuzz targets (clang-14): every seed and regression replayed, then a
# short run of each that must reach its set number of executions.
say "scripts/fuzz.sh --smoke (build-fuzz/)"
bash scripts/fuzz.sh --smoke || problems+=("fuzz smoke in build-fuzz/")

if ((${#problems[@]} == 0 && failed == 0)); then
	say "make -C build distcheck (output in build/distcheck.log)"
	if make -C build -j"$jobs" distcheck >build/distcheck.log 2>&1; then
		grep -E 'archives ready|^vmlab-.*\.tar' build/distcheck.log || true
	else
		tail -n 40 build/distcheck.log
		problems+=("make distcheck")
	fi
else
	say "distcheck skipped: an earlier step failed"
fi

for p in "${problems[@]}"; do
	say "FAILED: $p"
done
echo "$passed passed, $failed failed"
((${#problems[@]} == 0 && failed == 0))
