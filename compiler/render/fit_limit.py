"""Fit a rendered Markdown document into a character limit (a GitHub PR comment holds 65,536 characters).

The template marks its parts with HTML comments on lines of their own:
`<!-- fit:keep-end -->` ends what is never cut (title and summary), and `<!-- fit:detail -->` … `<!-- fit:end -->`
wrap each detail block. When the document is too long, detail blocks are dropped from the end first, then body
lines from the end (never half a code fence), and a note says what was left out. Markers never reach the output.
"""

from __future__ import annotations

COMMENT_LIMIT = 65_536
KEEP_END = "<!-- fit:keep-end -->"
DETAIL = "<!-- fit:detail -->"
END = "<!-- fit:end -->"


def _parts(text: str) -> tuple[str, list[tuple[bool, str]]]:
    """(the part never cut, [(is_detail_block, text), ...] in document order)."""
    head, sep, rest = text.partition(KEEP_END + "\n")
    if not sep:
        head, rest = "", text
    parts: list[tuple[bool, str]] = []
    buf: list[str] = []
    in_detail = False
    for line in rest.splitlines(keepends=True):
        if line.strip() in (DETAIL, END):
            if buf:
                parts.append((in_detail, "".join(buf)))
            buf, in_detail = [], line.strip() == DETAIL
            continue
        buf.append(line)
    if buf:
        parts.append((in_detail, "".join(buf)))
    return head, parts


def fit(text: str, limit: int | None, what: str) -> str:
    """`text` without markers, cut to at most `limit` characters (None: no limit). `what` names where the full
    content is, for the note."""
    head, parts = _parts(text)
    whole = head + "".join(p for _, p in parts)
    if limit is None or len(whole) <= limit:
        return _tidy(whole)
    dropped = 0
    while any(d for d, _ in parts) and len(_join(head, parts, dropped, what)) > limit:
        i = max(i for i, (d, _) in enumerate(parts) if d)
        parts.pop(i)
        dropped += 1
    out = _join(head, parts, dropped, what)
    if len(out) <= limit:
        return _tidy(out)
    body = "".join(p for _, p in parts).splitlines(keepends=True)
    while body and len(_join(head, [(False, "".join(body))], dropped, what, cut=True)) > limit:
        body.pop()
        if sum(1 for line in body if line.startswith("```")) % 2:  # never leave a code fence open
            while body and not body[-1].startswith("```"):
                body.pop()
            if body:
                body.pop()
    return _tidy(_join(head, [(False, "".join(body))], dropped, what, cut=True))


def _join(head: str, parts: list[tuple[bool, str]], dropped: int, what: str, cut: bool = False) -> str:
    text = head + "".join(p for _, p in parts)
    if dropped or cut:
        left = f"{dropped} detail block(s)" + (" and the end of the tables" if cut else "")
        text = text.rstrip("\n") + (
            f"\n\n> **Truncated:** {left} left out to stay under {COMMENT_LIMIT:,} characters "
            f"(the limit of a GitHub comment); {what}.\n"
        )
    return text


def _tidy(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"
