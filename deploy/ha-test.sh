#!/usr/bin/env bash
# Highly available PostgreSQL, tested: builds the deploy/ topology on loopback from Debian's packages and fails the
# primary under load.
#
#   etcd :23790 (1 member) ─ Patroni pg1 (PostgreSQL :5441, REST :8008) ══ synchronous streaming ══ Patroni pg2 (:5442, :8009)
#   HAProxy :5440 ─▶ whichever member answers 200 to GET /primary
#   three dinhdanh nodes (:3081-3083, DATABASE_URL through HAProxy :5440, one MASTER_KEY)
#   HAProxy :3080 ─▶ the nodes that answer 200 to GET /readyz          (stats on http://127.0.0.1:8404/)
#
# Then: seeds the demo data, registers a portal and a back-end service, drives logins, refreshes and client_credentials
# grants through HAProxy :3080 (deploy/ha-load.ts), kills the primary's host (kill -9 of its Patroni and its whole
# PostgreSQL) and prints the failover time, client-visible errors, requests lost and committed tokens lost. Finally
# it restarts the old primary and times its return as the standby. Everything it started is stopped and removed on
# exit (HA_KEEP=1 keeps the logs).
#
#   bash deploy/ha-test.sh                     # as root (installs missing packages, runs PostgreSQL as `postgres`)
#   HA_FAULT=stop bash deploy/ha-test.sh       # Patroni stopped cleanly (a host shut down) instead
#   HA_FAULT=switchover bash deploy/ha-test.sh # a planned `patronictl switchover`
#   HA_SYNC=off bash deploy/ha-test.sh         # asynchronous replication, to see what it risks
#   HA_LAG_SECONDS=3 bash deploy/ha-test.sh    # the primary's WAL sender frozen 3 s before the fault (with HA_SYNC
#                                              # on, commits wait for it; off, they return and are lost with the host)
#   HA_WORKERS=6 HA_WARMUP_SECONDS=15          # the defaults of the load
#
# Uses ports 23790, 23800, 3080-3083, 5440-5442, 8008-8009 and 8404 on 127.0.0.1 (refuses to start if one is taken);
# never touches the machine's PostgreSQL cluster on 5432. Not part of `npm test`.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$here"
fault=${HA_FAULT:-kill}
sync=${HA_SYNC:-on}
lag=${HA_LAG_SECONDS:-0}
workers=${HA_WORKERS:-6}
warmup=${HA_WARMUP_SECONDS:-15}
pgbin=${HA_PG_BIN:-/usr/lib/postgresql/15/bin}
# etcd on ports of its own: Debian's etcd-server, where systemd runs, starts one on 2379 when installed.
ports=(23790 23800 3080 3081 3082 3083 5440 5441 5442 8008 8009 8404)

say() { printf '[ha-test %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  say "FAILED: $*"
  exit 1
}
[ "$(id -u)" = 0 ] || die "run as root (apt-get, and PostgreSQL runs as the postgres user)"
case "$fault" in kill | stop | switchover) ;; *) die "HA_FAULT must be kill, stop or switchover" ;; esac
case "$sync" in on | off) ;; *) die "HA_SYNC must be on or off" ;; esac
[[ "$lag" =~ ^[0-9]+$ ]] || die "HA_LAG_SECONDS must be a whole number"

# --- packages: Debian's, installed only when missing -------------------------------------------------------------
missing=()
command -v patroni >/dev/null || missing+=(patroni)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
[ -x "$pgbin/postgres" ] || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  # Debian starts these daemons on install where systemd runs; this test runs its own, on its own ports.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
node="$here/node_modules/.bin/node"
if [ ! -x "$node" ]; then
  say "installing the project's dependencies (npm ci)"
  npm ci --no-audit --no-fund >/dev/null
fi
for p in "${ports[@]}"; do
  if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use (something else runs there; stop it first)"; fi
done

# --- everything below lives in one folder and in the process groups listed in $groups -----------------------------
work=$(mktemp -d /tmp/dinhdanh-ha.XXXXXX)
chmod 755 "$work"
chown postgres: "$work"
groups=() # process-group ids of what this script started (each started with setsid)
patroni_pgid=()
node_pgid=()

# group_alive PGID: true while a process of that group runs.
group_alive() { kill -0 -- "-$1" 2>/dev/null; }
# The processes of the running PostgreSQL servers: each postmaster and its children (Patroni starts the postmaster in a
# session of its own, and every backend makes itself a process group of its own: no one group holds them all).
postgres_pids() {
  local d pid
  for d in "$work"/pg1 "$work"/pg2; do
    pid=$(head -1 "$d/postmaster.pid" 2>/dev/null) || continue
    kill -0 "$pid" 2>/dev/null || continue
    echo "$pid" $(pgrep -P "$pid")
  done
}
# stop_groups SIGNAL PGID...: signals each group, then waits (30 s at most) until they and the postmasters are gone.
stop_groups() {
  local sig=$1
  shift
  for g in "$@"; do kill "-$sig" -- "-$g" 2>/dev/null || true; done
  local deadline=$((SECONDS + 30)) alive
  while [ $SECONDS -lt $deadline ]; do
    alive=0
    for g in "$@"; do group_alive "$g" && alive=1; done
    [ -z "$(postgres_pids)" ] || alive=1
    [ $alive = 0 ] && return 0
    sleep 0.2
  done
}
stop_all() {
  local status=$?
  trap - EXIT INT TERM
  say "cleaning up"
  # Everything but etcd (dinhdanh, HAProxy; Patroni stops its PostgreSQL on SIGTERM), then etcd, then what is left.
  local rest=()
  for g in "${groups[@]}"; do [ "$g" = "${etcd_pgid:-}" ] || rest+=("$g"); done
  [ ${#rest[@]} = 0 ] || stop_groups TERM "${rest[@]}"
  [ -z "${etcd_pgid:-}" ] || stop_groups TERM "$etcd_pgid"
  for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  for p in $(postgres_pids); do kill -KILL "$p" 2>/dev/null || true; done
  if [ "${HA_KEEP:-0}" = 1 ] || [ $status != 0 ]; then
    say "logs kept in $work (remove with: rm -rf $work)"
  else
    rm -rf "$work"
  fi
  exit $status
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# start NAME USER CMD...: runs CMD in a session of its own (so its whole group can be signalled), logs to $work/NAME.log;
# its process-group id is left in $started.
start() {
  local name=$1 user=$2
  shift 2
  if [ "$user" = root ]; then
    setsid "$@" >"$work/$name.log" 2>&1 </dev/null &
  else
    # setpriv execs (runuser would stay in between and turn a SIGTERM into a SIGKILL of Patroni after 2 s).
    setsid setpriv --reuid="$user" --regid="$user" --init-groups env HOME="$(getent passwd "$user" | cut -d: -f6)" \
      "$@" >"$work/$name.log" 2>&1 </dev/null &
  fi
  started=$!
  disown "$started" # no "Killed" job notices: this script signals its groups itself
  groups+=("$started")
}

# wait_for WHAT SECONDS CMD...: polls CMD every 0.2 s until it succeeds; fails after SECONDS.
wait_for() {
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${limit}s waiting for: $what"
    sleep 0.2
  done
}
http_is() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$2")" = "$1" ]; }

# --- etcd --------------------------------------------------------------------------------------------------------
say "starting etcd, Patroni pg1 and pg2 (PostgreSQL 15 from $pgbin) in $work"
start etcd root etcd --name ha-etcd --data-dir "$work/etcd" \
  --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster ha-etcd=http://127.0.0.1:23800 --initial-cluster-state new
etcd_pgid=$started
wait_for "etcd" 30 curl -sf http://127.0.0.1:23790/health

# --- Patroni: deploy/patroni-{1,2}.yml, with this run's folders and secrets -----------------------------------------
pw() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
PATRONI_SUPERUSER_PASSWORD=$(pw) PATRONI_REPLICATION_PASSWORD=$(pw)
PATRONI_REWIND_PASSWORD=$(pw) PATRONI_RESTAPI_PASSWORD=$(pw)
export PATRONI_SUPERUSER_USERNAME=postgres PATRONI_REPLICATION_USERNAME=replicator PATRONI_REWIND_USERNAME=rewind_user \
  PATRONI_RESTAPI_USERNAME=patroni PATRONI_SUPERUSER_PASSWORD PATRONI_REPLICATION_PASSWORD PATRONI_REWIND_PASSWORD \
  PATRONI_RESTAPI_PASSWORD
export PATRONI_ETCD3_HOSTS=127.0.0.1:23790 PATRONI_POSTGRESQL_BIN_DIR=$pgbin
app_pw=$(pw)
patroni_start() { # member number
  local i=$1
  # PostgreSQL wants its data directory 0700; Patroni would create it from the umask.
  install -d -m 700 -o postgres -g postgres "$work/pg$i"
  start "patroni$i" postgres env PATRONI_POSTGRESQL_DATA_DIR="$work/pg$i" \
    PATRONI_POSTGRESQL_PGPASS="$work/pgpass$i" patroni "$here/deploy/patroni-$i.yml"
  patroni_pgid[i]=$started
}
patroni_start 1
wait_for "pg1 to bootstrap and lead (GET :8008/primary = 200)" 90 http_is 200 http://127.0.0.1:8008/primary
patroni_start 2
wait_for "pg2 to clone and become the synchronous standby (GET :8009/sync = 200)" 120 \
  http_is 200 http://127.0.0.1:8009/sync

if [ "$sync" = off ]; then
  # Asynchronous replication, for comparison: a commit returns before the standby has it.
  patronictl -c "$here/deploy/patroni-1.yml" edit-config --force --quiet -s synchronous_mode=false >/dev/null
  wait_for "pg2 to be an asynchronous standby (GET :8009/async = 200)" 60 http_is 200 http://127.0.0.1:8009/async
fi

# --- HAProxy ------------------------------------------------------------------------------------------------------
start haproxy root haproxy -db -f "$here/deploy/haproxy.cfg"
export PGPASSWORD=$PATRONI_SUPERUSER_PASSWORD
wait_for "HAProxy :5440 to reach the primary" 30 \
  psql -h 127.0.0.1 -p 5440 -U postgres -d postgres -Atqc 'select not pg_is_in_recovery()' -v ON_ERROR_STOP=1
psql -h 127.0.0.1 -p 5440 -U postgres -d postgres -qv ON_ERROR_STOP=1 <<SQL >/dev/null
create role dinhdanh login password '$app_pw';
create database dinhdanh owner dinhdanh;
SQL
unset PGPASSWORD

# --- dinhdanh: migrate, seed, register the load's clients, start three nodes ---------------------------------------
export DATABASE_URL="postgres://dinhdanh:$app_pw@127.0.0.1:5440/dinhdanh"
MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export MASTER_KEY
export NODE_ENV=development ISSUER=http://localhost:3080 DEMO_SEED=never DATA_DIR="$work/data"
say "migrating, seeding the demo data, registering a portal and a back-end service"
cli() { "$node" src/cli/main.ts "$@"; }
cli migrate >"$work/migrate.log" 2>&1 || die "migrate failed: $(tail -5 "$work/migrate.log")"
cli seed --demo --operator ha-test >/dev/null
redirect=http://localhost:4702/cb
cli clients add --name "HA test portal" --redirect-uri "$redirect" --operator ha-test >"$work/portal.json"
cli clients add --name "HA test service" --client-credentials --operator ha-test >"$work/service.json"

say "starting three dinhdanh nodes behind HAProxy :3080"
for i in 1 2 3; do
  start "node$i" root env PORT=$((3080 + i)) LOG_LEVEL=info SHUTDOWN_GRACE_SECONDS=2 \
    "$node" --max-semi-space-size=8 src/cli/main.ts start
  node_pgid[i]=$started
done
for i in 1 2 3; do wait_for "node$i /readyz" 60 http_is 200 "http://127.0.0.1:$((3080 + i))/readyz"; done
wait_for "HAProxy :3080 to put the nodes in rotation" 30 http_is 200 http://127.0.0.1:3080/readyz

# --- the fault: what happens to the member that is primary when it fires (a script run by ha-load.ts) -----------------
primary=1
http_is 200 http://127.0.0.1:8008/primary || primary=2
standby=$((3 - primary))
pgdir="$work/pg$primary"
{
  echo 'set -u'
  # SQL on a member over its Unix socket (peer authentication as postgres).
  echo "sql() { setpriv --reuid=postgres --regid=postgres --init-groups psql -h $work -p \$((5440 + \$1)) -d postgres -Atc \"\$2\"; }"
  echo "pm=\$(head -1 $pgdir/postmaster.pid)"
  if [ "$lag" != 0 ]; then
    # The standby falls behind first: the primary's WAL sender is frozen for $lag s (as by a saturated link), so WAL
    # written meanwhile never leaves the primary. (Freezing the standby's receiver would not do: what was sent waits in
    # the kernel's socket buffer and is read after the primary is gone.)
    echo "ws=\$(pgrep -P \$pm -f 'walsender replicator'); kill -STOP \$ws; sleep $lag"
    echo "got=\$(sql $standby 'select pg_last_wal_receive_lsn()')"
    echo "echo \"[fault] WAL sender \$ws frozen $lag s: the standby lacks \$(sql $primary \"select pg_wal_lsn_diff(pg_current_wal_lsn(), '\$got')\") bytes of WAL\" >&2"
  fi
  case "$fault" in
  kill) # The host is lost: Patroni dies without releasing the leader key, PostgreSQL without a shutdown checkpoint.
    # Every process of the server at once: the postmaster frozen first (it forks no more), then all killed.
    echo "kill -KILL -- -${patroni_pgid[$primary]}; kill -STOP \$pm; kill -KILL \$pm \$(pgrep -P \$pm)" ;;
  stop) # Patroni is stopped cleanly (a host's shutdown): it stops PostgreSQL, then gives up the leader key.
    echo "kill -TERM -- -${patroni_pgid[$primary]}" ;;
  switchover) # A planned switchover: the old primary stays up and becomes the standby.
    echo "patronictl -c $here/deploy/patroni-$primary.yml switchover --leader pg$primary --candidate pg$standby --force >/dev/null" ;;
  esac
  [ "$lag" = 0 ] || echo "kill -CONT \$ws 2>/dev/null || true"
} >"$work/fault.sh"
case "$fault" in
kill) fault_name="kill -9 of Patroni and PostgreSQL" ;;
stop) fault_name="Patroni stopped" ;;
switchover) fault_name="patronictl switchover" ;;
esac
[ "$lag" = 0 ] || fault_name="primary's WAL sender frozen ${lag} s, then $fault_name"
fault_cmd="bash $work/fault.sh"
fault_name="pg$primary ($fault_name; replication $([ "$sync" = on ] && echo synchronous || echo ASYNCHRONOUS))"

say "load: $workers workers for ${warmup}s, then the fault on pg$primary (HA_FAULT=$fault), until recovered"
set +e # a failed check is reported at the end, after the old primary's return
"$node" deploy/ha-load.ts --issuer http://localhost:3080 --portal "$work/portal.json" --service "$work/service.json" \
  --redirect-uri "$redirect" --workers "$workers" --warmup "$warmup" --fault "$fault_cmd" \
  --fault-name "$fault_name" \
  --nodes http://127.0.0.1:3081,http://127.0.0.1:3082,http://127.0.0.1:3083 \
  --patroni "pg1=http://127.0.0.1:8008,pg2=http://127.0.0.1:8009" \
  --logs "$work/node1.log,$work/node2.log,$work/node3.log" | tee "$work/report.txt"
load_status=${PIPESTATUS[0]}
set -e

# --- the old primary comes back: Patroni rewinds it if needed and it becomes the synchronous standby -------------------
t0=$SECONDS
if [ "$fault" != switchover ]; then
  say "restarting pg$primary: it should rejoin as the standby"
  patroni_start "$primary"
fi
api=$((8007 + primary))
role=sync
[ "$sync" = on ] || role=async
wait_for "pg$primary to rejoin as the ${role}hronous standby" 120 http_is 200 "http://127.0.0.1:$api/$role"
echo "old primary pg$primary back as ${role}hronous standby: $((SECONDS - t0)) s after $(
  [ "$fault" = switchover ] && echo 'the load stopped' || echo 'its restart')"
echo "cluster now: $(curl -s http://127.0.0.1:$((8007 + standby))/cluster |
  jq -c '[.members[] | {name, role, state, lag}]')"
running=0
for i in 1 2 3; do group_alive "${node_pgid[$i]}" && running=$((running + 1)); done
echo "dinhdanh nodes still running, never restarted: $running of 3"
[ $running = 3 ] || load_status=1
exit "$load_status"
