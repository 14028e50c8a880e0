#!/bin/bash
# The README's run command: installs what is missing, builds, and runs
# vmlabd in the foreground on 127.0.0.1:8080 (Ctrl-C stops it).
# Extra arguments go to vmlabd (e.g. --listen 127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec build/server/vmlabd --db vmlab.db "$@"
