#!/usr/bin/env bash
# Installs the third-party XMPP software the interop tests drive, and the
# PostgreSQL server the storage tests start, from Debian's packages, when it
# is missing. Idempotent; needs root (or sudo) only when
# something must be installed.
#
# Besides Debian 12's python3-slixmpp (1.8.3) and python3-aioxmpp (0.13.3),
# installed as system packages, the tests run bookworm-backports' slixmpp
# 1.10.0. It is unpacked, not installed, into
# test/interop/.peers/slixmpp-1.10 (gitignored), so that 1.8.3 stays the
# system package; tests load it with
# PYTHONPATH=test/interop/.peers/slixmpp-1.10/usr/lib/python3/dist-packages.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
python=/usr/bin/python3

need=()
$python -c 'import slixmpp' 2>/dev/null || need+=(python3-slixmpp)
$python -c 'import aioxmpp' 2>/dev/null || need+=(python3-aioxmpp)
# slixmpp's XEP-0363 plugin uploads with aiohttp (upload_test.go).
$python -c 'import aiohttp' 2>/dev/null || need+=(python3-aiohttp)
# Prosody, and lua-unbound (only recommended by the package): its resolver
# is the one the federation test can point at its own DNS server.
command -v prosody >/dev/null && command -v prosodyctl >/dev/null || need+=(prosody)
lua5.4 -e 'require "lunbound"' 2>/dev/null || need+=(lua-unbound)
# ejabberd 24.12 from bookworm-backports (bookworm has 23.01): the
# migration test (internal/xep227) exports a populated ejabberd with
# export_piefxis and imports it into ode.
ejabberd_version=24.12
ejabberd_need=0
case "$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null)" in
"$ejabberd_version"-*) ;;
*) ejabberd_need=1 ;;
esac
# coturn's turnserver and turnutils_uclient check XEP-0215 TURN credentials.
command -v turnserver >/dev/null && command -v turnutils_uclient >/dev/null || need+=(coturn)
# pebble, Let's Encrypt's test ACME server: ode obtains and renews its
# certificates from it (test/interop/acme_test.go).
command -v pebble >/dev/null || need+=(pebble)
# PostgreSQL's server binaries (initdb, pg_ctl): the storage tests start
# their own server in a temporary directory (internal/storage/postgres/pgtest).
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
  need+=(postgresql)
# systemd-analyze verifies the example unit docs/ode.service
# (internal/sdnotify TestUnitFile); Debian images usually have it.
command -v systemd-analyze >/dev/null || need+=(systemd)
# Debian's Chromium runs Converse.js (web_test.go); DejaVu gives its pages
# and screenshots a font (chromium itself depends on none).
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)

# slixmpp 1.10.0 from bookworm-backports. Its dependencies (python3-aiodns,
# python3-pyasn1, python3-pyasn1-modules) carry no versions, so bookworm's,
# which python3-slixmpp pulls in, do; the package is pure Python ("all").
bpo_version=1.10.0
bpo_dir="$here/.peers/slixmpp-1.10"
bpo_cache="$here/.peers/cache"
bpo_sources=/etc/apt/sources.list.d/bookworm-backports.sources
bpo_ok() {
  PYTHONPATH="$bpo_dir/usr/lib/python3/dist-packages" $python -c \
    "import sys, slixmpp; sys.exit(slixmpp.__version__ != '$bpo_version')" 2>/dev/null
}
bpo_need=0
bpo_ok || bpo_need=1

# The web clients pinned by web/package-lock.json (xmpp.js, Converse.js,
# playwright-core), when node_modules is missing or older than the lockfile.
# --ignore-scripts: no package runs code when installed, so none downloads
# a browser (the tests use Debian's Chromium).
web="$here/web"
if [ ! -e "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  if command -v npm >/dev/null; then
    echo "install-peers: npm ci in $web" >&2
    (cd "$web" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >&2
  else
    echo "install-peers: npm is not on PATH: the web tests need Node.js >= 20.10 with npm" >&2
  fi
fi

if [ ${#need[@]} -eq 0 ] && [ $bpo_need = 0 ] && [ $ejabberd_need = 0 ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

if { [ $bpo_need = 1 ] || [ $ejabberd_need = 1 ]; } && [ ! -e "$bpo_sources" ] &&
  ! grep -qsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
  echo "install-peers: adding the bookworm-backports apt source ($bpo_sources)" >&2
  $sudo tee "$bpo_sources" >/dev/null <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
$sudo apt-get update -qq

if [ ${#need[@]} -gt 0 ]; then
  # Backports have a low priority: python3-slixmpp comes from bookworm.
  echo "install-peers: installing ${need[*]}" >&2
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ $ejabberd_need = 1 ]; then
  echo "install-peers: installing ejabberd $ejabberd_version from bookworm-backports" >&2
  $sudo apt-get install -y -qq --no-install-recommends -t bookworm-backports ejabberd >/dev/null
  # The package starts a system-wide ejabberd (5222, 5269, 5280, and
  # Erlang's epmd); the tests run their own in a temporary directory.
  echo "install-peers: stopping and disabling the ejabberd service" >&2
  $sudo invoke-rc.d ejabberd stop >/dev/null 2>&1 || true
  $sudo deb-systemd-helper disable ejabberd.service >/dev/null 2>&1 || true
  $sudo update-rc.d ejabberd disable >/dev/null 2>&1 || true
  case "$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null)" in
  "$ejabberd_version"-*) ;;
  *)
    echo "install-peers: bookworm-backports has ejabberd $(dpkg-query -W -f '${Version}' ejabberd), the tests expect $ejabberd_version" >&2
    exit 1
    ;;
  esac
fi

if [[ " ${need[*]} " == *" prosody "* ]]; then
  # The package starts a system-wide Prosody on the standard ports (5222,
  # 5269), which other tests use; the interop test runs its own Prosody.
  echo "install-peers: stopping and disabling the prosody service" >&2
  $sudo invoke-rc.d prosody stop >/dev/null 2>&1 || true
  $sudo deb-systemd-helper disable prosody.service >/dev/null 2>&1 || true
  $sudo update-rc.d prosody disable >/dev/null 2>&1 || true
fi

if [[ " ${need[*]} " == *" postgresql "* ]]; then
  # The package creates and starts a system-wide cluster on port 5432; the
  # tests run their own servers.
  echo "install-peers: stopping and disabling the postgresql service" >&2
  $sudo invoke-rc.d postgresql stop >/dev/null 2>&1 || true
  $sudo deb-systemd-helper disable postgresql.service >/dev/null 2>&1 || true
  $sudo update-rc.d postgresql disable >/dev/null 2>&1 || true
fi

if [ $bpo_need = 1 ]; then
  echo "install-peers: unpacking bookworm-backports' python3-slixmpp into $bpo_dir" >&2
  mkdir -p "$bpo_cache"
  rm -f "$bpo_cache"/python3-slixmpp_*.deb
  # apt-get download needs no root; as root it says it downloads
  # unsandboxed, since _apt cannot write here.
  (cd "$bpo_cache" && apt-get download -qq python3-slixmpp/bookworm-backports 2>&1 |
    grep -v 'unsandboxed as root' >&2 || true)
  deb=$(ls "$bpo_cache"/python3-slixmpp_*.deb 2>/dev/null | head -n1)
  if [ -z "$deb" ]; then
    echo "install-peers: apt-get download python3-slixmpp/bookworm-backports failed" >&2
    exit 1
  fi
  version=$(dpkg-deb -f "$deb" Version)
  case "$version" in
  "$bpo_version"-*) ;;
  *)
    echo "install-peers: bookworm-backports has python3-slixmpp $version, the tests expect $bpo_version" >&2
    exit 1
    ;;
  esac
  tmp="$bpo_dir.tmp"
  rm -rf "$tmp"
  dpkg -x "$deb" "$tmp"
  rm -rf "$bpo_dir"
  mv "$tmp" "$bpo_dir"
  bpo_ok || {
    echo "install-peers: slixmpp $bpo_version in $bpo_dir does not import with $python" >&2
    exit 1
  }
fi
