#!/usr/bin/env bash
# Start / stop / check the three Google Cloud emulators used by tests/integration/gcp.
#
#   bash .ci/emulators.sh start    # install (first time), start, wait for health, print env
#   bash .ci/emulators.sh status   # health of each endpoint (exit 1 if any is down)
#   bash .ci/emulators.sh stop     # kill the processes recorded in the pid file
#   bash .ci/emulators.sh env      # print the environment variables the tests read
#
# BigQuery: PyPI bqemulator in its own venv (.ci/.bqemu-venv; it pins duckdb 1.5.5 which
#   must not leak into the project's environment), DuckDB extensions imported offline.
# Pub/Sub, Firestore: the emulators preinstalled with google-cloud-cli on the machine image.
#   If they are missing this script FAILS: the GCP tests must never be skipped silently.
#
# The script exports nothing; it prints the variables to use. Ports can be overridden with
# BQEMU_PORT, BQEMU_GRPC_PORT, PUBSUB_PORT, FIRESTORE_PORT. Logs and pids: .ci/.emulators/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CI_DIR="$ROOT/.ci"
STATE="$CI_DIR/.emulators"
PIDS="$STATE/pids"
VENV="$CI_DIR/.bqemu-venv"
BQ_HOME="$CI_DIR/.bqemu-home"
HOST=127.0.0.1
BQ_PORT="${BQEMU_PORT:-9050}"
BQ_GRPC_PORT="${BQEMU_GRPC_PORT:-9060}"
PS_PORT="${PUBSUB_PORT:-8085}"
FS_PORT="${FIRESTORE_PORT:-8080}"
PROJECT_ID="${GCP_EMULATOR_PROJECT:-test-project}"
HEALTH_TIMEOUT="${EMULATOR_HEALTH_TIMEOUT:-120}"
BQ_PKGS=(bqemulator==1.4.0 duckdb==1.5.5 duckdb-extensions==1.5.5 duckdb-extension-spatial==1.5.5
         duckdb-extension-avro==1.5.5 numpy)

die() { echo "emulators.sh: error: $*" >&2; exit 1; }
log() { echo "emulators.sh: $*" >&2; }

python_bin() {
  for p in python3.11 python3 python; do
    if command -v "$p" >/dev/null 2>&1; then command -v "$p"; return; fi
  done
  die "no python3 found to create the BigQuery emulator venv"
}

# Answers 0 when the URL returns HTTP 2xx.
healthy() { curl -fsS -m 3 -o /dev/null "$1" 2>/dev/null; }

sdk_platform() {
  command -v gcloud >/dev/null 2>&1 || die "gcloud (google-cloud-cli) is not installed: the Pub/Sub and Firestore \
emulators ship with it on the machine image. Install google-cloud-cli with the pubsub and firestore emulator \
components; the GCP integration tests cannot run without them."
  local root
  root="$(gcloud info --format='value(installation.sdk_root)' 2>/dev/null)" || die "'gcloud info' failed"
  [ -n "$root" ] || die "'gcloud info' did not report installation.sdk_root"
  echo "$root/platform"
}

install_bqemu() {
  local marker="$VENV/.pipectl-installed"
  local want="${BQ_PKGS[*]}"
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then return; fi
  log "creating BigQuery emulator venv at $VENV"
  rm -rf "$VENV"
  "$(python_bin)" -m venv "$VENV" || die "python -m venv failed (is the venv module installed?)"
  mkdir -p "$STATE"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${BQ_PKGS[@]}" >"$STATE/pip.log" 2>&1 \
    || { tail -n 30 "$STATE/pip.log" >&2; die "pip install of the BigQuery emulator failed: ${BQ_PKGS[*]}"; }
  mkdir -p "$BQ_HOME"
  HOME="$BQ_HOME" "$VENV/bin/python" -c \
    "import duckdb_extensions as d; [d.import_extension(e) for e in ('spatial', 'avro')]" \
    || die "importing the DuckDB extensions for bqemulator failed"
  echo "$want" > "$marker"
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

start_one() {  # name port logfile cmd...
  local name="$1" port="$2" logf="$3"; shift 3
  if port_busy "$port"; then
    die "port $HOST:$port for the $name emulator is already in use (run '.ci/emulators.sh stop', or set the \
port variable listed at the top of this script)"
  fi
  # setsid: the emulator gets its own process group so stop can kill the java children too.
  setsid "$@" >"$logf" 2>&1 < /dev/null &
  echo "$name $!" >> "$PIDS"
  log "started $name (pid $!) on $HOST:$port, log $logf"
}

wait_healthy() {  # name url logfile
  local name="$1" url="$2" logf="$3" deadline=$((SECONDS + HEALTH_TIMEOUT))
  until healthy "$url"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "----- last lines of $logf -----" >&2; tail -n 30 "$logf" >&2 || true
      die "$name emulator did not become healthy at $url within ${HEALTH_TIMEOUT}s"
    fi
    sleep 1
  done
  log "$name healthy at $url"
}

print_env() {
  cat <<EOF
export PUBSUB_EMULATOR_HOST=$HOST:$PS_PORT
export FIRESTORE_EMULATOR_HOST=$HOST:$FS_PORT
export BIGQUERY_EMULATOR_HOST=http://$HOST:$BQ_PORT
export GOOGLE_CLOUD_PROJECT=$PROJECT_ID
# BigQuery client: bigquery.Client(project="$PROJECT_ID", client_options={"api_endpoint": "http://$HOST:$BQ_PORT"},
#                                  credentials=AnonymousCredentials())
EOF
}

cmd_start() {
  if [ -f "$PIDS" ] && cmd_status >/dev/null 2>&1; then
    log "emulators already running (pids in $PIDS)"; print_env; return
  fi
  [ -f "$PIDS" ] && cmd_stop
  command -v curl >/dev/null 2>&1 || die "curl is required for the health checks"
  local platform jar pubsub
  platform="$(sdk_platform)"
  pubsub="$platform/pubsub-emulator/bin/cloud-pubsub-emulator"
  jar="$platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
  [ -x "$pubsub" ] || die "Pub/Sub emulator not found at $pubsub (install the google-cloud-cli pubsub-emulator \
component); the GCP integration tests cannot run without it"
  [ -f "$jar" ] || die "Firestore emulator not found at $jar (install the google-cloud-cli \
cloud-firestore-emulator component); the GCP integration tests cannot run without it"
  command -v java >/dev/null 2>&1 || die "java (17+) is required by the Pub/Sub and Firestore emulators"
  install_bqemu
  mkdir -p "$STATE"; : > "$PIDS"
  start_one bigquery "$BQ_PORT" "$STATE/bigquery.log" env HOME="$BQ_HOME" "$VENV/bin/bqemulator" start \
    --rest-host "$HOST" --rest-port "$BQ_PORT" --grpc-host "$HOST" --grpc-port "$BQ_GRPC_PORT" --project "$PROJECT_ID"
  start_one pubsub "$PS_PORT" "$STATE/pubsub.log" "$pubsub" --host="$HOST" --port="$PS_PORT"
  start_one firestore "$FS_PORT" "$STATE/firestore.log" java -cp "$jar" \
    com.google.cloud.datastore.emulator.firestore.CloudFirestore --host="$HOST" --port="$FS_PORT"
  wait_healthy bigquery "http://$HOST:$BQ_PORT/healthz" "$STATE/bigquery.log"
  wait_healthy pubsub "http://$HOST:$PS_PORT/" "$STATE/pubsub.log"
  wait_healthy firestore "http://$HOST:$FS_PORT/" "$STATE/firestore.log"
  print_env
}

cmd_stop() {
  [ -f "$PIDS" ] || { log "no pid file ($PIDS): nothing to stop"; return 0; }
  local name pid
  while read -r name pid; do
    [ -n "${pid:-}" ] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
      log "stopped $name (pid $pid)"
    fi
  done < "$PIDS"
  rm -f "$PIDS"
}

cmd_status() {
  local rc=0
  healthy "http://$HOST:$BQ_PORT/healthz" && echo "bigquery  up   $HOST:$BQ_PORT" || { echo "bigquery  DOWN $HOST:$BQ_PORT"; rc=1; }
  healthy "http://$HOST:$PS_PORT/" && echo "pubsub    up   $HOST:$PS_PORT" || { echo "pubsub    DOWN $HOST:$PS_PORT"; rc=1; }
  healthy "http://$HOST:$FS_PORT/" && echo "firestore up   $HOST:$FS_PORT" || { echo "firestore DOWN $HOST:$FS_PORT"; rc=1; }
  return $rc
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
