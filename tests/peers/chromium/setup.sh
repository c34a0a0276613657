#!/usr/bin/env bash
# Installs what the dashboard's browser test (tests/tests/dashboard.rs)
# drives: Debian's `chromium` (apt, when missing) and playwright-core (npm)
# under <repo>/target/peers/chromium. playwright-core downloads no browser;
# it drives the system chromium. Idempotent, safe to run concurrently
# (flock), quick when already installed. Progress goes to stderr only.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
peers="$repo/target/peers"
dir="$peers/chromium"
version="1.49.1"
stamp="$dir/installed-playwright-core-$version"
mkdir -p "$dir"

exec 9>"$peers/chromium.lock"
flock 9

if ! command -v chromium >/dev/null; then
    echo "chromium: installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=900 update -q >&2
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends chromium >&2
fi
if ! command -v node >/dev/null; then
    echo "chromium: installing nodejs and npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=900 update -q >&2
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends nodejs npm >&2
fi

if [[ -f "$stamp" && -f "$dir/node_modules/playwright-core/package.json" ]]; then
    exit 0
fi
echo "chromium: installing playwright-core $version into $dir" >&2
rm -rf "$dir/node_modules"
(cd "$dir" && npm install --silent --no-audit --no-fund --no-save \
    --prefix "$dir" "playwright-core@$version" >&2)
touch "$stamp"
echo "chromium: ready" >&2
