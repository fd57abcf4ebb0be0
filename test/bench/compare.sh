#!/usr/bin/env bash
# Runs ode bench against ode, Prosody and ejabberd one after the other on
# this machine, each on loopback with its own config and data under a
# temporary directory (not the system services), and writes a side-by-side
# table into docs/performance.md (between the compare markers). Not part of
# CI: a full run takes about 25 minutes and needs root to install Prosody
# and ejabberd from bookworm-backports when they are missing.
#
# Environment (defaults in brackets):
#   SERVERS   which servers, in order ["ode prosody ejabberd"]
#   USERS     chat users [1000]        IDLE   idle sessions [10000]
#   LOGINS    logins per mechanism [3000]
#   STEP      duration of a chat step [10s]
#   RATES     fixed chat rates [1000,10000]   MAX_STEPS  capacity search steps [12]
#   WORK      where configs, data and JSON results go [a new /tmp/ode-compare.*]
#   OUT       the file to write the table into [docs/performance.md];
#             OUT=- prints it instead
#   SCENARIOS which measurements ["register chat search login idle"]; with
#             the same WORK, a later run redoes some and keeps the others
#   ODE_BEFORE  an ode binary from an earlier commit: with "odebefore" in
#             SERVERS it gets a column of its own (ODE_BEFORE_NOTE says which)
#   ODE_COMMIT  names the commit when the tree has no .git (an export)
#   ODE_MODULES_DISABLED  ode modules turned off ["mam"; "" for none]: Prosody and ejabberd
#             run without an archive too
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
SERVERS=${SERVERS:-"ode prosody ejabberd"}
USERS=${USERS:-1000}
IDLE=${IDLE:-10000}
LOGINS=${LOGINS:-3000}
STEP=${STEP:-10s}
RATES=${RATES:-1000,10000}
MAX_STEPS=${MAX_STEPS:-12}
SCENARIOS=${SCENARIOS:-"register chat search login idle"}
WORK=${WORK:-$(mktemp -d /tmp/ode-compare.XXXXXX)}
OUT=${OUT:-$root/docs/performance.md}
ODE_MODULES_DISABLED=${ODE_MODULES_DISABLED-mam} # empty: none
mkdir -p "$WORK/results"
chmod 755 "$WORK"
log() { echo "compare: $*" >&2; }

install_peers() {
	command -v prosody >/dev/null && command -v ejabberdctl >/dev/null && return
	log "installing prosody and ejabberd from bookworm-backports"
	if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
		echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/bookworm-backports.list
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports prosody ejabberd >/dev/null
	# The packages' own services are not used.
	command -v systemctl >/dev/null && systemctl disable --now prosody ejabberd 2>/dev/null || true
}

# A self-signed ECDSA P-256 certificate for Prosody and ejabberd, the key
# type of ode's generated default.
make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 7 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost 2>/dev/null
	cat "$WORK/key.pem" "$WORK/cert.pem" >"$WORK/server.pem"
}

wait_port() { # host:port
	for _ in $(seq 300); do
		(exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
		sleep 0.1
	done
	log "nothing listens on $1"
	return 1
}

wait_closed() { # host:port
	for _ in $(seq 600); do
		(exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null || return 0
		sleep 0.1
	done
	log "$1 still listens"
}

# --- ode -------------------------------------------------------------------
ode_addr=127.0.0.1:5222
odebefore_addr=$ode_addr
start_ode() { # [name binary]
	local name=${1:-ode} bin=${2:-$WORK/bin/ode}
	local d="$WORK/$name"
	[ "${FRESH:-0}" = 1 ] && rm -rf "$d/data"
	mkdir -p "$d/data"
	local disabled=""
	for m in $ODE_MODULES_DISABLED; do disabled+="\"$m\", "; done
	cat >"$d/ode.toml" <<-TOML
		[server]
		domains = ["localhost"]
		data_dir = "$d/data"
		[log]
		level = "warn"
		[c2s]
		listen = ["$ode_addr"]
		direct_tls = ["127.0.0.1:5223"]
		[s2s]
		enabled = false
		[modules]
		disabled = [${disabled%, }]
		[modules.register]
		enabled = true
		per_ip_per_hour = 1000000
	TOML
	"$bin" serve -c "$d/ode.toml" >>"$d/serve.log" 2>&1 &
	echo $! >"$d/pid"
	wait_port $ode_addr
}
stop_ode() { kill "$(cat "$WORK/${1:-ode}/pid")"; wait "$(cat "$WORK/${1:-ode}/pid")" 2>/dev/null || true; wait_closed $ode_addr; }
version_ode() { echo "ode $("$WORK/bin/ode" version | cut -d' ' -f2) ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "${ODE_COMMIT:-unknown commit}"), $(go version | cut -d' ' -f3))"; }
# ODE_BEFORE: an ode binary built from an earlier commit, run as the server
# "odebefore" for a before/after column.
start_odebefore() { mkdir -p "$WORK/odebefore"; start_ode odebefore "$ODE_BEFORE"; }
stop_odebefore() { stop_ode odebefore; }
version_odebefore() { echo "ode before: $("$ODE_BEFORE" version) ($ODE_BEFORE_NOTE)"; }

# --- Prosody ---------------------------------------------------------------
prosody_addr=127.0.0.1:15222
start_prosody() {
	local d="$WORK/prosody"
	[ "${FRESH:-0}" = 1 ] && rm -rf "$d/data"
	mkdir -p "$d/data" "$d/certs"
	cat >"$d/prosody.cfg.lua" <<-LUA
		-- ode bench comparison: Prosody on loopback with its own data
		run_as_root = true
		pidfile = "$d/prosody.pid"
		data_path = "$d/data"
		certificates = "$d/certs"
		log = { warn = "$d/prosody.log" }
		network_backend = "epoll"
		interfaces = { "127.0.0.1" }
		c2s_ports = { 15222 }
		c2s_direct_tls_ports = { 15223 }
		c2s_require_encryption = true
		authentication = "internal_hashed"
		iteration_count = 4096
		storage = "internal"
		allow_registration = true
		min_seconds_between_registrations = 0
		registration_throttle_max = 1000000
		modules_enabled = {
		  "roster"; "saslauth"; "tls"; "disco"; "carbons"; "private"; "blocklist";
		  "vcard_legacy"; "version"; "uptime"; "time"; "ping"; "register"; "offline";
		  "smacks"; "csi_simple"; "posix";
		}
		modules_disabled = { "s2s" }
		ssl = { certificate = "$WORK/cert.pem"; key = "$WORK/key.pem" }
		VirtualHost "localhost"
	LUA
	prosody -F --config "$d/prosody.cfg.lua" >>"$d/out.log" 2>&1 &
	echo $! >"$d/pid"
	wait_port $prosody_addr
}
stop_prosody() { kill "$(cat "$WORK/prosody/pid")"; wait "$(cat "$WORK/prosody/pid")" 2>/dev/null || true; wait_closed $prosody_addr; }
version_prosody() { echo "Prosody $(dpkg-query -W -f '${Version}' prosody) (Lua $(lua5.4 -v 2>&1 | cut -d' ' -f2), epoll backend)"; }

# --- ejabberd --------------------------------------------------------------
ejabberd_addr=127.0.0.1:25222
# ejabberdctl as the ejabberd user directly (as root it would su, which
# resets the open-file limit to 1024: too few for 10,000 sessions; the
# hard limit is what this machine allows).
ejabberdctl_() {
	HOME=/var/lib/ejabberd prlimit --nofile="$(ulimit -Hn)" -- setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
		ejabberdctl --ctl-config "$WORK/ejabberd/ejabberdctl.cfg" --config "$WORK/ejabberd/ejabberd.yml" \
		--spool "$WORK/ejabberd/db" --logs "$WORK/ejabberd/log" "$@"
}
start_ejabberd() {
	local d="$WORK/ejabberd"
	[ "${FRESH:-0}" = 1 ] && rm -rf "$d/db"
	mkdir -p "$d/db" "$d/log"
	cp "$WORK/server.pem" "$d/server.pem"
	# Schedulers that sleep instead of busy-waiting: the CPU time read from
	# /proc is then the work done, as for the other two.
	cat >"$d/ejabberdctl.cfg" <<-CFG
		ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 +sbwt none +sbwtdcpu none +sbwtdio none"
		EJABBERD_PID_PATH=$d/ejabberd.pid
		ERLANG_NODE=odecompare@localhost
	CFG
	cat >"$d/ejabberd.yml" <<-YML
		hosts: ["localhost"]
		loglevel: warning
		certfiles: ["$d/server.pem"]
		listen:
		  - {port: 25222, ip: "127.0.0.1", module: ejabberd_c2s, max_stanza_size: 262144, shaper: none, access: c2s, starttls_required: true}
		  - {port: 25223, ip: "127.0.0.1", module: ejabberd_c2s, tls: true, max_stanza_size: 262144, shaper: none, access: c2s}
		auth_method: internal
		auth_password_format: scram
		auth_scram_hash: sha
		default_db: mnesia
		acl:
		  local: {user_regexp: ""}
		access_rules:
		  c2s: {allow: all}
		  register: {allow: all}
		shaper_rules:
		  max_user_sessions: 10
		  max_user_offline_messages: 5000
		  c2s_shaper: none
		registration_timeout: infinity
		modules:
		  mod_roster: {}
		  mod_disco: {}
		  mod_ping: {}
		  mod_offline: {}
		  mod_carboncopy: {}
		  mod_blocking: {}
		  mod_privacy: {}
		  mod_private: {}
		  mod_vcard: {}
		  mod_version: {}
		  mod_time: {}
		  mod_last: {}
		  mod_stream_mgmt: {}
		  mod_client_state: {}
		  mod_register: {ip_access: all, access: register}
	YML
	chown -R ejabberd: "$d"
	ejabberdctl_ foreground >>"$d/out.log" 2>&1 &
	echo $! >"$d/pid"
	wait_port $ejabberd_addr
}
stop_ejabberd() {
	ejabberdctl_ stop >/dev/null 2>&1 || true
	wait "$(cat "$WORK/ejabberd/pid")" 2>/dev/null || true
	wait_closed $ejabberd_addr
}
version_ejabberd() { echo "ejabberd $(dpkg-query -W -f '${Version}' ejabberd) (Erlang/OTP $(erl -noshell -eval 'io:put_chars(erlang:system_info(otp_release)), halt().'), Mnesia)"; }

# --- the scenarios ----------------------------------------------------------
bench() { # name server scenario args...
	local name=$1 server=$2 scenario=$3 addr_var="${2}_addr"
	shift 3
	log "$server: $name"
	"$WORK/bin/ode" bench "$scenario" -addr "${!addr_var}" -insecure -timeout 20m -json "$WORK/results/$server-$name.json" "$@" |
		tee "$WORK/results/$server-$name.txt" >&2 || log "$server: $name failed (see $WORK/results/$server-$name.txt)"
}

has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

suite() { # server
	local s=$1
	echo "load average before $s: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/results/load.txt"
	if has register; then
		FRESH=1 "start_$s"
		bench register "$s" login -register -users "$IDLE" -n 1 -concurrency 16
		"stop_$s"
	fi
	# Each measurement on a freshly started server: what one leaves behind
	# (a backlog of messages, 10,000 sessions ending, thousands of logouts)
	# is not in the next.
	if has chat; then
		"start_$s"
		bench chat "$s" chat -users "$USERS" -rate "$RATES" -duration "$STEP" -concurrency 16
		"stop_$s"
	fi
	if has search; then
		"start_$s"
		bench search "$s" chat -users "$USERS" -rate 1000 -search -max-steps "$MAX_STEPS" -duration "$STEP" -concurrency 16
		"stop_$s"
	fi
	if has login; then
		"start_$s"
		bench login-scram "$s" login -users "$USERS" -n "$LOGINS" -concurrency 16 -mechanism SCRAM-SHA-1 -sasl1
		bench login-plain "$s" login -users "$USERS" -n "$LOGINS" -concurrency 16 -mechanism PLAIN -sasl1
		"stop_$s"
	fi
	if has idle; then
		"start_$s"
		bench idle "$s" idle -users "$IDLE" -hold 10s -concurrency 16
		"stop_$s"
	fi
	"version_$s" >"$WORK/results/$s.version"
}

install_peers
# ejabberd starts Erlang's epmd daemon; stop it at the end unless it ran before.
epmd_before=$(pgrep -x epmd || true)
mkdir -p "$WORK/bin" "$WORK/ode" "$WORK/odebefore" "$WORK/prosody" "$WORK/ejabberd"
(cd "$root" && go build -o "$WORK/bin/ode" ./cmd/ode)
make_cert
log "results in $WORK/results"
for s in $SERVERS; do suite "$s"; done

{
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r)"
	echo "date: $(date -u +%Y-%m-%d)"
	[ -f "$WORK/results/load.txt" ] && paste -sd';' "$WORK/results/load.txt" | sed 's/^/load (other work on the machine): /'
	echo "settings: USERS=$USERS IDLE=$IDLE LOGINS=$LOGINS STEP=$STEP RATES=$RATES ODE_MODULES_DISABLED=$ODE_MODULES_DISABLED"
} >"$WORK/results/machine.txt"
python3 "$root/test/bench/table.py" "$WORK/results" "$SERVERS" "$OUT"
if [ -z "$epmd_before" ]; then
	for _ in $(seq 50); do # it refuses while a node is still registered
		pgrep -x epmd >/dev/null || break
		HOME=/var/lib/ejabberd setpriv --reuid=ejabberd --regid=ejabberd --init-groups epmd -kill >/dev/null 2>&1 || true
		sleep 0.2
	done
fi
log "done: $WORK/results"
