#!/usr/bin/env bash
# Packaging check: pipectl works as an installed package, outside its repository.
#
# Builds the wheel from the checkout's files (tracked + new, not ignored), installs it into a
# fresh venv (a real install: the wheel's own dependencies resolve from the package index),
# then, in a temporary folder outside the repository, runs what a new user runs:
#   init -> validate -> plan -> apply --auto-approve -> plan --detailed-exitcode (0)
#   -> load rows (the README's way) -> run, and every other command of the README's CLI table;
#   init --example nba_props (validate, plan, apply, sample, ...) and iot_sensors (sample, run);
#   demo in an empty folder (it makes ./pipectl-demo/, an init --example nba_props copy, and
#   runs sample days, a full run and a one-player update there);
#   the pre-commit hook, pinned to a commit of this checkout's files as a user pins `rev:`, in
#   a temporary git repository: a broken sql/*.sql fails it, an unrelated file skips it.
# Any failure, or a traceback in any output, fails with the step and its output.
# KEEP_SMOKE=1 keeps the temporary folder for inspection.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pipectl-wheel-smoke.XXXXXX")"
BACKGROUND=()
cleanup() { for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true
  if [ "${KEEP_SMOKE:-0}" = 1 ]; then echo "wheel smoke: kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
START=$SECONDS
LOG="$WORK/step.log"

fail() { echo "wheel smoke FAILED: $*" >&2; exit 1; }
# run EXPECTED_EXIT DESCRIPTION CMD...: run in the current folder, check the exit code and
# that no output holds a traceback; the output stays in $LOG for the checks that follow.
run() {
  local want="$1" what="$2"; shift 2
  local code=0
  "$@" >"$LOG" 2>&1 || code=$?
  if [ "$code" != "$want" ]; then
    sed 's/^/    | /' "$LOG" >&2
    fail "$what: \`$*\` in $(pwd) exited $code, expected $want"
  fi
  if grep -q "Traceback (most recent call last)" "$LOG"; then
    sed 's/^/    | /' "$LOG" >&2
    fail "$what: \`$*\` printed a traceback"
  fi
}
expect() { grep -q -- "$1" "$LOG" || { sed 's/^/    | /' "$LOG" >&2; fail "$2 (no '$1' in the output)"; }; }
step() { echo "== wheel smoke [$((SECONDS - START))s]: $*"; }

# pre-commit gets its own venv, installed in the background while the wheel builds
( "$PY" -m venv "$WORK/pc-venv" && "$WORK/pc-venv/bin/pip" install --disable-pip-version-check -q pre-commit
  echo $? >"$WORK/pc-install.rc" ) >"$WORK/pc-install.log" 2>&1 &
PC_INSTALL=$!
BACKGROUND+=("$PC_INSTALL")

step "build the wheel from the checkout's files"
mkdir -p "$WORK/src"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -xf - -C "$WORK/src"
run 0 "pip wheel" "$PY" -m pip wheel --disable-pip-version-check -q --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL="$(ls "$WORK"/dist/pipectl-*.whl)"
"$PY" - "$WHEEL" <<'PYEOF' || fail "the wheel misses package data"
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["framework/sql/templates/detect.sql.j2", "framework/sql/templates/duckdb/_dialect.sql.j2",
        "framework/schemas/processors.schema.json", "framework/examples/nba_props/processors.yaml",
        "framework/examples/nba_props/pipelines/nba_props/sample_data.py", "framework/examples/iot_sensors/sample_data.py"]
missing = [n for n in need if n not in names]
top = sorted({n.split("/")[0] for n in names if not n.startswith("pipectl-")})
if missing or top != ["framework"]:
    sys.exit(f"missing {missing}; top-level entries {top} (only 'framework' may be installed)")
PYEOF
BUILT=$((SECONDS - START))

step "install it into a fresh venv (dependencies from the index)"
"$PY" -m venv "$WORK/venv"
VBIN="$WORK/venv/bin"
run 0 "pip install the wheel" "$VBIN/pip" install --disable-pip-version-check -q "$WHEEL"
INSTALLED=$((SECONDS - START))
export PATH="$VBIN:$PATH"
unset PYTHONPATH PIPECTL_PROJECT PIPECTL_TARGET
export PRE_COMMIT_HOME="$WORK/pre-commit-home" GIT_AUTHOR_NAME=smoke GIT_AUTHOR_EMAIL=smoke@example.com \
  GIT_COMMITTER_NAME=smoke GIT_COMMITTER_EMAIL=smoke@example.com
HOOKS="$WORK/hookrepo"
# In the background while the commands below run: a user's git repository whose
# .pre-commit-config.yaml pins the hook to a commit of this checkout's files (as `rev:` pins a
# tag for a user), and pre-commit's install of the hook environment (pipectl from source).
prepare_hooks() {
  while [ ! -f "$WORK/pc-install.rc" ]; do sleep 1; done  # (a sibling job: not wait-able from here)
  [ "$(cat "$WORK/pc-install.rc")" = 0 ] || { cat "$WORK/pc-install.log"; echo "pip install pre-commit failed"; return 1; }
  git -C "$WORK/src" init -q && git -C "$WORK/src" add -A && git -C "$WORK/src" commit -qm snapshot
  mkdir -p "$HOOKS" && cd "$HOOKS" && git init -q . && pipectl init . >/dev/null
  printf 'repos:\n  - repo: %s\n    rev: %s\n    hooks:\n      - id: pipectl-validate\n' \
    "$WORK/src" "$(git -C "$WORK/src" rev-parse HEAD)" > .pre-commit-config.yaml
  git add -A && git commit -qm init && "$WORK/pc-venv/bin/pre-commit" install-hooks
}
prepare_hooks >"$WORK/hooks-prepare.log" 2>&1 &
HOOKS_PREP=$!
BACKGROUND+=("$HOOKS_PREP")
USER_DIR="$WORK/user"
mkdir -p "$USER_DIR" && cd "$USER_DIR"
run 0 "import from the venv" python -c "import framework, sys; sys.exit(0 if '$WORK/venv' in framework.__file__ else 'not the wheel: ' + framework.__file__)"
run 0 "no top-level pipelines package" python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('pipelines') and 'the wheel installed a top-level pipelines package')"

step "a new project: init, validate, plan, apply, load, run"
run 0 "init" pipectl init my_pipeline
expect "validated: ok" "init must validate its own project"
cd my_pipeline
grep -q "^# yaml-language-server: \$schema=schemas/processors.schema.json$" processors.yaml || fail "init wrote a machine-specific schema line: $(head -1 processors.yaml)"
! grep -rq "$WORK" --exclude-dir=.pipectl . || fail "init wrote an absolute path: $(grep -rl "$WORK" --exclude-dir=.pipectl .)"
run 0 "validate" pipectl validate --strict
run 0 "plan" pipectl plan
run 0 "apply" pipectl apply --auto-approve
run 0 "plan converged" pipectl plan --detailed-exitcode
printf 'day,customer_id,store_id,amount\n2025-01-01,c1,s1,10.5\n2025-01-01,c2,s1,3\n2025-01-01,c3,s2,7\n' > orders.csv
run 0 "load rows (README)" pipectl load orders_landing orders.csv
expect "loaded 3 rows into landing.orders" "load"
run 0 "run" pipectl run --date 2025-01-01 --json -q
CORR="$(python -c "import json,sys; d=json.load(open('$LOG')); assert d['status']=='success', d['status']; print(d['correlation_id'])")" \
  || fail "run did not succeed: $(cat "$LOG")"
run 0 "ls" pipectl ls
run 0 "graph" pipectl graph --phases
run 0 "render" pipectl render orders_raw --kind detect
run 0 "status" pipectl status --date 2025-01-01
run 0 "sweep" pipectl sweep
run 0 "trace" pipectl trace "$CORR"
run 0 "history" pipectl history
run 0 "bus status" pipectl bus status
run 0 "bus dead-letters" pipectl bus dead-letters
run 0 "backfill" pipectl backfill --from 2025-01-01 --to 2025-01-02
run 0 "schema" pipectl schema --write
run 0 "package" pipectl package --out "$WORK/bundle"
run 0 "docs generate (templates ship in the wheel)" pipectl docs generate --out "$WORK/site"
[ -f "$WORK/site/index.html" ] && [ -f "$WORK/site/static/ui.css" ] || fail "docs generate wrote no site in $WORK/site"
run 1 "ui without the ui extra" timeout 30 pipectl ui
grep -q "\[ui\]" "$LOG" || fail "pipectl ui without the extra did not name it: $(cat "$LOG")"
run 0 "sample (the skeleton's hook)" pipectl sample --date 2025-01-02
run 0 "run a sampled day" pipectl run --date 2025-01-02 -q
run 0 "simulate update" pipectl simulate update --date 2025-01-02 --entity customer_id=c4 --set amount=99 -q
run 1 "simulate update of nobody" pipectl simulate update --date 2025-01-02 --entity customer_id=nobody --set amount=1 -q
expect "apply_update refused the edit" "a refused edit must be a clean error"
run 0 "verify" pipectl verify --date 2025-01-02
run 1 "demo in the user's project" pipectl demo --yes -q
expect "pipectl demo needs the project's UPDATE_DEFAULTS" "demo must refuse another project before touching it"

step "the NBA example: init --example nba_props (run and simulate update: the demo below runs them on the same copy)"
cd "$USER_DIR"
run 0 "init --example nba_props" pipectl init nba --example nba_props
cd nba
run 0 "validate nba" pipectl validate
run 0 "plan nba" pipectl plan
run 0 "apply nba" pipectl apply --auto-approve
run 0 "sample nba" pipectl sample --date 2025-01-06
run 0 "status nba" pipectl status --date 2025-01-06
run 0 "ls nba" pipectl ls --select +ml_feature_store
run 0 "render nba" pipectl render player_game_summary --kind transform
run 1 "demo in a copy without --yes" pipectl demo -q
expect "pass --yes" "demo must not reset a project it did not make without a yes"

step "the IoT example: init --example iot_sensors, sample, run (no PYTHONPATH)"
cd "$USER_DIR"
run 0 "init --example iot_sensors" pipectl init iot --example iot_sensors
run 0 "sample iot" pipectl -p iot sample --date 2025-03-01
run 0 "run iot" pipectl -p iot run --date 2025-03-01 -q
run 0 "data tests iot" pipectl -p iot test --date 2025-03-01
expect "ok: 6 passed" "pipectl test must run the IoT example's data tests (data_test.sql.j2 is package data)"
run 0 "data tests iot (junit)" pipectl -p iot test --date 2025-03-01 --format junit
run 0 "render data tests" pipectl -p iot render sensor_daily_stats --kind test --dialect bigquery
run 0 "simulate update iot (the hook's defaults)" pipectl -p iot simulate update --date 2025-03-01 -q
run 0 "json logs" pipectl -p iot --log-format json -v run --date 2025-03-01 --full -q
expect '"severity": "INFO"' "--log-format json must print JSON log lines"
run 0 "completion" pipectl completion bash
expect "_PIPECTL_COMPLETE" "completion must print the bash script"
printf 'version: 1\ntargets:\n  local: {}\n  dev: {dataset_prefix: dev_, topic_prefix: dev-}\n' > iot/pipectl.yaml
run 0 "plan of a prefixed target" pipectl -p iot -t dev plan
expect "dev_iot_raw" "a target's dataset_prefix must name the plan's datasets"

step "pipectl demo in an empty folder (makes ./pipectl-demo/)"
mkdir -p "$USER_DIR/empty" && cd "$USER_DIR/empty"
run 0 "demo" pipectl demo -q
expect "created .*pipectl-demo" "demo must say where it made its example copy"
[ -f pipectl-demo/.pipectl-example ] || fail "demo made no marked ./pipectl-demo/"
cd pipectl-demo  # the demo's example copy: the remaining commands of the CLI table on its data
run 0 "simulate update" pipectl simulate update --date 2025-01-09 --entity player_lookup=lebronjames --set points=12 -q
run 0 "history" pipectl history --limit 5
run 0 "verify nba" pipectl verify --date 2025-01-09 --select phase:raw
run 0 "history nba (json)" pipectl history --json --limit 1
CORR="$(python -c "import json; print(json.load(open('$LOG'))[0]['correlation_id'])")" || fail "history --json: $(cat "$LOG")"
run 0 "trace nba" pipectl trace "$CORR"
run 0 "graph nba" pipectl graph --phases
run 0 "sweep nba" pipectl sweep
run 0 "bus status nba" pipectl bus status
run 0 "package nba" pipectl package --out "$WORK/bundle-nba"
DEMOED=$((SECONDS - START))

step "the pre-commit hook in a user's git repository"
wait "$HOOKS_PREP" || { sed 's/^/    | /' "$WORK/hooks-prepare.log" >&2; fail "preparing the hook repository / pre-commit's environment"; }
cd "$HOOKS"
export PATH="$WORK/pc-venv/bin:$PATH"
sed -i "s/ref('orders_raw')/ref('orders_rwa')/" sql/store_totals.sql
git add sql/store_totals.sql
run 1 "pre-commit on a broken sql/*.sql" pre-commit run
expect "orders_rwa" "the hook must run on sql/*.sql and report the broken reference"
git reset -q --hard
echo "notes" > NOTES.md && git add NOTES.md
run 0 "pre-commit on an unrelated file" pre-commit run
expect "pipectl validate.*Skipped" "the hook must not run for files it does not check"
run 0 "pre-commit on the clean project" pre-commit run --all-files
expect "pipectl validate.*Passed" "the hook must pass on a clean project"

echo "wheel smoke: ok in $((SECONDS - START))s (wheel built ${BUILT}s, installed $((INSTALLED - BUILT))s, commands and demo $((DEMOED - INSTALLED))s, pre-commit $((SECONDS - DEMOED))s)"
