"""Benchmark the dry run (`nurture test`): seconds per test case, and for a long sequence.

    python bench/dryrun.py [--repeat 5] [--weeks 12]

Cases: every `tests:` case of the example sequences in sequences/. Long: one sequence of a
message every two days for `--weeks` weeks, with a send window, run for one lead.
"""

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from nurture.simulate.cases import run_cases
from nurture.simulate.dryrun import Project, Scenario, dry_run, lead_input
from nurture.spec.cases import CaseLead
from nurture.spec.files import load_sequences

SEQUENCES = Path(__file__).resolve().parent.parent / "sequences"


def long_sequence(weeks: int) -> dict:
    steps = [
        {"name": f"Message {n}", "action_type": "send_sms", "delay_days": 2,
         "action_config": {"message": "Hi {{ lead.first_name }}, day " + str(2 * n)}}
        for n in range(1, weeks * 7 // 2 + 1)
    ]  # fmt: skip
    window = {"days": "mon-fri", "start": "09:00", "end": "18:00", "holidays": "US"}
    return {"name": "Long", "send_window": window, "steps": steps}


def timed(work, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--weeks", type=int, default=12)
    args = parser.parse_args()
    examples = Project(load_sequences([SEQUENCES]), SEQUENCES.parent)
    cases = sum(len(file.spec.tests) for file in examples.files)
    run_cases(examples)  # warm up: imports, holiday calendars, template cache
    result = {"cases": cases, "all_cases": timed(lambda: run_cases(examples), args.repeat)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.yaml"
        path.write_text(yaml.safe_dump(long_sequence(args.weeks)), encoding="utf-8")
        project = Project(load_sequences([path]), Path(folder))
        scenario = Scenario(
            lead_input(CaseLead(name="Ana Ruiz")), datetime(2025, 1, 6, 9, tzinfo=UTC), "Long"
        )
        steps = len(project.files[0].spec.steps)
        result[f"long_{args.weeks}_weeks_{steps}_steps"] = timed(
            lambda: dry_run(project, scenario), args.repeat
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
