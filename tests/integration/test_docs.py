"""The docs run: every ```python block of README.md and docs/*.md, and every shell block that
uses ``ltx2`` (or runs ``pytest``), is executed against the emulator.

Each Markdown file is one test. Its blocks run in order, as a reader would run them, in one
fresh working directory that holds a picture ``cat.jpg`` (the demo's, from ``ltx2/assets``;
the docs say "any JPEG or PNG saved as cat.jpg"). Python blocks run as scripts in their own
interpreter; shell blocks run in ``bash -euo pipefail``. The environment is the one the docs
document for the emulator: ``LTX2_EMULATOR_URL`` (an emulator started by this test, serving
stub clips so that the suite takes seconds, not minutes: these tests check that the docs run,
the renderer is tested in tests/integration/emulator), ``LTX2_TIME_SCALE`` and every
provider's key variable.

Markers, on the line immediately before a block's opening fence:

- ``<!-- fragment -->``: the block is not meant to run on its own (a snippet of a larger app, a
  command that serves until Ctrl-C, ...); it is skipped.
- ``<!-- file: NAME -->``: the block is a file the reader saves as NAME (a test module, a
  JSONL batch file); it is written to the working directory, and a later block runs it.

``pip install`` in a shell block is checked, not run (the suite is offline and must be
quick): a local path (``-e ".[cli]"``) must be this checkout with extras that pyproject.toml
defines, and any other requirement must be installed in this environment at a version it
allows. ``pip install ltx2`` from an index fails: ltx2 is not published there.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import ltx2
from ltx2.emulator import Emulator
from ltx2.providers import get

pytest.importorskip("av")
pytest.importorskip("rich")

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PIP_CHECK = Path(__file__).with_name("_doc_pip.py")
#: The emulator's time scale for the docs, and the client's (``LTX2_TIME_SCALE``).
TIME_SCALE = 0.01
#: A block that takes longer than this fails (a doc example should finish in seconds).
BLOCK_TIMEOUT = 90.0

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_SHELL = {"bash", "sh", "shell", "console"}
#: A shell command that uses ltx2: ``ltx2 …``, ``python -m ltx2 …`` or ``pytest …`` at the
#: start of a line or after ``&&``, ``||``, ``;``, ``|`` or a ``$`` prompt.
_USES_LTX2 = re.compile(
    r"(?:^|&&|\|\||[;|]|^\$)\s*(?:\$\s+)?(?:ltx2|python3? -m (?:ltx2|pytest)|pytest)(?:\s|$)",
    re.M,
)
_FILE_MARK = re.compile(r"^\s*<!--\s*file:\s*(?P<name>[\w./-]+)\s*-->\s*$")
_FRAGMENT_MARK = re.compile(r"^\s*<!--\s*fragment\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    fragment: bool
    file: str | None

    @property
    def where(self) -> str:
        doc = self.doc.relative_to(ROOT) if self.doc.is_relative_to(ROOT) else self.doc.name
        return f"{doc}:{self.line}"


def extract(doc: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with the marker on the line before its fence."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent = m.group("fence"), len(m.group("indent"))
        before = lines[i - 1] if i > 0 else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence[0] * len(fence))
            and not lines[j].strip().strip(fence[0])
        ):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        file_mark = _FILE_MARK.match(before)
        blocks.append(
            Block(
                doc=doc,
                line=i + 1,
                lang=m.group("lang").lower(),
                code="\n".join(body) + "\n",
                fragment=bool(_FRAGMENT_MARK.match(before)),
                file=file_mark.group("name") if file_mark else None,
            )
        )
        i = j + 1
    return blocks


def runs(block: Block) -> bool:
    """Whether the docs test runs this block (see the module docstring)."""
    if block.fragment or block.file is not None:
        return False
    if block.lang == "python":
        return True
    return block.lang in _SHELL and _USES_LTX2.search(block.code) is not None


def docs_env(emulator_url: str, bin_dir: Path) -> dict[str, str]:
    """The environment the docs document for running against an emulator."""
    env = dict(os.environ)
    env.update(
        LTX2_EMULATOR_URL=emulator_url,
        LTX2_TIME_SCALE=str(TIME_SCALE),
        PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        PYTHONUNBUFFERED="1",
    )
    env.pop("PYTEST_ADDOPTS", None)
    for name in ltx2.PROVIDERS:
        env[get(name).env_var] = "docs-test-key"
    return env


async def _run(argv: list[str], cwd: Path, env: dict[str, str], block: Block) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), BLOCK_TIMEOUT)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        pytest.fail(
            f"{block.where}: the {block.lang} block did not finish within {BLOCK_TIMEOUT} s\n"
            f"{block.code}\n--- output ---\n{out.decode(errors='replace')[-4000:]}"
        )
    if proc.returncode != 0:
        pytest.fail(
            f"{block.where}: the {block.lang} block failed (exit {proc.returncode})\n"
            f"{block.code}\n--- output ---\n{out.decode(errors='replace')[-4000:]}",
            pytrace=False,
        )


#: Shell blocks that already ran and passed in this session, by their text: an identical
#: command (``ltx2 demo`` in README.md and in the quick start) is not run twice.
_PASSED_SHELL: set[str] = set()


async def run_doc(doc: Path, work: Path, emulator_url: str) -> int:
    """Run one document's blocks in order in ``work``; returns how many ran."""
    scripts = work.parent / "scripts"
    scripts.mkdir(exist_ok=True)
    bin_dir = scripts / "bin"
    bin_dir.mkdir(exist_ok=True)
    pip = bin_dir / "pip"
    pip.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{PIP_CHECK}" "$@"\n')
    pip.chmod(0o755)
    env = docs_env(emulator_url, bin_dir)
    ran = 0
    for block in extract(doc):
        if block.file is not None and not block.fragment:
            target = work / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
            continue
        if not runs(block):
            continue
        # Padded with blank lines so that a traceback's line numbers are the Markdown's.
        stem = f"{doc.stem}_{block.line}"
        if block.lang == "python":
            script = scripts / f"{stem}.py"
            script.write_text("\n" * block.line + block.code, encoding="utf-8")
            await _run([sys.executable, str(script)], work, env, block)
        else:
            if block.code in _PASSED_SHELL:
                continue
            script = scripts / f"{stem}.sh"
            script.write_text("\n" * block.line + block.code, encoding="utf-8")
            await _run(["bash", "-euo", "pipefail", str(script)], work, env, block)
            _PASSED_SHELL.add(block.code)
        ran += 1
    return ran


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
async def test_doc_runs(doc: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "src" / "ltx2" / "assets" / "demo.jpg", work / "cat.jpg")
    async with Emulator(time_scale=TIME_SCALE, seed=0, render="stub") as emu:
        await run_doc(doc, work, emu.url)


# -- the rules themselves -------------------------------------------------------------------


def _blocks(text: str, tmp_path: Path) -> list[Block]:
    doc = tmp_path / "doc.md"
    doc.write_text(text)
    return extract(doc)


def test_fragment_marker_only_counts_immediately_before_the_fence(tmp_path: Path) -> None:
    text = (
        "<!-- fragment -->\n```python\nx = 1\n```\n"
        "<!-- fragment -->\n\n```python\ny = 2\n```\n"
        "<!-- file: test_a.py -->\n```python\nz = 3\n```\n"
    )
    a, b, c = _blocks(text, tmp_path)
    assert a.fragment
    assert not runs(a)
    assert not b.fragment
    assert runs(b)
    assert c.file == "test_a.py"
    assert not runs(c)


def test_shell_blocks_run_when_they_use_ltx2_or_pytest(tmp_path: Path) -> None:
    text = (
        "```bash\nltx2 demo\n```\n"
        '```bash\npip install -e ".[cli]" && ltx2 demo\n```\n'
        "```sh\n$ python -m pytest test_x.py\n```\n"
        "```bash\napt-get install redis-server\n```\n"
        "```bash\necho ltx2-demo.mp4\n```\n"
        "```json\n{}\n```\n"
    )
    flags = [runs(b) for b in _blocks(text, tmp_path)]
    assert flags == [True, True, True, False, False, False]


def test_a_failing_python_block_fails_the_doc(tmp_path: Path) -> None:
    doc = tmp_path / "bad.md"
    doc.write_text("# Bad\n\n```python\nimport ltx2\nasync with ltx2.Client('fal') as c:\n"
                   "    pass\n```\n")  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(pytest.fail.Exception, match=r"(?s)bad\.md:3.*SyntaxError"):
        asyncio.run(run_doc(doc, work, "http://127.0.0.1:9"))


# -- links ----------------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    in_code = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_links_resolve(doc: Path) -> None:
    """Every relative link of the docs names a file or folder in the repository, and every
    ``#anchor`` a heading of its target."""
    text = doc.read_text(encoding="utf-8")
    code_free = re.sub(r"(?ms)^(\s*)(`{3,}|~{3,}).*?^\1\2\s*$", "", text)
    broken = []
    for m in _LINK.finditer(code_free):
        target = m.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            shown = dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest
            broken.append(f"{target}: no {shown}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: {dest.name} has no heading #{anchor}")
    assert not broken, f"{doc.relative_to(ROOT)}: broken links: {broken}"
