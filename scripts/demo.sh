#!/usr/bin/env bash
# make demo: the whole loop on a throwaway project with the embedded SQLite default.
set -euo pipefail
NURTURE=$(realpath "$1")
DEMO=$2
REPO=$(cd "$(dirname "$0")/.." && pwd)
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

cd "$DEMO"
step nurture init .
"$NURTURE" init .
cp "$REPO"/sequences/*.yaml sequences/
step nurture validate
"$NURTURE" validate
step nurture plan
"$NURTURE" plan
step nurture apply --yes
"$NURTURE" apply --yes
step nurture plan --detailed-exitcode   "# exit 0: nothing left to apply"
"$NURTURE" plan --detailed-exitcode
step nurture sequences list
"$NURTURE" sequences list
step nurture funnels assign --sequence "Warm Lead Welcome" --funnel webinar
"$NURTURE" funnels assign --sequence "Warm Lead Welcome" --funnel webinar
step nurture funnels list
"$NURTURE" funnels list
step nurture sequences show warm-lead-welcome
"$NURTURE" sequences show warm-lead-welcome
printf '\nThe demo project is in %s\n' "$DEMO"
