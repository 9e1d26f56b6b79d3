#!/usr/bin/env bash
# Offline checks of the deployment, run by CI after the tests: cfn-lint and `sam validate --lint`
# (the real SAM translator, no AWS account needed) on template.yaml, then a release build of every
# Lambda function for arm64 with cargo-lambda, printing each zip's size. Installs what it needs
# (pinned) into the same .venv as the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${RISK_TEST_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c 'import samcli, cfnlint, ziglang' >/dev/null 2>&1 || ! [ -x "$venv/bin/cargo-lambda" ]; then
  echo "deploy checks: installing aws-sam-cli, cfn-lint, cargo-lambda and zig into $venv" >&2
  "$venv/bin/pip" install --quiet 'aws-sam-cli==1.170.0' 'cfn-lint==1.58.0' 'cargo-lambda==1.9.2' 'ziglang==0.15.1'
fi
case "$venv" in
  /*) export PATH="$venv/bin:$PATH" ;;
  *) export PATH="$PWD/$venv/bin:$PATH" ;;
esac

echo "== cfn-lint template.yaml" >&2
cfn-lint template.yaml
echo "== sam validate --lint" >&2
AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 sam validate --lint --template template.yaml

echo "== cargo lambda build --release --arm64 (every function)" >&2
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
functions=()
for dir in functions/*/; do
  [ -f "$dir/Cargo.toml" ] && functions+=("$(basename "$dir")")
done
packages=()
for f in "${functions[@]}"; do packages+=(--package "$f"); done
cargo lambda build --release --arm64 --output-format zip "${packages[@]}"

echo "== Lambda zip sizes (arm64, release)"
for f in "${functions[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  printf '%-12s %9d bytes  %5.2f MB\n' "$f" "$(stat -c %s "$zip")" "$(echo "$(stat -c %s "$zip") / 1048576" | bc -l)"
done
