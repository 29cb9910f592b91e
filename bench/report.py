"""The results as Markdown: tables for the terminal, and the whole of docs/benchmarks.md."""

from __future__ import annotations

from collections.abc import Iterable

from common import Figure

HOW_TO_RUN = """\
```sh
python bench/run.py                 # everything, about 5 minutes on 2 cores
python bench/run.py --quick         # shorter: a 15 s streaming slice, no competitors (< 2 min)
python bench/run.py --competitors   # first create bench/.venvs/{llm,sgpt} with pip, then run all
python bench/run.py --only startup  # one section: render, startup, sessions or display (repeatable)
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
- **Long messages**: sessions holding a question and one generated Markdown reply (the render
  corpus repeated) of 1, 4 and 50 MB, ending in a marker line. Piped, `chatrepl sessions show`
  must print that marker (the whole message); in a pseudo-terminal (100×40) it must print the
  note that replaces the rest of a message longer than 262,144 characters. Each time runs from
  starting the program until it exits (`sessions show`) or has shown that note above its prompt
  (`--resume`), or from pressing Enter after `/history` until the prompt is back; medians of
  interleaved rounds. Reading the 50 MB session file is included. `sessions show`
  rows also give the program's CPU time (user + system), which a busy machine does not inflate
  as it does wall time. Before messages over 65,536 characters were written as plain text, the
  same command took 0.66 s for 1 MB, 8.4 s for 4 MB and more than two minutes for 50 MB.
- **Crash safety** (`bench/crash_harness.py`, also runnable alone): each trial reopens one
  session in the REPL in a pseudo-terminal (`chatrepl --resume crash`), finishes 0 to 2 turns,
  sends one more and kills the process with SIGKILL at a random moment: a quarter of the kills
  within 1 s of the Enter (before the reply shows or just as it does), the rest while the reply
  streams or just after (up to 1.5× the measured streaming time after its first words). Replies
  stream from the fake server in about 60 chunks, 10 ms apart. After each kill the session file
  must parse, match `sessions/session.schema.json`, and hold every turn finished in any trial so
  far, question and whole reply, in order; no temp file may be left (one left by a kill mid-write
  is counted, and must be gone once the next chatrepl has opened the session), and the next
  trial must reopen the session (the dead process's lock is gone with it).
- **Embedded model** (`bench/embedded_bench.py`, also runnable alone): the bundled SmolLM2
  (Q4_1) on one thread, `n_ctx` 2048, one fixed story prompt, greedy (`temperature` 0),
  128 tokens. llama-cpp-python alone is `Llama.create_chat_completion(stream=True)` with every
  chunk read, the model loaded as chatrepl loads it (the AMX guard's safe configuration, which
  on a build without AMX is the default one); chatrepl is one turn through the engine
  (`TurnRunner.take`) and the Markdown renderer into a 100×40 terminal sink, in-process and
  through the worker process. Tokens per second are over the whole request (prompt evaluation
  included), in interleaved rounds after a warm-up round; shares compare each configuration's
  fastest round (a busy machine only ever slows a run down; the medians are shown beside). The
  terminal rows run the installed `chatrepl` in a 100×40 pseudo-terminal with
  `embedded_isolation` set in a fresh `CHATREPL_HOME`, send `Hi.` the moment the prompt shows
  (so llama_cpp's import and the model's load, and for the worker the interpreter it starts,
  are still under way) and time Enter to the first text of the reply (the first redraw of the
  live tail), in interleaved rounds; the target compares the fastest rounds. CPU per token
  adds up the CPU time of chatrepl's process and, for the worker, the worker's (from
  `/proc/PID/stat`): it shows what each configuration costs where wall times are noisy.
- **Token counting** (`bench/tokens_bench.py`, also runnable alone): the 5,000-message session
  of the sessions section (1.58 MB of text), counted by a counter with an empty cache (the
  encoding already loaded: its one-off load is its own row, timed in fresh processes), then
  five later turns per round, each adding a question and a reply and counting the whole
  request again; medians of the rounds. The paste is 100 KB of generated Markdown prose. The
  floor row is tiktoken's `encode_ordinary` alone on the same texts, which a first count
  cannot beat; the CPU figures show how much of a wall time was waiting for a busy machine.
- **Session search** (`bench/search_bench.py`, also runnable alone): 1,000 sessions of 50
  messages (questions of two sentences, replies of a paragraph, a quarter with code: 15.5 MB of
  text), each with a topic word (`kafka7`, `oauth12`…, 200 of them) added to three of its
  messages; the corpus's own words are in most messages (`stream` in 15,018 of the 50,000). The
  build is the first search after the index files were removed: every file read and indexed.
  Each search is `SessionStore.search` as `/search` runs it: every file's stamp checked (1,000
  `stat` calls), the query, the 20 best sessions and their matching lines; medians of 20
  searches. The update per turn is `SearchIndex.saved` after a question and a reply were added
  to a 50-message session (its file written first, by a store without the index); medians of
  100 turns. The `store.save()` row shows what the update adds to a whole save.
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
