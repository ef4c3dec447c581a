"""A small Bicep reader for the infra tests: enough structure to check what matters without Azure.

It is not a Bicep compiler. It blanks comments and string contents (so braces inside strings
do not count), then finds declarations (`param`, `var`, `output`, `module`) and their bodies
by bracket matching. Tests that need a real grammar use pycep-parser when it is installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
INFRA = REPO / "infra"

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}


class BicepSyntaxError(AssertionError):
    pass


def blank(text: str, *, keep_strings: bool = False) -> str:
    """`text` with comments and string contents replaced by spaces (quotes and newlines kept).

    Interpolations (`${...}`) inside strings are kept as code, so identifiers used in them stay
    visible. With `keep_strings` only comments are blanked. Offsets never move. Raises
    BicepSyntaxError for an unterminated string or block comment.
    """
    out: list[str] = []
    i, n = 0, len(text)
    # Each frame is "code" or "string"; an interpolation pushes "interp" (code ending at its `}`).
    stack: list[str] = ["code"]
    depth_in_interp: list[int] = []

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    while i < n:
        mode = stack[-1]
        c = text[i]
        if mode in ("code", "interp"):
            if text.startswith("//", i):
                j = text.find("\n", i)
                j = n if j == -1 else j
                out.append(" " * (j - i))
                i = j
                continue
            if text.startswith("/*", i):
                j = text.find("*/", i + 2)
                if j == -1:
                    raise BicepSyntaxError(f"unterminated block comment at line {line_of(i)}")
                out.append("".join(ch if ch == "\n" else " " for ch in text[i : j + 2]))
                i = j + 2
                continue
            if text.startswith("'''", i):
                j = text.find("'''", i + 3)
                if j == -1:
                    raise BicepSyntaxError(f"unterminated multi-line string at line {line_of(i)}")
                body = text[i + 3 : j]
                kept = body if keep_strings else "".join(ch if ch == "\n" else " " for ch in body)
                out.append("'''" + kept + "'''")
                i = j + 3
                continue
            if c == "'":
                out.append(c)
                stack.append("string")
                i += 1
                continue
            if mode == "interp":
                if c == "{":
                    depth_in_interp[-1] += 1
                elif c == "}":
                    if depth_in_interp[-1] == 0:
                        stack.pop()
                        depth_in_interp.pop()
                        out.append(c)
                        i += 1
                        continue
                    depth_in_interp[-1] -= 1
            out.append(c)
            i += 1
            continue
        # inside a single-quoted string
        if c == "\\" and i + 1 < n:
            out.append(text[i : i + 2] if keep_strings else "  ")
            i += 2
            continue
        if c == "\n":
            raise BicepSyntaxError(f"unterminated string at line {line_of(i)}")
        if c == "'":
            stack.pop()
            out.append(c)
            i += 1
            continue
        if text.startswith("${", i):
            out.append("${")
            stack.append("interp")
            depth_in_interp.append(0)
            i += 2
            continue
        out.append(c if keep_strings else " ")
        i += 1
    if stack != ["code"]:
        raise BicepSyntaxError("unterminated string or interpolation at end of file")
    return "".join(out)


def check_brackets(code: str) -> None:
    """Raise BicepSyntaxError naming the line of the first unbalanced bracket."""
    stack: list[tuple[str, int]] = []
    line = 1
    for ch in code:
        if ch == "\n":
            line += 1
        elif ch in _OPEN:
            stack.append((ch, line))
        elif ch in _CLOSE:
            if not stack:
                raise BicepSyntaxError(f"unexpected {ch!r} at line {line}")
            opener, opened = stack.pop()
            if opener != _CLOSE[ch]:
                raise BicepSyntaxError(f"{ch!r} at line {line} closes {opener!r} opened at line {opened}")
    if stack:
        opener, opened = stack[-1]
        raise BicepSyntaxError(f"{opener!r} opened at line {opened} is never closed")


def _match(code: str, start: int) -> int:
    """Index just past the bracket that closes the one at `start`."""
    depth = 0
    for i in range(start, len(code)):
        ch = code[i]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth == 0:
                return i + 1
    raise BicepSyntaxError(f"bracket at offset {start} is never closed")


def _statement_end(code: str, start: int) -> int:
    """End of the statement starting at `start`: the first newline outside any bracket."""
    depth = 0
    for i in range(start, len(code)):
        ch = code[i]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch == "\n" and depth == 0:
            return i
    return len(code)


def object_entries(code: str, text: str, open_brace: int) -> dict[str, str]:
    """Top-level `key: value` entries of the object literal whose `{` is at `open_brace`.

    Keys come from `code`; values are returned from the raw `text` (strings intact).
    """
    end = _match(code, open_brace)
    entries: dict[str, str] = {}
    i = open_brace + 1
    key_re = re.compile(r"[ \t]*(?:'([^']*)'|([A-Za-z_][A-Za-z0-9_]*))[ \t]*:")
    while i < end - 1:
        if code[i] in " \t\r\n,":
            i += 1
            continue
        m = key_re.match(code, i)
        if not m:
            raise BicepSyntaxError(f"cannot read object entry near {code[i:i + 40]!r}")
        key = m.group(2) or text[m.start(1) : m.end(1)]
        value_start = m.end()
        value_end = min(_statement_end(code, value_start), end - 1)
        entries[key] = text[value_start:value_end].strip()
        i = value_end
    return entries


@dataclass
class Param:
    name: str
    type: str
    decorators: str  # raw decorator text above the declaration
    default: str | None

    @property
    def secure(self) -> bool:
        return "@secure()" in self.decorators

    @property
    def description(self) -> str:
        m = re.search(r"@description\('((?:[^'\\]|\\.)*)'\)", self.decorators)
        return m.group(1) if m else ""

    def bound(self, which: str) -> int | None:
        """The integer of `@minValue(n)` or `@maxValue(n)` (`which` is "min" or "max"); None without one."""
        m = re.search(rf"@{which}Value\(\s*(-?\d+)\s*\)", self.decorators)
        return int(m.group(1)) if m else None

    @property
    def allowed(self) -> list[str] | None:
        """The values of `@allowed([...])` as written (strings keep their quotes); None without one."""
        m = re.search(r"@allowed\(\s*\[(.*?)\]\s*\)", self.decorators, re.S)
        return re.findall(r"'[^']*'|[^\s,]+", m.group(1)) if m else None


@dataclass
class Module:
    symbol: str
    path: str
    params: dict[str, str]


@dataclass
class BicepFile:
    path: Path
    text: str
    code: str = field(init=False)  # comments and string contents blanked
    source: str = field(init=False)  # comments blanked, strings intact
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    modules: list[Module] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.code = blank(self.text)
        self.source = blank(self.text, keep_strings=True)
        check_brackets(self.code)
        self._read_declarations()

    @property
    def rel(self) -> str:
        return self.path.relative_to(REPO).as_posix()

    def _decorators(self) -> dict[int, str]:
        """{offset of a top-level declaration: text of the decorators right before it}."""
        code, text = self.code, self.source
        found: dict[int, str] = {}
        pending: list[str] = []
        i = 0
        line_start = re.compile(r"^[ \t]*(@[A-Za-z_][\w.]*\s*\(|[A-Za-z_]\w*)", re.M)
        while True:
            m = line_start.search(code, i)
            if not m:
                return found
            token = m.group(1)
            if token.startswith("@"):
                paren = m.end() - 1
                end = _match(code, paren)
                pending.append(text[m.start(1) : end])
                i = end
                continue
            found[m.start(1)] = "\n".join(pending)
            pending = []
            i = _statement_end(code, m.start(1)) + 1

    def _read_declarations(self) -> None:
        code, text = self.code, self.source
        decorators = self._decorators()
        for m in re.finditer(r"^param\s+([A-Za-z_]\w*)\s+([A-Za-z_]\w*)(\s*=)?", code, re.M):
            default = None
            if m.group(3):
                end = _statement_end(code, m.end())
                default = text[m.end() : end].strip()
            self.params[m.group(1)] = Param(m.group(1), m.group(2), decorators.get(m.start(), ""), default)
        for m in re.finditer(r"^var\s+([A-Za-z_]\w*)\s*=", code, re.M):
            end = _statement_end(code, m.end())
            self.variables[m.group(1)] = text[m.end() : end].strip()
        for m in re.finditer(r"^output\s+([A-Za-z_]\w*)\s+\w+\s*=", code, re.M):
            end = _statement_end(code, m.end())
            self.outputs[m.group(1)] = text[m.end() : end].strip()
        for m in re.finditer(r"^module\s+([A-Za-z_]\w*)\s+'", code, re.M):
            q = m.end() - 1
            close = code.index("'", q + 1)
            path = text[q + 1 : close]
            brace = code.index("{", close)
            params_m = re.compile(r"\bparams\s*:\s*\{").search(code, brace, _match(code, brace))
            params = object_entries(code, text, params_m.end() - 1) if params_m else {}
            self.modules.append(Module(m.group(1), path, params))

    def var_object(self, name: str) -> dict[str, str]:
        """Entries of `var name = { ... }`."""
        m = re.search(rf"^var\s+{re.escape(name)}\s*=\s*\{{", self.code, re.M)
        if not m:
            raise KeyError(name)
        return object_entries(self.code, self.source, m.end() - 1)


def load_bicep(path: Path) -> BicepFile:
    return BicepFile(path, path.read_text(encoding="utf-8"))
