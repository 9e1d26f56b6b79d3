#!/usr/bin/env bash
# Regenerates the README's screenshots of the HTML report (docs/screenshots/): two scenarios on
# fresh local stores, each page loaded in headless Chromium at desktop and phone width by
# scripts/browser_check.py (which also checks it: no console error, no request out).
#   seed:  the seed's source files (bootstrap), then its practice files (too few rows to tell)
#   drift: 3,000 generated clients a month; months 0-1 bootstrap, month 2 no drift, month 3 a
#          sudden concept drift (detected, retrained, redeployed); the page of that run
# Needs chromium; pngquant (Debian package) shrinks the PNGs when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bin risk
risk="$PWD/target/debug/risk"
out="$PWD/docs/screenshots"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RISK_DEPENDENCY_CHECK=off RISK_LOCAL_FSYNC=off

scenario() {
  mkdir -p "$work/$1/src" "$work/$1/test"
  cat >"$work/$1/config.json" <<EOF
{"source_data": "file://src", "compiled_data": "file://store/compiled", "test_data": "file://test",
 "models": "file://store/models", "production": "file://store/production", "reports": "file://store/reports"}
EOF
}

scenario seed
cp data/testdata/testdata.csv "$work/seed/test/"
cp data/sourcedata/*.csv "$work/seed/src/"
(cd "$work/seed" && "$risk" fullprocess >/dev/null && cp "$OLDPWD"/data/practicedata/*.csv src/ && "$risk" fullprocess >/dev/null)

scenario drift
(
  cd "$work/drift"
  generate() { "$risk" generate --clients 3000 --drift-from-month 3 "$@" >/dev/null; }
  generate --months 2 --test-out test --test-rows 2000 --test-month 5
  "$risk" fullprocess >/dev/null
  generate --months 3 --from-month 2
  "$risk" fullprocess >/dev/null
  generate --months 4 --from-month 3
  "$risk" fullprocess --json >drift-run.json
)
drift_run=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$work/drift/drift-run.json")

mkdir -p "$out"
pages=("seed=file://$work/seed/store/reports/index.html"
       "drift=file://$work/drift/store/reports/runs/$drift_run.html")
# Whole pages at desktop width; the phone's first screens (how the layout reflows) keep the
# files small.
python3 scripts/browser_check.py --out "$work/shots" --viewports desktop "${pages[@]}" >"$work/desktop.json"
python3 scripts/browser_check.py --out "$work/shots" --viewports phone --max-height 4200 "${pages[@]}" >"$work/phone.json"
python3 - "$work/desktop.json" "$work/phone.json" <<'EOF'
import json, sys
for page in [p for f in sys.argv[1:] for p in json.load(open(f))["pages"]]:
    problems = page["console_errors"] + page["outside_requests"]
    print(f'{page["label"]} {page["viewport"]}: {len(page["charts"])} charts, {page["page_height"]:.0f} px tall',
          "PROBLEMS: " + "; ".join(problems) if problems else "")
EOF
for shot in "$work"/shots/*.png; do
  if command -v pngquant >/dev/null; then
    pngquant --force --quality 60-90 --output "$out/$(basename "$shot")" "$shot"
  else
    cp "$shot" "$out/"
  fi
done
ls -l "$out"
