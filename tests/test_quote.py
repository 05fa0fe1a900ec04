"""dashboard.quote: user text in a page's markdown shows as the text itself (no link, image, HTML, emphasis, icon,
LaTeX or code can start in it), and the sentences pages build from links and errors use it."""
from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from dashboard import links, quote
from ganae.config import ConfigError

PAYLOADS = ["[x](https://evil.example)", "![](https://evil.example/t.png)", "<script>alert(1)</script>",
            '<iframe srcdoc="<script>parent.alert(\'ifr\')</script>"></iframe>', "<img src=x onerror=alert(1)>",
            "`code` ``two``", "*b* _i_ ~~s~~", ":red[x] :material/home: $x^2$", "www.evil.example", "a@evil.example",
            "&lt;b&gt;", "# heading", "- item", "12. item", "a | b", "back\\slash[", "https://evil.example"]
# what may open markdown, and in what context (CommonMark, GFM, Streamlit directives, KaTeX)
OPENERS = [r"[`*~\[\]<>&#|$@]", r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"]
# what the renderer finds in text after the escapes are undone (mdast-util-gfm-autolink-literal, Streamlit's icons)
IN_TEXT = [r"(?i)https?://", r"(?i)www\.", r"[-.\w+]+@[-\w]+(\.[-\w]+)+", r":material/"]


def unescape(md: str) -> str:
    """What markdown shows for text with backslash escapes: a backslash before ASCII punctuation vanishes."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md)


def unescaped_openers(md: str) -> list[str]:
    """Markdown openers in `md` that no backslash escapes, and links or icons in the text it shows."""
    bare = re.sub(r"\\[!-/:-@\[-`{-~]", "\x00", md)          # each escaped character becomes inert
    return [m.group(0) for p in OPENERS for m in re.finditer(p, bare)] + \
        [m.group(0) for p in IN_TEXT for m in re.finditer(p, unescape(md))]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=40),
                 st.lists(st.sampled_from(PAYLOADS + ["x", " ", "_", "www", ":", "/"]), max_size=6).map("".join)))
def test_md_shows_the_text_and_opens_nothing(text):
    out = quote.md(text)
    one_line = re.sub(r"[\r\n\u2028\u2029]+", " ", text)
    assert unescape(out).replace(quote.ZWSP, "") == one_line.replace(quote.ZWSP, "")
    assert not unescaped_openers(out), (text, out)
    assert not re.match(r"\s*([-+]|\d+[.)])(\s|$)", out), out      # no list marker at the start


def test_md_leaves_field_names_and_plain_sentences_alone():
    for s in ("optim.g_lr", "data.image_size", "3 is out of range (allowed 0 to 10)", "cuda:0", "a, b; c's (d)",
              "is not one of: gan, ae"):
        assert quote.md(s) == s


def test_md_cuts_long_text_at_a_word_boundary():
    out = quote.md("word " * 200, width=30)
    assert len(out) <= 30 and out.endswith("word…")


def test_code_is_one_span_that_nothing_inside_closes():
    for text in ["plain", "a`b", "``x``", "x` [l](https://evil.example) `"]:
        out = quote.code(text)
        fence = re.match(r"`+", out).group(0)
        assert out == f"{fence} {text} {fence}"
        assert max(len(t) for t in re.findall(r"`+", text) or [""]) < len(fence)
    assert quote.code("a\nb") == "` a b `"


def test_a_link_problem_quotes_the_field_and_the_value():
    """Before: '**[x](https://evil.example)**: ...' was a live link in the warning of every page."""
    e = ConfigError("[x](https://evil.example)", "'![](https://evil.example/t.png)' is not one of: a, b")
    sentence = links.problem_sentence(e)
    assert not unescaped_openers(sentence.replace("**", "")), sentence
    assert unescape(sentence).replace(quote.ZWSP, "") == (
        "The link's settings could not be used — **[x](https://evil.example)**: '![](https://evil.example/t.png)' is "
        "not one of: a, b. The page starts from its defaults instead.")
