#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs the S3-compatible test server
# (moto, pinned, into .venv), pyarrow (pinned; the compiled data's independent reader) and
# cargo-lambda (same venv, put on PATH), starts the server on a free loopback port, points the
# tests at it, builds the Lambda binaries and runs the whole cargo test suite. Extra arguments
# go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${RISK_TEST_VENV:-.venv}"
# pyarrow: the independent reader of the compiled data's parts (tests/compiled_parts.rs).
if ! "$venv/bin/python" -c 'import moto, flask, flask_cors, pyarrow' >/dev/null 2>&1; then
  echo "test setup: installing moto[s3]==5.2.5 and pyarrow==26.0.1 into $venv" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'moto[s3]==5.2.5' flask flask-cors 'pyarrow==26.0.1'
fi
# cargo-lambda (PyPI ships the binary) for the Lambda end-to-end test (tests/lambda_local.rs).
if ! [ -x "$venv/bin/cargo-lambda" ]; then
  echo "test setup: installing cargo-lambda==1.9.2 into $venv" >&2
  "$venv/bin/pip" install --quiet 'cargo-lambda==1.9.2'
fi
case "$venv" in
  /*) export PATH="$venv/bin:$PATH" ;;
  *) export PATH="$PWD/$venv/bin:$PATH" ;;
esac

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >target/moto-server.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    echo "test setup: moto_server exited; see target/moto-server.log" >&2
    cat target/moto-server.log >&2
    exit 1
  fi
  sleep 0.1
done
echo "test setup: S3-compatible server (moto) on http://127.0.0.1:$port" >&2

export RISK_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
# Tests never read the developer's real AWS profile or config.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN

# The Lambda functions' binaries, which the end-to-end test runs under `cargo lambda watch`
# (`cargo test` builds a package's binaries only for its own integration tests). Same profile
# and features as the test build, so nothing is compiled twice.
cargo build --workspace --bins
cargo test --workspace --all-targets "$@"
