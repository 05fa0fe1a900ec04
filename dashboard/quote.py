"""User text inside a page's markdown, quoted so that it shows as the text itself.

Anything a visitor chooses -- a link's parameter, a variant's name, an uploaded file's name, a checkpoint's note,
the value quoted in an error sentence -- reaches `st.markdown` / `st.error` / `st.caption`, which read markdown
(and, with unsafe_allow_html, HTML). Unquoted, `[x](https://evil.example)` became a live link,
`![](https://evil.example/t.png)` an image fetched from another server, and an Arena variant named
`<iframe srcdoc="<script>…">` ran a script. Every such string goes through one of these:

    st.warning(f"{quote.md(name)} was not accepted")       # plain text: markdown escaped
    st.info(f"The run {quote.code(run_id)} is gone")         # an inline code span that nothing closes early
    st.error(quote.field_error(config_error))                # "**field**: reason", both quoted

`md` and `code` also cut the text to a length (at a word boundary) and fold line breaks into spaces (a line break
could start a heading or a list).
"""
from __future__ import annotations

import re

from ganae.config import ConfigError, shorten

# What can start markdown (CommonMark, GitHub's extensions, Streamlit's directives and LaTeX) in one line of text:
# emphasis, code, strike-through, links / images / :color[...] (all open with "["), HTML and autolinks, entities,
# headings, tables, LaTeX, e-mail links -- escaped with a backslash. "_" only where it can emphasise (not inside
# g_lr), and a list marker only at the start. Field names, numbers and ordinary sentences come out unchanged.
_SPECIAL = re.compile(r"[\\`*~\[\]<>&#|$@]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_LIST_START = re.compile(r"^(\s*)([-+]|\d+(?=[.)]))")
# Autolinks (https://x, www.x, a@b.x) and Streamlit's :material/icon: are found in the text after the escapes are
# undone, so a backslash does not stop them: an invisible zero-width space does, after the ":" and the "www" and
# the "@" (the text reads the same; a copy of it carries the space).
ZWSP = "\u200b"
_UNLINK = re.compile(r"(?<=:)(?=\w*/)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
_TICKS = re.compile(r"`+")


def _one_line(text: object, width: int) -> str:
    return shorten(_BREAKS.sub(" ", str(text)), width)


def md(text: object, width: int = 600) -> str:
    """`text` as literal markdown: no link, image, HTML tag, emphasis, colour, icon or LaTeX can start in it."""
    s = _SPECIAL.sub(lambda m: "\\" + m.group(0), _UNLINK.sub(ZWSP, _one_line(text, width)))
    return _LIST_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if m.group(2) in "-+" else m.group(2) + "\\"),
                           s, count=1)


def field_error(e: ConfigError) -> str:
    """"**field**: reason" of a ConfigError, both quoted (a link's field name and value are a visitor's text)."""
    return f"**{md(e.field, 80)}**: {md(str(e).split(': ', 1)[-1])}"


def code(text: object, width: int = 80) -> str:
    """`text` as an inline code span, fenced with more backticks than it holds (its content is shown as is)."""
    s = _one_line(text, width)
    fence = "`" * (max((len(t) for t in _TICKS.findall(s)), default=0) + 1)
    return f"{fence} {s} {fence}"


__all__ = ["md", "code", "field_error", "ZWSP"]
