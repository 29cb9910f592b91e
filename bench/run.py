"""Run chatrepl's benchmark suite: print the results and write them to docs/benchmarks.md.

python bench/run.py [--quick] [--competitors]
                    [--only render|startup|sessions|display|tools|crash|embedded|tokens|search]
                    [--output FILE]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the tests' fake server

from common import REPO, Figure, log, machine, package_versions
from report import document, figures_table, sections, summary, table

SECTIONS = (
    "render",
    "startup",
    "sessions",
    "display",
    "tools",
    "crash",
    "embedded",
    "tokens",
    "search",
)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="chatrepl's benchmark suite.")
    parser.add_argument("--quick", action="store_true", help="a shorter run (< 2 minutes)")
    parser.add_argument(
        "--competitors",
        action="store_true",
        help="create bench/.venvs/{llm,sgpt} if missing, and measure them (also in --quick)",
    )
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO / "docs" / "benchmarks.md",
        help="where to write the report (default: docs/benchmarks.md)",
    )
    return parser.parse_args(argv)


def run_render(quick: bool) -> list[Figure]:
    """The rendering section."""
    import render_bench

    options = render_bench.Options(
        paced_tokens=1_500 if quick else 10_000,
        repeats=1 if quick else 3,
        naive_tokens=(1_000,) if quick else (1_000, 2_000),
    )
    return render_bench.measure(options)


def run_startup(quick: bool, competitors: bool) -> tuple[list[Figure], str]:
    """The start-up section, and the competitors table in Markdown."""
    import startup_bench
    import tools

    missing = tools.install() if competitors else {}
    measure_them = competitors or not quick
    if measure_them:
        problem = tools.install_chatrepl()  # this tree, in its own venv like the competitors
        if problem:
            missing["chatrepl-venv"] = problem
    figures, results = startup_bench.measure(rounds=7, competitors=measure_them)
    results.missing.update(missing)
    if not measure_them:
        return figures, "Not measured: `--quick` leaves them out unless `--competitors` is given."
    return figures, table(startup_bench.competitor_table(results))


def run_sessions(quick: bool) -> list[Figure]:
    """The sessions section."""
    import session_bench

    return session_bench.measure(runs=5 if quick else 9, rounds=3 if quick else 5)


def run_display(quick: bool) -> list[Figure]:
    """The long-messages section."""
    import display_bench

    return display_bench.measure(rounds=1 if quick else 3)


def run_tools(quick: bool) -> list[Figure]:
    """The tool-calling section."""
    import tools_bench

    return tools_bench.measure(rounds=10 if quick else 40)


def run_embedded(quick: bool) -> list[Figure]:
    """The embedded-model section: tokens/s to a terminal, worker process, first token."""
    import embedded_bench

    return embedded_bench.measure(rounds=3 if quick else 7)


def run_crash(quick: bool) -> list[Figure]:
    """The crash-safety section: SIGKILL at random points of streamed replies."""
    import crash_harness

    return crash_harness.measure(trials=30 if quick else 100)


def run_tokens(quick: bool) -> list[Figure]:
    """The token-counting section: a 5,000-message session, later turns, a 100 KB paste."""
    import tokens_bench

    return tokens_bench.measure(rounds=3 if quick else 9)


def run_search(quick: bool) -> list[Figure]:
    """The session-search section: 1,000 sessions indexed, searched, and a turn's update."""
    import search_bench

    return search_bench.measure(rounds=3 if quick else 5)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, print the tables and write the report."""
    args = arguments(argv)
    chosen = args.only or list(SECTIONS)
    started = time.perf_counter()
    figures: list[Figure] = []
    competitors = "Not measured: the start-up section was not run."
    if "render" in chosen:
        figures += run_render(args.quick)
    if "startup" in chosen:
        startup, competitors = run_startup(args.quick, args.competitors)
        figures += startup
    if "sessions" in chosen:
        figures += run_sessions(args.quick)
    if "display" in chosen:
        figures += run_display(args.quick)
    if "tools" in chosen:
        figures += run_tools(args.quick)
    if "crash" in chosen:
        figures += run_crash(args.quick)
    if "embedded" in chosen:
        figures += run_embedded(args.quick)
    if "tokens" in chosen:
        figures += run_tokens(args.quick)
    if "search" in chosen:
        figures += run_search(args.quick)
    log(f"done in {time.perf_counter() - started:.0f} s")
    show(figures, competitors)
    write(args, figures, competitors)
    return 0


def show(figures: list[Figure], competitors: str) -> None:
    """Print every table on stdout."""
    for name, items in sections(figures).items():
        print(f"\n{name}\n\n{figures_table(items)}")
    print(f"\nCompetitors\n\n{competitors}\n\n{summary(figures)}")


def write(args: argparse.Namespace, figures: list[Figure], competitors: str) -> None:
    """Write the report file."""
    command = " ".join(["python bench/run.py", *map(shlex.quote, sys.argv[1:])])
    text = document(machine(), package_versions(), figures, competitors, command)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    log(f"wrote {args.output}")


if __name__ == "__main__":
    sys.exit(main())
