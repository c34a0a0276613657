#!/usr/bin/env bash
# Installs the sushy-tools Redfish emulator (fake systems driver) and bcrypt
# (for the htpasswd the tests write) in a venv under
# <repo>/target/peers/sushy/venv. Idempotent, safe to run concurrently
# (flock), quick when already installed. Progress goes to stderr only.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
peers="$repo/target/peers"
dir="$peers/sushy"
venv="$dir/venv"
stamp="$dir/installed-sushy-tools-2.2.0"
mkdir -p "$peers"

exec 9>"$peers/sushy.lock"
flock 9

if [[ -f "$stamp" && -x "$venv/bin/sushy-emulator" ]]; then
    exit 0
fi

echo "sushy: installing sushy-tools 2.2.0 into $venv" >&2
rm -rf "$venv"
mkdir -p "$dir"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    "sushy-tools==2.2.0" "bcrypt>=4,<6" >&2
"$venv/bin/python" -c "import sushy_tools, bcrypt, flask" >&2
touch "$stamp"
echo "sushy: ready" >&2
