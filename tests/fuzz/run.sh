#!/bin/sh
# run.sh - run libFuzzer targets on scratch copies of their seed corpora.
#
# usage: run.sh --srcdir DIR --builddir DIR (--seconds N | --smoke) TARGET...
#
# TARGET is a built program, e.g. tests/fuzz/fuzz_dispatch; its seeds are
# tests/fuzz/corpus/dispatch/ and its regressions (inputs that once
# crashed it) tests/fuzz/regressions/dispatch/ under the source tree.
#
# --seconds N  runs each target N seconds on a copy of its seeds and
#              regressions in fuzz-work/NAME/corpus (so new inputs stay
#              out of the source tree); a crash leaves its input in
#              fuzz-work/NAME/ and fails.
# --smoke      first runs every seed and regression once (each must run
#              clean), then each target SMOKE_SECONDS (default 20) and
#              fails unless it reached its set number of executions
#              (min_execs below: what a 2-core CI machine reaches with
#              room to spare).
#
# Prints one line per target: "fuzz_NAME execs=N exec/s=R".
set -u

srcdir=. builddir=. seconds= smoke=no
while [ $# -gt 0 ]; do
	case $1 in
	--srcdir) srcdir=$2; shift 2 ;;
	--builddir) builddir=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--smoke) smoke=yes; shift ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "run.sh: no targets" >&2; exit 2; }

# The longest input each target reads (bytes).
max_len() {
	case $1 in
	dispatch) echo 4096 ;;
	parse) echo 300 ;;
	op) echo 2048 ;;
	state) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

# Executions a smoke run must reach in SMOKE_SECONDS.
min_execs() {
	case $1 in
	dispatch) echo 50000 ;;
	parse) echo 1000000 ;;
	op) echo 2000 ;;
	state) echo 100000 ;;
	*) echo 1000 ;;
	esac
}

fail=0
smoke_seconds=${SMOKE_SECONDS:-20}
for target in "$@"; do
	prog=$builddir/$target
	base=${target##*/}
	name=${base#fuzz_}
	work=$builddir/fuzz-work/$name
	seeds=$srcdir/tests/fuzz/corpus/$name
	regr=$srcdir/tests/fuzz/regressions/$name
	rm -rf "$work"
	mkdir -p "$work/corpus"
	for d in "$seeds" "$regr"; do
		[ -d "$d" ] && cp "$d"/* "$work/corpus/" 2>/dev/null
	done
	opts="-max_len=$(max_len "$name") -print_final_stats=1
		-artifact_prefix=$work/ -rss_limit_mb=2048 -timeout=30"
	if [ $smoke = yes ]; then
		# Every seed and regression once, alone.
		files=$(ls "$work/corpus" | wc -l)
		if ! "$prog" $opts "$work"/corpus/* >"$work/replay.log" 2>&1
		then
			echo "$base: a seed or regression crashes:" >&2
			tail -n 30 "$work/replay.log" >&2
			fail=1
			continue
		fi
		echo "$base: $files seeds and regressions run clean"
		secs=$smoke_seconds
	else
		secs=$seconds
	fi
	"$prog" $opts -max_total_time="$secs" "$work/corpus" \
		>"$work/fuzz.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
		"$work/fuzz.log" | tail -n 1)
	execs=${execs:-0}
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' \
		"$work/fuzz.log" | tail -n 1)
	echo "$base execs=$execs exec/s=${rate:-0}"
	if [ $rc -ne 0 ]; then
		echo "$base: crashed (exit $rc); input in $work/:" >&2
		grep -E '^(==|SUMMARY|fuzz_|.*runtime error)' "$work/fuzz.log" |
			head -n 20 >&2
		ls "$work" | grep -E '^(crash|leak|timeout|oom)-' >&2
		fail=1
	elif [ $smoke = yes ] && [ "$execs" -lt "$(min_execs "$name")" ]; then
		echo "$base: $execs executions, below $(min_execs "$name")" >&2
		fail=1
	fi
done
exit $fail
