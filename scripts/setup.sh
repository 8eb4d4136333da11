#!/usr/bin/env bash
# Sets up a fresh machine for Lifeline: the pinned pnpm, the system packages the tests use
# (Debian's Chromium for Playwright, redis-server), the workspace's dependencies, a build, and the
# other runtimes CI tests on (scripts/runtimes.sh: Node 22 and 24 and Bun, into .cache/runtimes).
# Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

export TURBO_TELEMETRY_DISABLED=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 DENO_NO_UPDATE_CHECK=1

PNPM_VERSION=12.4.2
if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm $PNPM_VERSION"
  npm install -g "pnpm@$PNPM_VERSION" --silent
fi

missing=()
command -v chromium >/dev/null 2>&1 || [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing ${missing[*]} from Debian"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# better-sqlite3 (the embedded session store) compiles with node-gyp when no prebuilt binary can
# be fetched; point it at the Node headers installed with Node instead of downloading them.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/common.gypi ]; then
  export npm_config_nodedir=/usr
fi

echo "setup: installing workspace dependencies"
pnpm install --frozen-lockfile
echo "setup: building the packages"
pnpm build

# Node 22 and 24 and Bun, pinned, into .cache/runtimes (gitignored): CI runs the Node suite on them.
bash scripts/runtimes.sh
