#!/usr/bin/env bash
# Installs schemathesis (property-based API testing from an OpenAPI
# document) in a venv under <repo>/target/peers/schemathesis/venv, for
# tests/tests/openapi.rs. Idempotent, safe to run concurrently (flock),
# quick when already installed. Progress goes to stderr only.
set -euo pipefail

version="4.32.5"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
peers="$repo/target/peers"
dir="$peers/schemathesis"
venv="$dir/venv"
stamp="$dir/installed-schemathesis-$version"
mkdir -p "$peers"

exec 9>"$peers/schemathesis.lock"
flock 9

if [[ -f "$stamp" && -x "$venv/bin/st" ]]; then
    exit 0
fi

echo "schemathesis: installing schemathesis $version into $venv" >&2
rm -rf "$venv"
mkdir -p "$dir"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" >&2
"$venv/bin/st" --version >&2
touch "$stamp"
echo "schemathesis: ready" >&2
