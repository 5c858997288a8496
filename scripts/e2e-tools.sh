#!/usr/bin/env bash
# Installs what the end-to-end suite (test/e2e/) needs, into the ignored cache folder .e2e-tools/, and reuses it
# when present:
#   - Debian packages: chromium (the browser playwright-core drives), libkrb5-dev and pkg-config (code-server's
#     `kerberos` module compiles from source offline); apt-get as root, only when one is missing;
#   - Node 24 (npm's `node` package: code-server refuses Node 20) in .e2e-tools/node24/;
#   - code-server (VS Code's server and a real Node extension host) in .e2e-tools/code-server/, installed with
#     Node 24 first on PATH and node-gyp pointed at Node 24's headers.
# About 620 MB and a few minutes the first time; then a stamp file makes this a no-op.
# Prints the paths as KEY=value lines on stdout (the suite reads them); progress goes to stderr.
set -euo pipefail

NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${E2E_TOOLS_DIR:-$root/.e2e-tools}"
stamp="$tools/ready-node-$NODE_VERSION-code-server-$CODE_SERVER_VERSION"
node24="$tools/node24/node_modules/node/bin/node"
cs_pkg="$tools/code-server/node_modules/code-server"

say() { echo "e2e-tools: $*" >&2; }

# Under "npm run …", npm exports its own state, which the nested installs below would take as their config: the
# user agent naming Node 20 (code-server's postinstall refuses it), the project as local prefix, loglevel silent,
# an empty allow-scripts. Drop those (the npmrc files still apply).
for v in $(compgen -e); do
  case "$v" in
    npm_config_user_agent | npm_config_local_prefix | npm_config_allow_scripts | npm_config_nodedir | npm_config_loglevel \
      | npm_package_* | npm_lifecycle_* | npm_command | npm_execpath | npm_node_execpath | NODE | INIT_CWD) unset "$v" ;;
  esac
done

print_paths() {
  echo "NODE24=$node24"
  echo "CODE_SERVER=$cs_pkg/out/node/entry.js"
  echo "CHROMIUM=$(command -v chromium || echo /usr/bin/chromium)"
}

# Serialise concurrent callers (two test files starting at once).
mkdir -p "$tools"
exec 9>"$tools/.lock"
flock 9

if [ -f "$stamp" ] && [ -x "$node24" ] && [ -f "$cs_pkg/out/node/entry.js" ] && [ -z "${E2E_TOOLS_FORCE:-}" ]; then
  print_paths
  exit 0
fi

# --- Debian packages ---------------------------------------------------------------------------------------------
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || missing+=(build-essential)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${missing[*]}; install them (apt-get install -y ${missing[*]}) or run as root"
    exit 1
  fi
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2
fi

# npm 11 blocks dependency install scripts unless package.json's allowScripts lists them (older npm runs them
# anyway and ignores the field). Each cache folder is its own small project that allows exactly what it needs.
npm_install() {
  # $1 folder; the rest: extra npm options
  local dir="$1"
  shift
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$@" >&2)
}

# --- Node 24 -----------------------------------------------------------------------------------------------------
if ! { [ -x "$node24" ] && "$node24" -v 2>/dev/null | grep -q "^v$NODE_VERSION$"; }; then
  say "installing node@$NODE_VERSION into $tools/node24"
  rm -rf "$tools/node24"
  mkdir -p "$tools/node24"
  cat >"$tools/node24/package.json" <<EOF
{
  "name": "infodiscard-e2e-node24",
  "private": true,
  "description": "Node 24 for code-server (installed by scripts/e2e-tools.sh)",
  "dependencies": { "node": "$NODE_VERSION" },
  "allowScripts": { "node": true }
}
EOF
  npm_install "$tools/node24"
  # The package's preinstall fetches node-linux-<arch> and links bin/node to it. If a policy skipped it, run it.
  if [ ! -x "$node24" ]; then
    say "node's install script did not run; running it"
    (cd "$tools/node24/node_modules/node" && node installArchSpecificPackage >&2)
  fi
  "$node24" -v | grep -q "^v$NODE_VERSION$" || { say "Node $NODE_VERSION did not install"; exit 1; }
fi
node_pkg_dir="$(dirname "$(dirname "$(readlink -f "$node24")")")"
if [ ! -f "$node_pkg_dir/include/node/node.h" ]; then
  node_pkg_dir="$(ls -d "$tools"/node24/node_modules/node/node_modules/node-linux-* 2>/dev/null | head -1)"
fi
[ -f "$node_pkg_dir/include/node/node.h" ] || { say "no Node 24 headers under $node_pkg_dir"; exit 1; }

# --- code-server -------------------------------------------------------------------------------------------------
# Node 24 first on PATH (code-server's postinstall checks the version in npm's user agent, and its native modules
# must be built for Node 24's ABI); node-gyp gets Node 24's headers (the machine's npmrc may say nodedir=/usr).
export PATH="$(dirname "$node24"):$PATH"
export npm_config_nodedir="$node_pkg_dir"
export JOBS="${JOBS:-max}" # node-gyp: compile with every core
if [ ! -f "$cs_pkg/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node" ] || [ ! -f "$stamp" ]; then
  say "installing code-server@$CODE_SERVER_VERSION into $tools/code-server (a few minutes; about 620 MB)"
  rm -rf "$tools/code-server"
  mkdir -p "$tools/code-server"
  # argon2 hashes passwords; the suite runs with --auth none and never loads it, so its build is skipped.
  cat >"$tools/code-server/package.json" <<EOF
{
  "name": "infodiscard-e2e-code-server",
  "private": true,
  "description": "code-server for the end-to-end suite (installed by scripts/e2e-tools.sh)",
  "dependencies": { "code-server": "$CODE_SERVER_VERSION" },
  "allowScripts": { "code-server": true, "argon2": false }
}
EOF
  npm_install "$tools/code-server"
  # code-server's postinstall installs VS Code's own dependencies (lib/vscode, whose package.json has its own
  # allowScripts). If an install-scripts policy skipped it, run it by hand.
  if [ ! -d "$cs_pkg/lib/vscode/node_modules" ]; then
    say "code-server's postinstall did not run; running it"
    (cd "$cs_pkg" && npm_config_user_agent="npm/$(npm -v) node/$("$node24" -v) linux x64" sh ./postinstall.sh >&2)
  fi
fi
for f in out/node/entry.js lib/vscode/out/server-main.js lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node; do
  [ -f "$cs_pkg/$f" ] || { say "code-server is incomplete: $cs_pkg/$f is missing"; exit 1; }
done
# It must start: its native modules load in Node 24.
# (XDG folders in a temporary directory: code-server writes a config file and logs there, never into ~.)
probe="$(mktemp -d)"
if ! XDG_CONFIG_HOME="$probe/config" XDG_DATA_HOME="$probe/data" "$node24" "$cs_pkg/out/node/entry.js" --version >/dev/null 2>&1; then
  rm -rf "$probe"
  say "code-server does not start with $node24"
  exit 1
fi
rm -rf "$probe"

rm -f "$tools"/ready-*
touch "$stamp"
say "ready"
print_paths
