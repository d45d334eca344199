#!/usr/bin/env bash
# Installs every Debian package listed in debian-packages.txt (needs root or sudo).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mapfile -t pkgs < <(grep -v '^\s*#' "$here/debian-packages.txt" | grep -v '^\s*$')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the admin page's browser test; Debian's are used where none is installed.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} Debian packages present"
else
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# playwright-core (pinned in tests/ui/package-lock.json), from the npm registry; it uses Debian's chromium.
if [ ! -d "$here/tests/ui/node_modules/playwright-core" ]; then
  (cd "$here/tests/ui" && npm ci --no-audit --no-fund --loglevel=error)
fi
# dcmjs (pinned in tests/judges/dcmjs/package-lock.json): the parser OHIF uses, judging SEG and SR.
if [ ! -d "$here/tests/judges/dcmjs/node_modules/dcmjs" ]; then
  (cd "$here/tests/judges/dcmjs" && npm ci --no-audit --no-fund --loglevel=error)
fi
# The BIDS validator (pinned in tests/judges/bids-validator/package-lock.json): the BIDS export must pass it.
if [ ! -d "$here/tests/judges/bids-validator/node_modules/bids-validator" ]; then
  (cd "$here/tests/judges/bids-validator" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Debian's orthanc package starts a system Orthanc on 4242/8042 where an init system runs;
# procnode starts its own instances and does not need that one.
