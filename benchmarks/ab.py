"""Agent jobs against the bare baseline in alternating rounds, on one stack.

``python -m benchmarks.ab [--jobs 300] [--rounds 3]``: ours, bare, ours, bare, ... Single
runs vary by ±15 % and the server slows as its file grows, which penalizes whichever
scenario runs later; alternating rounds show the spread, and each run of ours is also
compared with the mean of the bare runs on either side of it ("bracketed"). For trying a
change: run it on each checkout and compare the rounds, not one figure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from benchmarks.bench import say, warm_up, with_cpu
from benchmarks.common import ratio
from benchmarks.jobs import ReplyDesk, bare_throughput, jobs_throughput
from benchmarks.stack import bench_stack


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__)
    parser.add_argument("--jobs", type=int, default=300, help="agent jobs per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ours, then bare")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.rounds < 1:
        parser.error("--jobs and --rounds must be at least 1")
    return args


async def run(jobs: int, rounds: int) -> list[dict[str, Any]]:
    """Per round: ours and bare, each with its rate and CPU per job by process."""
    out: list[dict[str, Any]] = []
    async with bench_stack() as stack:
        stack.start_worker("ours")
        stack.start_worker("bare")
        desk = ReplyDesk(stack)
        say("warm-up and baseline plan")
        plan = (await warm_up(stack, desk))["plans"]["job"]
        for index in range(rounds):
            say(f"round {index + 1}: {jobs} agent jobs")
            ours = await with_cpu(stack, jobs_throughput(stack, desk, jobs), jobs)
            ours.pop("job_ids")
            say(f"round {index + 1}: {jobs} bare workflows")
            bare = await with_cpu(stack, bare_throughput(stack, plan, jobs, f"ab{index}"), jobs)
            out.append({"ours": ours, "bare": bare})
    return out


def report(rounds: list[dict[str, Any]]) -> str:
    """One line per round, then the bracketed ratios."""
    lines = []
    for index, r in enumerate(rounds):
        ours, bare = r["ours"], r["bare"]
        cpu_ours, cpu_bare = ours["cpu_ms_per_workflow"], bare["cpu_ms_per_workflow"]
        lines.append(
            f"round {index + 1}: ours {ours['jobs_per_s']} jobs/s, bare {bare['per_s']}/s, "
            f"ours/bare {ratio(ours['jobs_per_s'], bare['per_s'])}; "
            f"CPU ms per job ours {sum(cpu_ours.values()):.0f} "
            f"(server {cpu_ours.get('temporal', 0):.0f}), "
            f"bare {sum(cpu_bare.values()):.0f} (server {cpu_bare.get('temporal', 0):.0f})"
        )
    for index in range(1, len(rounds)):
        around = (rounds[index - 1]["bare"]["per_s"] + rounds[index]["bare"]["per_s"]) / 2
        lines.append(
            f"round {index + 1} bracketed: ours/bare "
            f"{ratio(rounds[index]['ours']['jobs_per_s'], around)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point; exits 1 if any workflow failed."""
    args = parse_args(argv)
    rounds = asyncio.run(run(args.jobs, args.rounds))
    print(report(rounds))
    failed = sum(r["ours"]["failed"] + r["bare"]["failed"] for r in rounds)
    if failed:
        print(f"{failed} workflows failed; see the workers' logs", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
