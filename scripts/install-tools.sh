#!/usr/bin/env bash
# Installs what building and testing Duecall needs, skipping whatever is already present.
#
#   scripts/install-tools.sh            # build tools: wasm target, cargo-leptos, wasm-bindgen, wasm-opt
#   scripts/install-tools.sh --test     # also cargo-nextest, Chromium and Playwright for the tests
#
# Every step is idempotent: a second run only checks versions and exits.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.10"
# Must equal the wasm-bindgen version pinned in Cargo.toml / Cargo.lock.
WASM_BINDGEN_VERSION="0.2.130"
BINARYEN_VERSION="132.0.0"
# The test runner: each test in a process of its own, with a time limit (.config/nextest.toml).
NEXTEST_VERSION="0.9.143"

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (one-time, ~12 minutes)"
  cargo install cargo-leptos --locked --version "$CARGO_LEPTOS_VERSION" --features no_downloads
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if [ "$want_test" = 1 ] && ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest $NEXTEST_VERSION (one-time, ~5 minutes)"
  cargo install cargo-nextest --locked --version "$NEXTEST_VERSION"
fi

# Node packages (wasm-opt from npm binaryen; Playwright) live in the repository's node_modules.
cd "$ROOT"
if [ ! -x node_modules/.bin/wasm-opt ] || \
   [ "$(node -p "require('./node_modules/binaryen/package.json').version" 2>/dev/null)" != "$BINARYEN_VERSION" ] || \
   { [ "$want_test" = 1 ] && [ ! -d node_modules/@playwright/test ]; }; then
  say "installing node packages (binaryen, playwright)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

if [ "$want_test" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  say "installing chromium"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
fi
