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
step nurture validate --strict   "# lint warnings fail too: the examples have none"
"$NURTURE" validate --strict
step nurture test   "# every tests: case of every sequence, on a simulated clock: no database, nothing sent"
"$NURTURE" test
step nurture test warm-lead-welcome --lead-field name="Maria Lopez" ... --event "+1d convert"
"$NURTURE" test warm-lead-welcome --lead-field name="Maria Lopez" --lead-field source="Web Form" \
  --lead-field status=New --lead-field temperature=Warm --lead-field score=45 \
  --start 2025-03-03T09:00:00Z --event "+1d convert"
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
step nurture leads import leads.csv   "# one row has a bad email: reported, the others land"
cp "$REPO/examples/leads.csv" leads.csv
"$NURTURE" leads import leads.csv || true
step nurture leads add --funnel website-form --name "Grace Lee" --source "Web Form" --status New --temperature Hot --score 55 --tz Europe/London
"$NURTURE" leads add --funnel website-form --name "Grace Lee" --email grace@example.com --phone "+44 7400 555123" \
  --source "Web Form" --status New --temperature Hot --score 55 --tz Europe/London
# The daemon (`nurture run`) sleeps until the next step is due and runs it then; here the same
# engine runs once at each of those moments on a simulated clock (scripts/wake_ups.py), so two
# weeks of sequences play out in seconds, printed by the console channel, and the stats read as
# a real history: every step ran when it was due, not at the next of a few coarse ticks.
step nurture run --once --channel console --now WHEN   "# at each moment a step is due, for two weeks"
"$(dirname "$NURTURE")/python" "$REPO/scripts/wake_ups.py" "$(date -u -d "+14 days" +%Y-%m-%dT%H:%M:%S+00:00)"
step nurture leads show ana.ruiz@example.com
"$NURTURE" leads show ana.ruiz@example.com
step nurture explain ana.ruiz@example.com
"$NURTURE" explain ana.ruiz@example.com
step nurture status
"$NURTURE" status
step nurture stats   "# how each sequence performs"
"$NURTURE" stats
step nurture stats warm-lead-welcome   "# its steps and where leads drop off"
"$NURTURE" stats warm-lead-welcome
step nurture logs --limit 8
"$NURTURE" logs --limit 8
step nurture report --html report.html   "# one self-contained page of charts"
"$NURTURE" report --html report.html
step nurture tokens create coach --scope dashboard:edit   "# the coach dashboard's sign-in (printed once; not shown here)"
"$NURTURE" tokens create coach --scope dashboard:edit >/dev/null
printf '\nThe demo project is in %s\n' "$DEMO"
printf '\nThe coach dashboard: serve it with\n  cd %s && %s serve\nthen open this sign-in link (valid 15 minutes; `%s dashboard link` makes a new one):\n  ' \
  "$DEMO" "$NURTURE" "$NURTURE"
"$NURTURE" dashboard link 2>/dev/null
