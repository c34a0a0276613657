#!/usr/bin/env bash
# Installs OpenStack Keystone (the identity service, from PyPI) and gunicorn
# (the WSGI server that serves it) in a venv under
# <repo>/target/peers/keystone/venv, then prepares a template site the tests
# copy (target/peers/keystone/template: a SQLite database after db_sync and
# bootstrap, fernet token and credential keys, a WSGI entry point). The tests
# start one Keystone per test from a copy (tests/src/keystone.rs).
# Idempotent, safe to run concurrently (flock), quick when already installed.
# Progress goes to stderr only.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
peers="$repo/target/peers"
dir="$peers/keystone"
venv="$dir/venv"
template="$dir/template"
stamp="$dir/installed-keystone-30.0.0"
mkdir -p "$peers"

exec 9>"$peers/keystone.lock"
flock 9

export PYTHONWARNINGS=ignore

if [[ ! -f "$stamp" || ! -x "$venv/bin/keystone-manage" || ! -x "$venv/bin/gunicorn" ]]; then
    echo "keystone: installing keystone 30.0.0 and gunicorn into $venv" >&2
    rm -rf "$venv" "$template"
    mkdir -p "$dir"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "keystone==30.0.0" "gunicorn>=22,<24" >&2
    "$venv/bin/python" -c "import keystone.server.wsgi, gunicorn" >&2
    touch "$stamp"
fi

if [[ ! -f "$template/ready-v2" ]]; then
    echo "keystone: preparing the template site in $template" >&2
    rm -rf "$template"
    mkdir -p "$template/fernet" "$template/credential"
    # Paths are relative to the site directory (the tests run Keystone with
    # it as the working directory), so a copy works unchanged.
    cat >"$template/keystone.conf" <<'CONF'
[DEFAULT]
use_stderr = true
[identity]
# bcrypt's cheapest cost: every token issued checks a password.
password_hash_rounds = 4
[database]
connection = sqlite:///keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = fernet
[fernet_receipts]
key_repository = fernet
[credential]
key_repository = credential
CONF
    # oslo.config would read gunicorn's own arguments: hide them.
    cat >"$template/keystone_wsgi.py" <<'PY'
import sys

sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
PY
    (
        cd "$template"
        manage=("$venv/bin/keystone-manage" --config-file keystone.conf)
        "${manage[@]}" db_sync
        "${manage[@]}" fernet_setup --keystone-user "$(id -u)" --keystone-group "$(id -g)"
        "${manage[@]}" credential_setup --keystone-user "$(id -u)" --keystone-group "$(id -g)"
        # The endpoint URL is never used: each test's Keystone listens on its
        # own port and is reached directly.
        "${manage[@]}" bootstrap --bootstrap-password "admin-password-for-tests" \
            --bootstrap-admin-url http://127.0.0.1:5000/v3 \
            --bootstrap-public-url http://127.0.0.1:5000/v3 \
            --bootstrap-region-id RegionOne
    ) >"$dir/template.log" 2>&1 || { cat "$dir/template.log" >&2; exit 1; }
    touch "$template/ready-v2"
fi
echo "keystone: ready" >&2
