#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Rust:
# installs what is missing (redis-server, redis-cli, Chromium, Node.js and
# npm, openssl (RS256/ES256 test keys), a Python venv with moto, kosoku and the OpenAPI checker's modules,
# playwright-core, TypeScript), checks Node's version, formatting and clippy,
# then runs every test in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Node runs the client library's tests (tests/client_js.rs, including the
# TypeScript check of client.d.ts), the demo page's headless-Chromium test
# (tests/browser.rs) and the benchmark scripts' parse check. The library's
# tests need a global WebSocket: Node 22 has one; 20.10 to 21 only with
# --experimental-websocket, which tests/client_js.rs adds when a probe
# without it finds none. Older Nodes (Debian 12's nodejs is 18) have neither.
node_version=$(node --version)
IFS=. read -r node_major node_minor _ <<<"${node_version#v}"
if ((node_major < 20 || (node_major == 20 && node_minor < 10))); then
  echo "Node.js $node_version is too old: the tests need Node.js 22 or later" \
    "(20.10 to 21 work with --experimental-websocket). Install a newer one" \
    "(Debian 13's nodejs package is 20) and run this again." >&2
  exit 1
fi

# The OpenAPI check of tests/api.rs (tests/openapi_check.py) needs PyYAML,
# jsonschema and openapi-spec-validator in the same venv.
if [[ ! -x .venv/bin/moto_server || ! -x .venv/bin/kosoku ]] ||
  ! .venv/bin/python -c 'import yaml, jsonschema, openapi_spec_validator' 2>/dev/null; then
  echo "creating .venv with moto[server], kosoku and the OpenAPI checker's modules"
  python3 -m venv .venv
  .venv/bin/pip install -q 'moto[server]' kosoku pyyaml jsonschema openapi-spec-validator
fi
export MOTO_SERVER="$PWD/.venv/bin/moto_server"
export KOSOKU="$PWD/.venv/bin/kosoku"

# playwright-core for the demo page's test, TypeScript for the client's.
for dir in tests/browser tests/client; do
  if [[ -f $dir/package.json && ! -d $dir/node_modules ]]; then
    (cd "$dir" && npm install --silent --no-audit --no-fund)
  fi
done

# The habits CI enforces: formatted code, no clippy warnings (release
# profile, so the check shares the build's settings).
cargo fmt --check
cargo clippy --release --all-targets --quiet -- -D warnings

# Release mode: one build serves the tests, the load generator and Autobahn's
# large-message cases at realistic speed.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
