#!/usr/bin/env bash
# Installs the IPMI test peers: OpenIPMI's `ipmi_sim` (Debian package
# `openipmi`, installed with apt-get when missing) and pyghmi's fake BMC (PyPI
# `pyghmi` in a venv under <repo>/target/peers/ipmi/venv). Idempotent, safe to
# run concurrently (flock), quick when already installed. Progress goes to
# stderr only.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
peers="$repo/target/peers"
dir="$peers/ipmi"
venv="$dir/venv"
stamp="$dir/installed-pyghmi-1.6.19"
mkdir -p "$peers"

exec 9>"$peers/ipmi.lock"
flock 9

if ! command -v ipmi_sim >/dev/null 2>&1; then
    echo "ipmi: installing Debian openipmi (ipmi_sim)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends openipmi >&2; then
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends openipmi >&2
    fi
    command -v ipmi_sim >/dev/null
fi

if [[ -f "$stamp" && -x "$venv/bin/python" ]]; then
    exit 0
fi

echo "ipmi: installing pyghmi 1.6.19 into $venv" >&2
rm -rf "$venv"
mkdir -p "$dir"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "pyghmi==1.6.19" >&2
"$venv/bin/python" -c "import pyghmi.ipmi.bmc, pyghmi.cmd.fakebmc" >&2
touch "$stamp"
echo "ipmi: ready" >&2
