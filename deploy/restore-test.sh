#!/usr/bin/env bash
# Restore drill: proves that pgBackRest backups of dinhdanh's database restore to a point in time, and that the
# service comes back on them with exactly the sessions and tokens that existed at that point.
#
# On a scratch PostgreSQL 15 cluster (loopback, its own port; the machine's cluster is never touched) with WAL
# archived by pgBackRest into an encrypted repository (deploy/pgbackrest.conf): full backup, a dinhdanh node,
# a differential backup, a citizen signed in (session cookie, refresh token), a named restore point (and its time),
# a second sign-in after it, then the cluster is killed and restored into a new data folder up to the target; a node
# starts on it and the script checks: /readyz 200, the earlier refresh token and session still work, the later ones
# do not, `dinhdanh audit verify` passes. Prints backup size, restore time and each check; exits 1 if one fails.
#
#   sudo deploy/restore-test.sh                          (root: PostgreSQL runs as the postgres user)
#   RESTORE_TEST_TARGET=time deploy/restore-test.sh      restore to the recorded time instead of the restore point
#   RESTORE_TEST_RESIDENTS=1000000 deploy/restore-test.sh  import synthetic residents first (a database of some size)
#   RESTORE_TEST_REPLAY_RESIDENTS=N   import N more after the last backup: WAL the restore must replay
#   RESTORE_TEST_PG_PORT=55432 RESTORE_TEST_HTTP_PORT=3950 RESTORE_TEST_KEEP=1 (keep the scratch folder)
#
# Needs: Debian packages postgresql-15 and pgbackrest, `npm ci` done (Node 24 from node_modules), curl, openssl.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_PORT=${RESTORE_TEST_PG_PORT:-55432}
HTTP_PORT=${RESTORE_TEST_HTTP_PORT:-3950}
TARGET_TYPE=${RESTORE_TEST_TARGET:-name}
RESIDENTS=${RESTORE_TEST_RESIDENTS:-0}
REPLAY_RESIDENTS=${RESTORE_TEST_REPLAY_RESIDENTS:-0}
export PATH="$ROOT/node_modules/.bin:$PATH"

say() { printf '== %s\n' "$*"; }
die() {
  printf 'restore-test: %s\n' "$*" >&2
  exit 2
}
now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f s", ms / 1000 }'; }

# --- preconditions: nothing here may touch what this script did not start -----------------------------------------
[ "$(id -u)" -eq 0 ] || die 'run as root (PostgreSQL and pgBackRest run as the postgres user)'
[ -x "$PGBIN/pg_ctl" ] || die "no PostgreSQL 15 binaries in $PGBIN"
command -v pgbackrest >/dev/null || die 'pgbackrest is not installed (apt-get install pgbackrest)'
[ "$(node -p 'process.versions.node.split(".")[0]')" = 24 ] || die 'Node 24 is needed (npm ci brings it)'
case "$TARGET_TYPE" in name | time) ;; *) die 'RESTORE_TEST_TARGET is name or time' ;; esac
[[ "$RESIDENTS$REPLAY_RESIDENTS" =~ ^[0-9]+$ ]] || die 'RESTORE_TEST_RESIDENTS and _REPLAY_RESIDENTS are whole numbers'
[ "$PG_PORT" != 5432 ] || die 'port 5432 is the machine cluster: choose another RESTORE_TEST_PG_PORT'
for port in "$PG_PORT" "$HTTP_PORT"; do
  if ss -Hltn "sport = :$port" | grep -q .; then die "port $port is in use"; fi
done

as_pg() { runuser -u postgres -- "$@"; }
psql_() { "$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }

SCRATCH=$(mktemp -d /tmp/dinhdanh-restore.XXXXXX)
chown postgres: "$SCRATCH"
chmod 0700 "$SCRATCH"
NODE_PID=
FAILED=0

# shellcheck disable=SC2317 # reached through the trap
cleanup() {
  local rc=$?
  set +e
  if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -TERM "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null
  fi
  for d in "$SCRATCH/pg-a" "$SCRATCH/pg-b"; do
    if [ -f "$d/postmaster.pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1; fi
  done
  if [ "${RESTORE_TEST_KEEP:-}" = 1 ]; then
    echo "scratch kept in $SCRATCH"
  else
    rm -rf "$SCRATCH"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- pgBackRest: the shipped configuration, with scratch paths, and a passphrase from a 0600 file -----------------
# Environment variables override the configuration file, so archive_command is the production one, word for word.
as_pg mkdir -m 0700 "$SCRATCH/conf.d" "$SCRATCH/repo" "$SCRATCH/spool" "$SCRATCH/lock" "$SCRATCH/log" "$SCRATCH/run"
install -o postgres -m 0640 "$ROOT/deploy/pgbackrest.conf" "$SCRATCH/pgbackrest.conf"
(
  umask 077
  printf '[global]\nrepo1-cipher-pass=%s\n' "$(openssl rand -base64 48 | tr -d '\n')" >"$SCRATCH/conf.d/cipher.conf"
)
chown postgres: "$SCRATCH/conf.d/cipher.conf"
export PGBACKREST_CONFIG="$SCRATCH/pgbackrest.conf"
export PGBACKREST_CONFIG_INCLUDE_PATH="$SCRATCH/conf.d"
export PGBACKREST_REPO1_PATH="$SCRATCH/repo"
export PGBACKREST_SPOOL_PATH="$SCRATCH/spool"
export PGBACKREST_LOCK_PATH="$SCRATCH/lock"
export PGBACKREST_LOG_PATH="$SCRATCH/log"
export PGBACKREST_LOG_LEVEL_CONSOLE=warn
export PGBACKREST_PG1_PATH="$SCRATCH/pg-a"
export PGBACKREST_PG1_PORT="$PG_PORT"
export PGBACKREST_PG1_SOCKET_PATH="$SCRATCH/run"
pgbr() { as_pg pgbackrest --stanza=main "$@"; }

# --- the scratch cluster, archiving from the start ----------------------------------------------------------------
say "scratch cluster on 127.0.0.1:$PG_PORT ($SCRATCH)"
as_pg "$PGBIN/initdb" -D "$SCRATCH/pg-a" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
cat >>"$SCRATCH/pg-a/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$SCRATCH/run'
wal_level = replica
archive_mode = on
archive_command = 'pgbackrest --stanza=main archive-push %p'
archive_timeout = 60
EOF
as_pg "$PGBIN/pg_ctl" -D "$SCRATCH/pg-a" -l "$SCRATCH/pg-a.log" -w start >/dev/null
pgbr stanza-create
pgbr check
psql_ -c 'create database dinhdanh'

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/dinhdanh"
MASTER_KEY=$(openssl rand -base64 32)
export MASTER_KEY
export PORT="$HTTP_PORT" HOST=127.0.0.1 ISSUER="http://localhost:$HTTP_PORT" LOG_LEVEL=warn SHUTDOWN_GRACE_SECONDS=0
cd "$ROOT"
node src/cli/main.ts migrate --operator restore-test >/dev/null
node src/cli/main.ts seed --demo --operator restore-test >/dev/null
# Imports $1 synthetic residents (generator seed $2).
import_residents() {
  local t0
  t0=$(now_ms)
  node src/cli/main.ts registry generate --count "$1" --seed "$2" --out "$SCRATCH/residents.csv"
  node src/cli/main.ts registry import "$SCRATCH/residents.csv" --operator restore-test >/dev/null
  rm "$SCRATCH/residents.csv"
  echo "imported in $(secs $(($(now_ms) - t0)))"
}
if [ "$RESIDENTS" -gt 0 ]; then
  say "registry: $RESIDENTS synthetic residents (a database of some size to back up and restore)"
  import_residents "$RESIDENTS" 1
fi

say 'full backup'
t0=$(now_ms)
pgbr --type=full backup
FULL_MS=$(($(now_ms) - t0))

# Polls /readyz until 200, at most 60 s; prints how long it took.
wait_ready() {
  local t0 code
  t0=$(now_ms)
  while :; do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
    [ "$code" = 200 ] && return 0
    kill -0 "$NODE_PID" 2>/dev/null || return 1
    [ $(($(now_ms) - t0)) -lt 60000 ] || return 1
    sleep 0.1
  done
}
start_node() {
  node src/cli/main.ts start >>"$SCRATCH/$1.log" 2>&1 &
  NODE_PID=$!
}
stop_node() {
  kill -TERM "$NODE_PID"
  wait "$NODE_PID" || true
  NODE_PID=
}

say "dinhdanh on $ISSUER"
start_node node-a
wait_ready || die "node did not become ready: $(tail -n 20 "$SCRATCH/node-a.log")"

say 'differential backup (node running)'
t0=$(now_ms)
pgbr --type=diff backup
DIFF_MS=$(($(now_ms) - t0))

if [ "$REPLAY_RESIDENTS" -gt 0 ]; then
  say "registry: $REPLAY_RESIDENTS more residents after the last backup (WAL the restore must replay)"
  import_residents "$REPLAY_RESIDENTS" 2
fi
say 'before the target: the citizen signs in'
node deploy/restore-check.ts signin "$SCRATCH/state.json" before
TARGET_NAME="restore-test-$(date -u +%Y%m%dT%H%M%S)"
read -r TARGET_LSN TARGET_TIME < <(psql_ -d dinhdanh -F ' ' \
  -c "select pg_create_restore_point('$TARGET_NAME'), clock_timestamp()")
echo "target: restore point $TARGET_NAME, time $TARGET_TIME"
say 'after the target: another browser signs in'
node deploy/restore-check.ts signin "$SCRATCH/state.json" after
# What happened after the target is archived (check switches WAL and waits for the segment): the restore has it
# available and must stop before it.
pgbr check

say 'the primary is lost: node stopped, cluster killed (immediate stop)'
stop_node
AUDIT_AT_LOSS=$(psql_ -d dinhdanh -c 'select count(*) from audit_events')
as_pg "$PGBIN/pg_ctl" -D "$SCRATCH/pg-a" -m immediate stop >/dev/null

# --- restore into a new data folder, to the target ----------------------------------------------------------------
say "restore to the $TARGET_TYPE target into a new data folder"
if [ "$TARGET_TYPE" = name ]; then target=$TARGET_NAME; else target=$TARGET_TIME; fi
export PGBACKREST_PG1_PATH="$SCRATCH/pg-b"
as_pg mkdir -m 0700 "$SCRATCH/pg-b"
t0=$(now_ms)
pgbr --type="$TARGET_TYPE" --target="$target" --target-action=promote --archive-mode=off restore
t1=$(now_ms)
as_pg "$PGBIN/pg_ctl" -D "$SCRATCH/pg-b" -l "$SCRATCH/pg-b.log" -w -t 600 start >/dev/null
until [ "$(psql_ -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; do
  [ $(($(now_ms) - t1)) -lt 600000 ] || die "recovery did not finish: $(tail -n 20 "$SCRATCH/pg-b.log")"
  sleep 0.1
done
t2=$(now_ms)
AUDIT_RESTORED=$(psql_ -d dinhdanh -c 'select count(*) from audit_events')
start_node node-b
READY=0
wait_ready && READY=1
t3=$(now_ms)
RESTORE_MS=$((t1 - t0)) RECOVERY_MS=$((t2 - t1)) NODE_MS=$((t3 - t2)) TOTAL_MS=$((t3 - t0))

# --- checks ---------------------------------------------------------------------------------------------------------
say 'checks'
set +e
result() {
  if [ "$1" = 0 ]; then echo "PASS  ${*:2}"; else
    echo "FAIL  ${*:2}"
    FAILED=1
  fi
}
if [ "$READY" = 1 ]; then result 0 'service starts on the restored cluster: /readyz 200'; else
  result 1 "service starts on the restored cluster: /readyz not 200 ($(tail -n 5 "$SCRATCH/node-b.log"))"
fi
grep -q "recovery stopping .*$([ "$TARGET_TYPE" = name ] && echo "restore point \"$TARGET_NAME\"" || echo 'before commit')" \
  "$SCRATCH/pg-b.log"
result $? "PostgreSQL stopped recovery at the target: $(grep -o 'recovery stopping.*' "$SCRATCH/pg-b.log" | head -n 1)"
node deploy/restore-check.ts check "$SCRATCH/state.json" || FAILED=1
verify=$(node src/cli/main.ts audit verify 2>&1)
result $? "dinhdanh audit verify: $verify (events: $AUDIT_AT_LOSS at the loss, $AUDIT_RESTORED up to the target)"
# At rest: every repository file (backups, WAL, manifests, info files) carries OpenSSL's encrypted-file header, and
# with another passphrase pgBackRest cannot even list the backups.
files=$(find "$SCRATCH/repo" -type f | wc -l)
plain=$(find "$SCRATCH/repo" -type f -exec sh -c '[ "$(head -c 8 "$1")" = Salted__ ] || echo "$1"' _ {} \; | wc -l)
[ "$files" -gt 0 ] && [ "$plain" = 0 ]
result $? "repository encrypted at rest: $((files - plain)) of $files files are aes-256-cbc (Salted__ header)"
as_pg mkdir -m 0700 "$SCRATCH/wrong"
printf '[global]\nrepo1-cipher-pass=%s\n' "$(openssl rand -base64 48 | tr -d '\n')" >"$SCRATCH/wrong/cipher.conf"
chown postgres: "$SCRATCH/wrong/cipher.conf"
# (info exits 0 and reports the stanza's status, last in its JSON; its message quotes the undecrypted bytes.)
code=$(PGBACKREST_CONFIG_INCLUDE_PATH="$SCRATCH/wrong" as_pg pgbackrest --stanza=main --output=json info 2>&1 |
  grep -ao '"status":{"code":[0-9]*' | tail -n 1 | grep -o '[0-9]*$')
[ -n "$code" ] && [ "$code" != 0 ]
result $? "repository unreadable under another passphrase: pgbackrest info status ${code:-missing} (0 is ok)," \
  'backup.info does not decrypt'
set -e

# --- what it cost ---------------------------------------------------------------------------------------------------
info=$(pgbr --output=json info)
DB_SIZE=$(psql_ -c "select pg_size_pretty(sum(pg_database_size(datname))) from pg_database")
say 'measured'
# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
  const [stanza] = JSON.parse(process.argv[1]);
  const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`;
  for (const b of stanza.backup) {
    console.log(`backup ${b.type.padEnd(4)} ${b.label}: database ${mib(b.info.size)}, changed ${mib(b.info.delta)}, ` +
      `in the repository ${mib(b.info.repository.delta)} (compressed, encrypted)`);
  }
  const a = stanza.archive[0];
  console.log(`WAL archived: ${a.min} .. ${a.max}`);
' "$info"
stop_lsn=$(node -e 'const [s] = JSON.parse(process.argv[1]); console.log(s.backup.at(-1).lsn.stop)' "$info")
echo "WAL to replay, end of the last backup ($stop_lsn) to the target ($TARGET_LSN), LSN distance:" \
  "$(psql_ -c "select pg_size_pretty(pg_wal_lsn_diff('$TARGET_LSN', '$stop_lsn'))")"
echo "cluster size after restore: $DB_SIZE; repository on disk: $(du -sh "$SCRATCH/repo" | cut -f1)" \
  "(WAL $(du -sh "$SCRATCH/repo/archive" | cut -f1))"
echo "full backup took $(secs "$FULL_MS"), differential $(secs "$DIFF_MS")"
echo "restore time: pgbackrest restore $(secs "$RESTORE_MS") + WAL replay to the target and promotion" \
  "$(secs "$RECOVERY_MS") + node ready $(secs "$NODE_MS") = $(secs "$TOTAL_MS")"

if [ "$FAILED" = 0 ]; then say 'restore drill passed'; else say 'restore drill FAILED'; fi
exit "$FAILED"
