"""Every shell command in README.md and docs/*.md is either run here or says why it cannot be.

A shell fence names its language and one tag: ```` ```bash runnable ```` (run by this test),
```` ```bash long-running ```` (a server or a suite: `make run`, `make test`, `make bench`) or
```` ```bash needs-azure ```` (azd, az). Runnable blocks run in order, each with `bash -eu -o pipefail`
from the repository root, against one local host this module starts (`python -m devhost`,
APP_ENV=local, a temporary LOCAL_DATA_DIR, a free loopback port written over the docs' `7071`).
curl runs with `--fail-with-body` (from a temporary `.curlrc`), so an HTTP error fails the block.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"bash", "sh", "shell", "console"}
TAGS = {"runnable", "long-running", "needs-azure"}
DOCS_ADDRESS = "127.0.0.1:7071"
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts, its language, its tag and its text (dedented)."""

    path: Path
    line: int
    language: str
    tag: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> Iterator[Block]:
    """The fenced blocks of one Markdown file, in order; fences inside list items may be indented."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent = len(opening["indent"])
        words = opening["info"].split()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            # Dedent by the fence's own indent only: a top-level fence keeps its lines' indentation (Python code).
            body.append(lines[j][indent:] if indent == 0 or lines[j][:indent].isspace() else lines[j].lstrip())
            j += 1
        assert j < len(lines), f"{path.relative_to(ROOT)}:{i + 1}: unclosed code fence"
        yield Block(path, i + 1, words[0] if words else "", words[1] if len(words) > 1 else None, "\n".join(body) + "\n")
        i = j + 1


ALL_BLOCKS = [block for doc in DOCS for block in fenced_blocks(doc)]
RUNNABLE = [block for block in ALL_BLOCKS if block.language in SHELLS and block.tag == "runnable"]


def test_every_shell_block_says_whether_it_runs_here() -> None:
    untagged = [f"{b.where} ```{b.language} {b.tag or ''}" for b in ALL_BLOCKS
                if b.language in SHELLS and b.tag not in TAGS]
    assert not untagged, f"tag each shell block with one of {sorted(TAGS)}: {untagged}"


def test_fence_parser_reads_tags_and_indented_blocks(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("text\n```bash runnable\necho a\n```\n- item:\n\n   ```bash needs-azure\n   az login\n   ```\n"
                   "```text\nplain\n```\n```bash runnable\npython - <<'EOF'\nif True:\n    print(1)\nEOF\n```\n",
                   encoding="utf-8")
    found = [(b.language, b.tag, b.text) for b in fenced_blocks(doc)]
    assert found == [("bash", "runnable", "echo a\n"), ("bash", "needs-azure", "az login\n"), ("text", None, "plain\n"),
                     ("bash", "runnable", "python - <<'EOF'\nif True:\n    print(1)\nEOF\n")]


def test_the_readme_tour_is_runnable() -> None:
    tour = [b for b in RUNNABLE if b.path.name == "README.md"]
    assert tour and sum(line.startswith("curl ") for line in tour[0].text.splitlines()) == 5
    assert "local-dev-key" in tour[0].text


@pytest.fixture(scope="module")
def local_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A local host on a free port, and the environment the blocks run with (same data dir, curl strict)."""
    from bench.util import LocalHost

    base = tmp_path_factory.mktemp("docs-host")
    host = LocalHost(base / "data")
    try:
        host.wait_ready()
        home = base / "home"
        home.mkdir()
        (home / ".curlrc").write_text("fail-with-body\nsilent\nshow-error\nmax-time = 60\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "MONGODB_", "OPENAI_", "MODEL_"))}
        env.update(APP_ENV="local", LOCAL_DATA_DIR=str(base / "data"), CURL_HOME=str(home), LOG_LEVEL="WARNING")
        yield f"127.0.0.1:{host.port}", env
    finally:
        host.close()


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_runnable_block_exits_0(block: Block, local_host: tuple[str, dict[str, str]]) -> None:
    address, env = local_host
    script = block.text.replace(DOCS_ADDRESS, address)
    done = subprocess.run(["bash", "-eu", "-o", "pipefail", "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{block.where} exited {done.returncode}\n{script}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
