"""Deterministic, realistic Markdown replies: headings, prose, lists, code, tables and quotes."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

CHARS_PER_TOKEN = 4

_PROSE = (
    "the request returns a stream of chunks and each chunk carries a small delta of text that "
    "the client appends to the buffer before it renders the visible part of the reply on screen "
    "when the server closes the connection early you should retry with exponential backoff and "
    "keep the timeout short so that a stalled socket does not block the event loop for long "
    "configuration values come from the environment first then from the file in your home "
    "directory and finally from defaults that work offline for local development and tests "
    "caching the parsed result avoids repeated work but memory grows with every session unless "
    "old entries are evicted by size or by age which is usually the simpler policy to explain"
)
WORDS = tuple(_PROSE.split())
NAMES = (
    "load_config", "parse_events", "fetch_page", "merge_results", "retry_request", "build_index",
    "stream_reply", "flush_buffer", "read_rows", "resolve_path", "encode_batch", "validate_input",
)  # fmt: skip
FIELDS = ("status", "user_id", "created_at", "payload", "retries", "timeout", "tags", "score")
LANGUAGES = ("Python", "Rust", "Go", "TypeScript", "SQL", "Bash")

# Code snippets by fence language; @name@, @field@ and @n@ are filled in per use.
SNIPPETS: dict[str, tuple[str, ...]] = {
    "python": (
        """\
def @name@(path: str, limit: int = @n@) -> list[dict]:
    \"\"\"Read up to `limit` records that have a @field@.\"\"\"
    results = []
    with open(path, encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if index >= limit:
                break
            record = json.loads(line)
            if record.get("@field@"):
                results.append(record)
    return results
""",
        """\
class @name@Cache:
    def __init__(self, size: int = @n@) -> None:
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._size = size

    def get(self, key: str) -> bytes | None:
        value = self._data.pop(key, None)
        if value is not None:
            self._data[key] = value
        return value

    def put(self, key: str, value: bytes) -> None:
        self._data[key] = value
        while len(self._data) > self._size:
            self._data.popitem(last=False)
""",
        """\
async def @name@(session: aiohttp.ClientSession, url: str) -> dict:
    for attempt in range(@n@):
        try:
            async with session.get(url, timeout=10) as resp:
                resp.raise_for_status()
                return await resp.json()
        except aiohttp.ClientError as error:
            log.warning("attempt %d failed: %s", attempt, error)
            await asyncio.sleep(2 ** attempt)
    raise RuntimeError(f"gave up on {url}")
""",
    ),
    "rust": (
        """\
pub fn @name@(input: &str) -> Result<Vec<u32>, ParseIntError> {
    input
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_@field@() {
        assert_eq!(@name@("1, 2, @n@").unwrap(), vec![1, 2, @n@]);
    }
}
""",
        """\
impl Iterator for @name@Reader {
    type Item = Record;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = String::new();
        match self.inner.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&line).ok(),
        }
    }
}
""",
    ),
    "go": (
        """\
func @name@(ctx context.Context, ids []string) (map[string]int, error) {
\tcounts := make(map[string]int, len(ids))
\tfor _, id := range ids {
\t\tselect {
\t\tcase <-ctx.Done():
\t\t\treturn nil, ctx.Err()
\t\tdefault:
\t\t}
\t\tcounts[id]++
\t}
\tif len(counts) > @n@ {
\t\treturn nil, fmt.Errorf("too many @field@ values: %d", len(counts))
\t}
\treturn counts, nil
}
""",
    ),
    "typescript": (
        """\
export async function @name@(url: string, retries = @n@): Promise<Response> {
  let lastError: unknown;
  for (let attempt = 0; attempt < retries; attempt++) {
    try {
      const response = await fetch(url, { headers: { Accept: 'application/json' } });
      if (response.ok) return response;
      lastError = new Error(`HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 2 ** attempt * 100));
  }
  throw lastError;
}
""",
        """\
interface @name@Options {
  @field@: string;
  limit?: number;
  onChunk?: (text: string) => void;
}

const defaults: @name@Options = { @field@: 'auto', limit: @n@ };
""",
    ),
    "bash": (
        """\
#!/usr/bin/env bash
set -euo pipefail

for file in logs/*.jsonl; do
  count=$(jq -r '.@field@' "$file" | sort -u | wc -l)
  echo "$file: $count distinct @field@ values"
done

if [[ $(ls logs | wc -l) -gt @n@ ]]; then
  tar czf archive.tgz logs/
fi
""",
    ),
    "sql": (
        """\
SELECT u.id, u.email, count(o.id) AS orders, max(o.@field@) AS last_@field@
FROM users AS u
LEFT JOIN orders AS o ON o.user_id = u.id
WHERE u.created_at >= now() - interval '@n@ days'
GROUP BY u.id, u.email
HAVING count(o.id) > 0
ORDER BY orders DESC
LIMIT @n@;
""",
    ),
    "json": (
        """\
{
  "name": "@name@",
  "@field@": @n@,
  "enabled": true,
  "tags": ["fast", "safe"],
  "limits": { "requests": @n@, "burst": 20 }
}
""",
    ),
    "yaml": (
        """\
services:
  @name@:
    image: python:3.11-slim
    command: python -m app --@field@ @n@
    environment:
      LOG_LEVEL: info
    ports:
      - "8080:8080"
""",
    ),
}


def reply(tokens: int, seed: int = 7) -> str:
    """A Markdown reply of about `tokens` tokens; a longer one starts with a shorter one's text."""
    rng = random.Random(seed)
    parts = [paragraph(rng)]
    size = len(parts[0])
    while size < tokens * CHARS_PER_TOKEN:
        for block in section(rng):
            parts.append(block)
            size += len(block) + 2
    return "\n\n".join(parts) + "\n"


def chunks(text: str, size: int = CHARS_PER_TOKEN) -> list[str]:
    """The text cut into pieces of `size` characters, as a model streams it."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def section(rng: random.Random) -> Iterator[str]:
    """A heading and a few blocks under it, as a long answer is organised."""
    yield heading(rng)
    yield paragraph(rng)
    makers: tuple[Callable[[random.Random], str], ...] = (
        paragraph, paragraph, bullet_list, ordered_list, code_block, code_block, table, quote,
    )  # fmt: skip
    for _ in range(rng.randint(2, 5)):
        yield rng.choice(makers)(rng)
    if rng.random() < 0.1:
        yield "---"


def words(rng: random.Random, low: int, high: int) -> str:
    """A run of plain words."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def sentence(rng: random.Random) -> str:
    """A sentence, sometimes with inline code, emphasis or a link."""
    text = words(rng, 6, 20)
    roll = rng.random()
    if roll < 0.2:
        text += f" with `{rng.choice(NAMES)}()`"
    elif roll < 0.3:
        text += f" and **{words(rng, 1, 3)}**"
    elif roll < 0.38:
        text += f" as *{words(rng, 1, 2)}*"
    elif roll < 0.43:
        text += f" (see [the docs](https://example.com/docs/{rng.choice(NAMES)}))"
    return text[0].upper() + text[1:] + "."


def paragraph(rng: random.Random) -> str:
    """Two to five sentences."""
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 5)))


def heading(rng: random.Random) -> str:
    """A level 2 or 3 heading."""
    return f"{'#' * rng.choice((2, 2, 3))} {words(rng, 2, 5).capitalize()}"


def bullet_list(rng: random.Random) -> str:
    """A bulleted list whose items sometimes have a bold lead-in or a nested item."""
    items = []
    for _ in range(rng.randint(3, 6)):
        lead = f"**{words(rng, 1, 2)}**: " if rng.random() < 0.4 else ""
        items.append(f"- {lead}{sentence(rng)}")
        if rng.random() < 0.2:
            items.append(f"  - {sentence(rng)}")
    return "\n".join(items)


def ordered_list(rng: random.Random) -> str:
    """Numbered steps."""
    return "\n".join(f"{i}. {sentence(rng)}" for i in range(1, rng.randint(3, 6) + 1))


def code_block(rng: random.Random) -> str:
    """A fenced code block in one of several languages, one to three snippets long."""
    language = rng.choice(tuple(SNIPPETS))
    body = "\n".join(fill(rng, rng.choice(SNIPPETS[language])) for _ in range(rng.randint(1, 3)))
    return f"```{language}\n{body}```"


def fill(rng: random.Random, template: str) -> str:
    """A snippet with its placeholders filled in."""
    return (
        template.replace("@name@", rng.choice(NAMES))
        .replace("@field@", rng.choice(FIELDS))
        .replace("@n@", str(rng.randint(2, 500)))
    )


def table(rng: random.Random) -> str:
    """A comparison table of three to five columns."""
    columns = rng.randint(3, 5)
    header = ["Option", *(words(rng, 1, 2).capitalize() for _ in range(columns - 1))]
    rows = [
        [rng.choice(LANGUAGES), *(_cell(rng) for _ in range(columns - 1))]
        for _ in range(rng.randint(3, 8))
    ]
    lines = [header, ["---"] * columns, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _cell(rng: random.Random) -> str:
    """A table cell: a number, a word or two, or inline code."""
    roll = rng.random()
    if roll < 0.35:
        return f"{rng.uniform(0.1, 900):.1f} ms"
    if roll < 0.5:
        return f"`{rng.choice(FIELDS)}`"
    return words(rng, 1, 3)


def quote(rng: random.Random) -> str:
    """A block quote of one or two paragraphs."""
    first = f"> **Note:** {paragraph(rng)}"
    return first if rng.random() < 0.6 else f"{first}\n>\n> {paragraph(rng)}"
