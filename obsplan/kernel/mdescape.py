"""Text from outside (advisory summaries, CHANGELOG entries, release tags, host names and output, Prometheus
error text) written into Markdown that GitHub renders as HTML: the PR report, the diff comment and the
rollout summary. See docs/security.md, section "Escaping".

`md` makes any string one line of inline text that cannot change the document around it: `&`, `<`, `>` become
entities (no tag, no comment, no `</details>` can close the template's block), `|` and `\\` become entities (no
table cell ends early, no escape reaches the character after the text), a `#` starting the text, and a
list marker (`-`, `+`, `*`, `1.`, `1)` then a space) or thematic break (`***`) starting it, get an entity (no
heading, list or rule forged where the template starts a line), line breaks and other
control characters become spaces (no new line, so no new block), and bidirectional-override characters become
U+FFFD (what is shown is what is there). Inline formatting inside the text (emphasis, a code span, a link, which
GitHub sanitises) still renders, confined to that line or table cell: obsplan's own sentences use it too.
"""

from __future__ import annotations

import re

_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "|": "&#124;",
    "\\": "&#92;",
}
_SPECIAL = re.compile(r"[&<>|\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_BLOCK_START = re.compile(r"^( *)(?:(#)|([-+*])(?=\s|$)|([-*_])(?=(?: *\4){2,} *$)|(\d{1,9})([.)])(?=\s|$))")


def _neutral_start(m: re.Match[str]) -> str:
    indent, hash_, marker, rule, digits, punct = m.groups()
    if hash_ or marker or rule:
        return f"{indent}&#{ord(hash_ or marker or rule)};"
    return f"{indent}{digits}&#{ord(punct)};"


def md(text: object) -> str:
    """`text` as one line of inert inline Markdown (see the module docstring)."""
    s = _BIDI.sub("\ufffd", _CONTROL.sub(" ", str(text)))
    return _BLOCK_START.sub(_neutral_start, _SPECIAL.sub(lambda m: _ENTITIES[m.group(0)], s), count=1)


def md_code(text: object) -> str:
    """`text` as an inline code span: one line, fenced by more backticks than it holds, `|` escaped for a table
    cell (GitHub reads `\\|` inside a code span in a table as `|`)."""
    s = _BIDI.sub("\ufffd", _CONTROL.sub(" ", str(text))).replace("|", "\\|")
    run = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (run + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or run else ""
    return f"{fence}{pad}{s}{pad}{fence}"


_MERMAID = {'"': "#quot;", "`": "#96;", "<": "#lt;", ">": "#gt;", "#": "#35;", "&": "#38;"}


def mermaid_label(text: object) -> str:
    """`text` inside a double-quoted Mermaid node label within a fenced block: no quote ends the label, no
    backtick ends the fence, no tag is made (Mermaid's own `#code;` entities)."""
    s = _BIDI.sub("\ufffd", _CONTROL.sub(" ", str(text)))
    return re.sub(r'["`<>#&]', lambda m: _MERMAID[m.group(0)], s)
