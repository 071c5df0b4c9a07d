#!/usr/bin/env bash
# The nightly GPU regression: the steps of .github/workflows/nightly.yml, runnable by hand.
#
#   scripts/nightly.sh [--accept] [--no-install] [--no-selftest] [--dry-run] [OVERRIDE...]
#   scripts/nightly.sh --accept-dir DIR     # make an earlier nightly's records the baseline
#
# Steps: make install; vlabench selftest; vlabench plan and run +experiment=nightly (records in
# $NIGHTLY_OUT/runs); vlabench compare against the accepted baseline ($NIGHTLY_OUT/compare.md);
# vlabench report --format html ($NIGHTLY_OUT/report); with --accept the new records become the
# baseline. The baseline is the branch nightly-baseline of the git remote (records under runs/),
# or the directory NIGHTLY_BASELINE_DIR; see docs/nightly.md.
#
# Exit: 0 no regression (or no baseline yet, or accepted); 1 regression; 2 bad usage or config
# (one line); 3 a step failed (install, selftest, run, report: the log says which); 130/143
# interrupted.
#
# Settings (environment; an OVERRIDE argument for the same key wins):
#   NIGHTLY_MODEL (openvla-oft)  NIGHTLY_CHECKPOINT  NIGHTLY_EPISODES  NIGHTLY_MAX_STEPS
#   NIGHTLY_TASKS (e.g. [0])  NIGHTLY_DEVICE  NIGHTLY_OUT (results/nightly/<UTC time>)
#   NIGHTLY_SELFTEST_ARGS  NIGHTLY_COMPARE_ARGS (e.g. "--max-sr-drop 5")  NIGHTLY_ACCEPT (0/1)
#   NIGHTLY_BASELINE_DIR  NIGHTLY_REMOTE (origin)  NIGHTLY_BRANCH (nightly-baseline)
#   VENV (.venv)  VLABENCH (the vlabench executable; default $VENV/bin/vlabench)
set -euo pipefail
cd "$(dirname "$0")/.."

RECORD_FILES="config.yaml manifest.json episodes.csv calls.csv summary.csv"
OPTIONS="--accept, --accept-dir DIR, --no-install, --no-selftest, --dry-run, --help"

die() { echo "nightly: error: $*" >&2; exit 2; }
say() { echo "nightly: $*"; }
failed() {  # CODE STEP: a failed step ends the nightly (exit 1 is kept for a regression)
  echo "nightly: $2 failed (exit $1)" >&2
  case $1 in 1) exit 3 ;; *) exit "$1" ;; esac
}
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

accept=${NIGHTLY_ACCEPT:-0}
install=1 selftest=1 dry=0 accept_dir=""
overrides=()
while [ $# -gt 0 ]; do
  case $1 in
    --accept) accept=1 ;;
    --accept-dir) [ $# -ge 2 ] || die "--accept-dir needs a directory (an earlier NIGHTLY_OUT)"
                  accept_dir=$2; shift ;;
    --no-install) install=0 ;;
    --no-selftest) selftest=0 ;;
    --dry-run) dry=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; overrides+=("$@"); break ;;
    -*) die "unknown option '$1'; valid: $OPTIONS" ;;
    *) overrides+=("$1") ;;
  esac
  shift
done
case $accept in 1|true|yes) accept=1 ;; 0|false|no|"") accept=0 ;;
  *) die "NIGHTLY_ACCEPT='$accept' is invalid; valid: 0 or 1" ;; esac

VENV=${VENV:-.venv}
VLABENCH=${VLABENCH:-$VENV/bin/vlabench}
OUT=${NIGHTLY_OUT:-results/nightly/$(date -u +%Y-%m-%dT%H%MZ)}
RUNS=$OUT/runs
REMOTE=${NIGHTLY_REMOTE:-origin}
BRANCH=${NIGHTLY_BRANCH:-nightly-baseline}
BASELINE_DIR=${NIGHTLY_BASELINE_DIR:-}
read -r -a selftest_args <<< "${NIGHTLY_SELFTEST_ARGS:-}"
read -r -a compare_args <<< "${NIGHTLY_COMPARE_ARGS:-}"

# One command, echoed; with --dry-run only echoed.
step() {
  echo "+ $*"
  [ "$dry" = 1 ] || "$@"
}

# Whether an OVERRIDE argument sets KEY (plain, +KEY or ++KEY).
overridden() {
  local o
  for o in "${overrides[@]}"; do
    o=${o#++}; o=${o#+}
    [ "${o%%=*}" = "$1" ] && return 0
  done
  return 1
}

run_args=(+experiment=nightly)
setting() {  # KEY VALUE: from the environment, unless an OVERRIDE sets KEY; empty VALUE: skipped
  [ -n "$2" ] && ! overridden "$1" && run_args+=("$1=$2")
  return 0
}
overridden run.output_dir && die "run.output_dir is set by the script (\$NIGHTLY_OUT/runs); set NIGHTLY_OUT instead"
setting model "${NIGHTLY_MODEL:-openvla-oft}"
setting model.checkpoint "${NIGHTLY_CHECKPOINT:-}"
setting run.episodes_per_task "${NIGHTLY_EPISODES:-}"
setting run.max_steps "${NIGHTLY_MAX_STEPS:-}"
setting suite.tasks "${NIGHTLY_TASKS:-}"
setting run.device "${NIGHTLY_DEVICE:-}"
setting run.quiet true
run_args+=("run.output_dir=$RUNS" "${overrides[@]}")

# --- the accepted baseline ----------------------------------------------------------------

# Prints the directory of the baseline's runs, or nothing when none has been accepted yet.
# Branch mode extracts the branch's tip into $OUT/baseline (kept with the nightly's outputs).
fetch_baseline() {
  if [ -n "$BASELINE_DIR" ]; then
    [ -d "$BASELINE_DIR/runs" ] && echo "$BASELINE_DIR/runs"
    return 0
  fi
  git rev-parse --git-dir >/dev/null 2>&1 \
    || die "not a git checkout: set NIGHTLY_BASELINE_DIR=DIR to keep the baseline in a directory"
  local rc=0
  git ls-remote --exit-code --heads "$REMOTE" "$BRANCH" >/dev/null || rc=$?
  [ "$rc" = 2 ] && return 0   # the remote is there, the branch is not: no baseline yet
  [ "$rc" = 0 ] || die "cannot read git remote '$REMOTE' (exit $rc); set NIGHTLY_REMOTE, or NIGHTLY_BASELINE_DIR=DIR"
  git fetch -q --no-tags "$REMOTE" "refs/heads/$BRANCH" >&2
  rm -rf "$OUT/baseline"
  mkdir -p "$OUT/baseline"
  git archive "$(git rev-parse FETCH_HEAD)" | tar -x -C "$OUT/baseline"
  [ -d "$OUT/baseline/runs" ] || die "branch $BRANCH of $REMOTE has no runs/ folder; accept a baseline again"
  echo "$OUT/baseline/runs"
}

# Copies the record files of every run under $1 to $2/runs/<its path under $1>.
stage_records() {
  local src=$1 dst=$2 man dir rel f n=0
  while IFS= read -r man; do
    dir=$(dirname "$man"); rel=${dir#"$src"}; rel=${rel#/}
    mkdir -p "$dst/runs/$rel"
    for f in $RECORD_FILES; do
      [ -f "$dir/$f" ] && cp -p "$dir/$f" "$dst/runs/$rel/$f"
    done
    n=$((n + 1))
  done < <(find "$src" -name manifest.json -type f | sort)
  [ "$n" -gt 0 ] || die "no run directories (with manifest.json) under $src"
  {
    echo "# Accepted nightly baseline (vlabench)"
    echo
    echo "- accepted: $(date -u +%Y-%m-%dT%H:%M:%SZ) by ${GITHUB_ACTOR:-${USER:-unknown}}"
    echo "- commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "- from: $src ($n runs)${GITHUB_RUN_ID:+, workflow run $GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID}"
  } > "$dst/BASELINE.md"
}

# Makes the finished runs under $1 the accepted baseline (branch commit + push, or directory).
accept_runs() {
  local src=$1 stage rc=0
  [ -d "$src" ] || die "--accept-dir $src: no such directory"
  [ -d "$src/runs" ] && src=$src/runs
  # a run compared with itself passes only when every run is finished and its records verify
  "$VLABENCH" compare "$src" "$src" >/dev/null || rc=$?
  [ "$rc" = 0 ] || { echo "nightly: not accepted: the runs in $src do not verify (exit $rc)" >&2; exit "$rc"; }
  stage=$(mktemp -d)
  stage_records "$src" "$stage"
  if [ -n "$BASELINE_DIR" ]; then
    mkdir -p "$BASELINE_DIR"
    local extra
    extra=$(find "$BASELINE_DIR" -mindepth 1 -maxdepth 1 ! -name runs ! -name BASELINE.md | head -1)
    [ -z "$extra" ] || die "NIGHTLY_BASELINE_DIR=$BASELINE_DIR holds $extra; it must hold only runs/ and BASELINE.md"
    rm -rf "$BASELINE_DIR/runs" "$BASELINE_DIR/BASELINE.md"
    cp -Rp "$stage/runs" "$stage/BASELINE.md" "$BASELINE_DIR/"
    say "accepted $src as the baseline in $BASELINE_DIR"
  else
    commit_baseline "$stage"
  fi
  rm -rf "$stage"
}

# One commit on $BRANCH holding the staged tree (parent: the branch's tip, if any), pushed.
# Uses a private index: the checkout's work tree and index are not touched.
commit_baseline() {
  local stage=$1 parent="" gitdir tree commit rc=0
  git ls-remote --exit-code --heads "$REMOTE" "$BRANCH" >/dev/null || rc=$?
  case $rc in
    0) git fetch -q --no-tags "$REMOTE" "refs/heads/$BRANCH"; parent=$(git rev-parse FETCH_HEAD) ;;
    2) ;;
    *) die "cannot read git remote '$REMOTE' (exit $rc)" ;;
  esac
  if ! git config user.email >/dev/null; then
    export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-vlabench nightly} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-nightly@vlabench.invalid}
    export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME} GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}
  fi
  gitdir=$(git rev-parse --absolute-git-dir)
  tree=$(cd "$stage" && export GIT_DIR="$gitdir" GIT_WORK_TREE="$stage" GIT_INDEX_FILE="$stage.index" &&
         git add -A -f . && git write-tree)
  rm -f "$stage.index"
  commit=$(git commit-tree "$tree" ${parent:+-p "$parent"} -F "$stage/BASELINE.md")
  git push -q "$REMOTE" "$commit:refs/heads/$BRANCH"
  say "accepted: pushed $commit to $BRANCH on $REMOTE"
}

if [ -n "$accept_dir" ]; then
  [ "$dry" = 1 ] && { echo "+ accept $accept_dir"; exit 0; }
  accept_runs "$accept_dir"
  exit 0
fi

# --- the nightly ----------------------------------------------------------------------------

say "results in $OUT"
[ -n "${GITHUB_ENV:-}" ] && echo "NIGHTLY_OUT=$OUT" >> "$GITHUB_ENV"
if [ "$install" = 1 ]; then step make install || failed $? "make install"; fi
[ "$dry" = 1 ] || [ -x "$VLABENCH" ] || die "no executable $VLABENCH: run make install (or drop --no-install)"
if [ "$selftest" = 1 ]; then step "$VLABENCH" selftest "${selftest_args[@]}" || failed $? "vlabench selftest"; fi
step "$VLABENCH" plan "${run_args[@]}" || failed $? "vlabench plan"
[ "$dry" = 1 ] || mkdir -p "$OUT"
run_rc=0
step "$VLABENCH" run "${run_args[@]}" || run_rc=$?
if [ "$dry" = 1 ]; then
  [ -n "$BASELINE_DIR" ] && src="directory $BASELINE_DIR" || src="branch $BRANCH of $REMOTE"
  echo "+ $VLABENCH compare <baseline from $src> $RUNS${compare_args[*]:+ ${compare_args[*]}}"
  echo "+ $VLABENCH report $RUNS --format html --out $OUT/report"
  [ "$accept" = 1 ] && echo "+ accept $RUNS as the baseline ($src)"
  exit 0
fi

verdict=0
if [ "$run_rc" != 0 ]; then
  echo "nightly: vlabench run failed (exit $run_rc); the report shows what was recorded" >&2
  verdict=$run_rc
  [ "$run_rc" = 1 ] && verdict=3
else
  base=$(fetch_baseline) || verdict=$?
  if [ "$verdict" != 0 ]; then
    :   # fetch_baseline said why (one line)
  elif [ -z "$base" ]; then
    line="no accepted baseline yet; these runs are recorded in $RUNS; accept them with: scripts/nightly.sh --accept-dir $OUT (workflow: run it with accept=true)"
    say "$line"
    echo "$line" > "$OUT/compare.md"
  else
    echo "+ $VLABENCH compare $base $RUNS${compare_args[*]:+ ${compare_args[*]}}"
    "$VLABENCH" compare "$base" "$RUNS" "${compare_args[@]}" > "$OUT/compare.md" || verdict=$?
    cat "$OUT/compare.md"
  fi
fi
[ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$OUT/compare.md" ] && cat "$OUT/compare.md" >> "$GITHUB_STEP_SUMMARY"

report_rc=0
if [ -d "$RUNS" ]; then step "$VLABENCH" report "$RUNS" --format html --out "$OUT/report" || report_rc=$?; fi

if [ "$accept" = 1 ] && [ "$run_rc" = 0 ]; then
  [ "$verdict" = 1 ] && say "compare found a regression; accepting these runs as the new baseline anyway (--accept)"
  accept_runs "$RUNS"
  verdict=0
fi
case $verdict in
  0) say "OK" ;;
  1) say "REGRESSION against the accepted baseline (see $OUT/compare.md)" ;;
esac
[ "$verdict" != 0 ] && exit "$verdict"
[ "$report_rc" = 0 ] || failed "$report_rc" "vlabench report"
exit 0
