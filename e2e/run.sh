#!/usr/bin/env bash
# Browser tests for the built-in UI and for Ory Elements React (an app in e2e/elements):
# installs Debian's Chromium and the npm packages if needed, builds the Elements app and the
# latch binary, then runs the suite (node --test) against `latch serve --dev` instances on free
# ports. Screenshots land in e2e/artifacts/.
# Never downloads browsers through Playwright.
set -euo pipefail
cd "$(dirname "$0")"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$CHROMIUM" ]]; then
  echo "== installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

echo "== npm packages"
if [[ -f package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

echo "== OpenID provider for the social sign-in test (npm oidc-provider)"
(cd ../crates/latch/tests/oidc-provider && { [[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error; })

echo "== Ory Elements test app (e2e/elements: npm ci from its lock file, vite build)"
(
  cd elements
  npm ci --no-audit --no-fund --loglevel=error
  npm run --silent build
  echo "   @ory/elements-react $(node -p "require('./node_modules/@ory/elements-react/package.json').version"), react $(node -p "require('./node_modules/react/package.json').version")"
)

echo "== building latch"
(cd .. && cargo build -p latch --quiet)
target="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}"
export LATCH_BIN="${LATCH_BIN:-$target/debug/latch}"

echo "== browser tests ($("$CHROMIUM" --version 2>/dev/null | head -1), playwright-core $(node -p "require('playwright-core/package.json').version"))"
rm -rf artifacts
node --test --test-concurrency=1 tests/
echo "screenshots: $(pwd)/artifacts/"
