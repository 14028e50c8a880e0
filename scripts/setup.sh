#!/bin/bash
# setup.sh - make a fresh Debian 12 machine able to build vmlab, then build
# it out of tree.
#
# usage: scripts/setup.sh [BUILD-DIR [CONFIGURE-ARG...]]
#
# Installs the missing build dependencies (as root; otherwise prints the
# apt-get line to run and fails), runs autoreconf when configure is missing
# or stale, configures BUILD-DIR (default build/) and runs make there.
# Safe to run again: each step is skipped when there is nothing to do.
#
# Environment:
#   VMLAB_CONFIGURE_ARGS  more arguments for configure, split at blanks
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

dir=${1:-build}
dir=${dir%/}
shift $(($# > 0 ? 1 : 0))

packages=(build-essential autoconf automake pkg-config
	libmicrohttpd-dev libcjson-dev libsqlite3-dev libsodium-dev check
	curl python3 python3-jsonschema wrk valgrind
	clang-14 libclang-rt-14-dev)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- packages -----------------------------------------------------------
if command -v dpkg-query >/dev/null 2>&1; then
	missing=()
	for p in "${packages[@]}"; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[[ $status == "install ok installed" ]] || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		say "packages: all installed"
	elif ((EUID == 0)); then
		say "packages: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}"
	else
		say "packages missing: ${missing[*]}"
		say "run as root, or install them with:"
		printf '  sudo apt-get install -y --no-install-recommends %s\n' "${missing[*]}"
		exit 1
	fi
else
	say "no dpkg-query: not Debian; install the equivalents of: ${packages[*]}"
fi

# --- configure script ---------------------------------------------------
if [[ -e config.status ]]; then
	die "the source tree is configured in place; run 'make distclean' there first"
fi
if [[ ! -e configure || ! -e Makefile.in || configure.ac -nt configure ||
	Makefile.am -nt configure || Makefile.am -nt Makefile.in ]]; then
	say "autoreconf -fi"
	autoreconf -fi
else
	say "configure: up to date"
fi

# --- configure and build in $dir/ --------------------------------------
[[ -n $dir && $(realpath -m "$dir") != "$root" ]] ||
	die "build in a directory of its own, not in the source tree"
read -r -a extra <<<"${VMLAB_CONFIGURE_ARGS:-}"
args=("$@" "${extra[@]}")
mkdir -p "$dir"
stamp=$dir/.configure-args
if [[ ! -e $dir/config.status || configure -nt $dir/config.status ||
	"$(cat "$stamp" 2>/dev/null)" != "${args[*]}" ]]; then
	say "configure in $dir/${args[*]:+ ${args[*]}}"
	rm -f "$stamp"
	if ! (cd "$dir" && "$root/configure" "${args[@]}" \
		>configure.out 2>configure.err); then
		tail -n 30 "$dir/configure.out" "$dir/configure.err" >&2
		die "configure failed; see $dir/config.log"
	fi
	printf '%s' "${args[*]}" >"$stamp"
	# The summary that ends configure's output.
	sed -n '/^=====/,$p' "$dir/configure.out"
	if [[ -s $dir/configure.err ]]; then
		say "configure wrote to stderr:"
		cat "$dir/configure.err"
	fi
else
	say "$dir/: configured"
fi

say "make -C $dir"
make -C "$dir" -j"$(nproc)"
say "$dir/: built"
