#!/usr/bin/env bash
# Installs fake-switches 1.5.0 (the Arista model answers eAPI over HTTP) in
# its own venv under <repo>/target/peers/fake-switches/. Idempotent and safe
# to run concurrently (flock); fast when already installed. Progress goes to
# stderr only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
peers="$repo/target/peers"
dir="$peers/fake-switches"
mkdir -p "$peers"

exec 9>"$peers/fake-switches.lock"
flock 9

stamp="$dir/.installed-1.5.0"
if [ -f "$stamp" ]; then
  exit 0
fi

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
echo "fake-switches: creating venv in $dir" >&2
rm -rf "$dir"
"$python" -m venv "$dir" >&2
# Its metadata pins an ancient Twisted: install it alone, then what it needs.
"$dir/bin/pip" install --quiet --disable-pip-version-check --no-deps fake-switches==1.5.0 >&2
"$dir/bin/pip" install --quiet --disable-pip-version-check tftpy==0.8.7 netaddr==1.3.0 lxml==6.1.3 "twisted[conch]==26.10.0" >&2
"$dir/bin/python" -c "import fake_switches.transports.http_service" >&2
touch "$stamp"
echo "fake-switches: installed" >&2
