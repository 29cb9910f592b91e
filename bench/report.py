"""The results as Markdown: tables for the terminal, and the whole of docs/benchmarks.md."""

from __future__ import annotations

from collections.abc import Iterable

from common import Figure

HOW_TO_RUN = """\
```sh
python bench/run.py                 # everything, about 5 minutes on 2 cores
python bench/run.py --quick         # shorter: a 15 s streaming slice, no competitors (< 2 min)
python bench/run.py --competitors   # first create bench/.venvs/{llm,sgpt} with pip, then run all
python bench/run.py --only startup  # one section: render, startup or sessions (repeatable)
```
Run it from the repository root with chatrepl installed (`pip install -e '.[test]'`: it needs
`pexpect` and the tests' fake server, `tests/fakeserver.py`). It is not part of the test suite.
Competitors are installed only into their own venvs under `bench/.venvs/` (never into the main
environment, where they would pin openai, rich or typer to other versions); once created they
are used by every default run, and skipped, with the reason in the table, when absent."""

NOTES = """\
- **Noise.** The machine has 2 cores and is shared: every start-up figure is the median of
  interleaved rounds (each round runs every program once, in a rotated order, after one
  unmeasured warm-up round), and every ratio compares programs measured in the same rounds.
  While other work shared the machine, absolute CPU figures moved by up to ±30% between runs
  and ratios by about ±15%: read a figure near its target as a tie, and re-run before acting.
- **Rendering** runs in this process into a `rich` console writing to a byte-counting sink
  (`force_terminal=True`, 100×40, truecolor, `TERM=xterm-256color`). Replies are generated
  (`bench/corpus.py`): headings, paragraphs with inline code, emphasis and links, bulleted and
  numbered lists, fenced code in eight languages, tables and quotes; a token is 4 characters and
  each chunk is one token. The 20k reply begins with the 10k one. CPU is the whole process's CPU
  time (the `Live` refresh thread included) less what the feeding loop spends outside `feed()`.
  A warm-up render first loads Pygments lexers and the like, so figures are steady-state. One
  one-off cost is shown as its own row: the first fence whose language Pygments does not know
  (a half-streamed "```yam" in the live tail is one) makes Pygments scan every installed
  package for lexer plug-ins, once per process.
- **(a) and (d)** stream in real time (a chunk every 10 ms, on a schedule that does not drift);
  the default run streams the whole 10k reply (100 s), `--quick` its first 1,500 tokens.
  The as-fast-as-possible p99 row is for reference: there `feed()` never waits, so the refresh
  thread competes with it for the GIL all the time.
- **The naive `Live`** is what shell_gpt does: one `rich.live.Live(vertical_overflow="visible")`
  whose whole Markdown is rebuilt and redrawn after every chunk. It is quadratic, so it runs on
  small replies only.
- **Start-up** times the installed console scripts directly (`sysconfig`'s scripts directory),
  not a pyenv shim, which would add about 80 ms to every command. The REPL time is from spawning
  it in a pseudo-terminal (pexpect, 100×40) until the prompt `chat>` (regex
  `chat(?:\\x1b\\[[0-9;]*m)*>`) has been read; the baselines are the wall time of
  `python -c "import prompt_toolkit"` and `python -c "import typer"` with the same interpreter.
  Every program runs with bytecode caching on (`PYTHONDONTWRITEBYTECODE` is removed from its
  environment, as users do not set it), so the warm-up round compiles chatrepl's modules once.
  `ask` runs without a terminal (output captured, stdin empty) against the tests' fake server,
  which runs in a thread of the benchmark process on 127.0.0.1 and answers at once with
  `Echo: hi`; each run must print that answer and make exactly one request, or it is reported
  as failed rather than timed. The SDK baseline is `openai.OpenAI(...).chat.completions.create(
  ..., stream=True)` iterated and printed.
- **Sessions**: `SessionStore.save` includes its fsync and atomic rename. Memory is VmRSS from
  `/proc/<pid>/status`, read 1 s after the prompt appears (so background imports are counted).
- **Competitors**: llm ignores `OPENAI_BASE_URL`, so the local server is declared as model
  `bench` in `extra-openai-models.yaml` under a temporary `LLM_USER_PATH` (llm logs each answer
  to a SQLite database there, as it does by default); its REPL is `llm chat -m bench`. shell_gpt
  is configured by environment (`API_BASE_URL`, `OPENAI_API_KEY`, `DEFAULT_MODEL`) with `HOME`
  and its caches in a temporary directory; its REPL is `sgpt --repl temp`, and `ask` runs
  `sgpt --no-cache "hi"` (its cache would otherwise answer without asking the server).
  A ratio above 1× means the competitor is slower than chatrepl in the same rounds.
  shell-gpt 1.5 also needs `click` installed beside it, which newer typer releases no longer
  bring."""


def table(rows: Iterable[list[str]]) -> str:
    """A Markdown table whose first row is the header."""
    rows = list(rows)
    lines = [_row(rows[0]), _row(["---"] * len(rows[0]))]
    lines += [_row(row) for row in rows[1:]]
    return "\n".join(lines)


def _row(cells: list[str]) -> str:
    """One table row, with pipes in cells escaped."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def figures_table(figures: list[Figure]) -> str:
    """The figures of one section."""
    header = ["figure", "measured", "target", "result"]
    return table([header, *([f.name, f.value, f.target, f.verdict] for f in figures)])


def sections(figures: list[Figure]) -> dict[str, list[Figure]]:
    """Figures grouped by section, in order of appearance."""
    grouped: dict[str, list[Figure]] = {}
    for figure in figures:
        grouped.setdefault(figure.section, []).append(figure)
    return grouped


def summary(figures: list[Figure]) -> str:
    """How many targets passed."""
    judged = [f for f in figures if f.passed is not None]
    failed = [f.name for f in judged if not f.passed]
    text = f"{len(judged) - len(failed)} of {len(judged)} targets met."
    return text + (" Failing: " + "; ".join(failed) + "." if failed else "")


def results(figures: list[Figure], competitors: str) -> str:
    """The tables of every section, then the competitors table."""
    parts = [f"### {name}\n\n{figures_table(items)}" for name, items in sections(figures).items()]
    parts.append(f"### Competitors (reference, no targets)\n\n{competitors}")
    return "\n\n".join(parts)


def document(
    machine: dict[str, str],
    versions: dict[str, str],
    figures: list[Figure],
    competitors: str,
    command: str,
) -> str:
    """The whole of docs/benchmarks.md."""
    packages = ", ".join(f"{name} {version}" for name, version in versions.items())
    return f"""# Benchmarks

How fast chatrepl starts, streams Markdown and handles long sessions, against the targets set
for it and side by side with `llm` and `sgpt` (shell_gpt). This file is written by
`{command}`; do not edit the figures by hand, run it again.

Measured {machine["date"]} on {machine["cpu"]}, {machine["cores"]} cores, {machine["system"]},
{machine["python"]}; chatrepl commit {machine["commit"]}.
Packages: {packages}.

**{summary(figures)}**

## Results

{results(figures, competitors)}

## How to run

{HOW_TO_RUN}

## Notes

{NOTES}
"""
