"""Text a repository controls (check and probe output, PR titles, commit messages, lock and gate
reasons) made inert before it is shown on Slack or GitHub.

Each function takes untrusted text and returns text that renders as what it says: no mention
that pings a channel or a team, no link that shows one address and opens another, no hidden
marker the bot would take for its own, no code fence that swallows what follows. Long text is
cut, with an ellipsis, so one noisy probe cannot fill a message.
"""

from __future__ import annotations

import re

# Joins `@` to the name without showing anything, so GitHub links and notifies nobody.
ZWJ = "\u200d"
# Splits `<!--` so neither GitHub nor our marker search sees a comment opener.
ZWSP = "\u200b"
# A backtick that looks like one and closes no code span (MODIFIER LETTER GRAVE ACCENT).
INERT_BACKTICK = "\u02cb"
ELLIPSIS = "…"
DEFAULT_LIMIT = 2000

_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_COMMENT_OPEN = re.compile(r"<!--")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Markdown punctuation that starts links, images, emphasis, headings, HTML or code in prose.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>!#|~])")


def clip(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """`text` as a string of at most `limit` characters, control characters dropped."""
    s = _CONTROL.sub("", str(text if text is not None else ""))
    return s if len(s) <= limit else s[: max(limit - 1, 0)] + ELLIPSIS


# -- Slack mrkdwn ---------------------------------------------------------------------------


def slack_text(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """For mrkdwn: `&`, `<` and `>` escaped as Slack documents, so `<!channel>`, `<@U…>` and
    `<https://evil|https://sso.acme.com>` show as typed and do nothing; backticks made inert so
    the text cannot close a code span or block it is put in."""
    s = clip(text, limit)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("`", INERT_BACKTICK)


def slack_code(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """`text` as a ``` block in mrkdwn (escaped as slack_text, so it cannot end the block)."""
    return f"```{slack_text(text, limit)}```"


def slack_url(url: object) -> str:
    """A link target for `<url|label>`: only http(s), and nothing that ends the link early."""
    s = clip(url, 500)
    if not re.match(r"^https?://", s) or re.search(r"[\s<>|]", s):
        return ""
    return s.replace("&", "&amp;")


# -- GitHub markdown ------------------------------------------------------------------------


def _defuse(s: str) -> str:
    """What must never pass in any GitHub context: mentions and comment openers."""
    s = _MENTION.sub("@" + ZWJ, s)
    return _COMMENT_OPEN.sub("<!" + ZWSP + "--", s)


def github_markdown(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """For prose in a comment, check-run summary or PR body: markdown and HTML punctuation
    backslash-escaped (shown as typed, so no disguised links, images, fences or HTML),
    @mentions that notify nobody, and no `<!--` that could hide text or forge a marker.
    Line breaks stay, so multi-line output remains readable."""
    s = clip(text, limit)
    lines = []
    for line in s.splitlines():
        line = _MARKDOWN_PUNCTUATION.sub(r"\\\1", _defuse(line))
        # A line starting with `-`, `+`, `=` or a number and a dot reads as a list or a heading
        # underline; that is harmless, but four leading spaces would start a code block.
        lines.append(line.lstrip(" \t") if line.startswith(("    ", "\t")) else line)
    return "\n".join(lines)


def github_inline(text: object, limit: int = 256) -> str:
    """github_markdown on one line: for a title or a reason inside a sentence or a list item."""
    return github_markdown(" ".join(clip(text, limit * 2).split()), limit)


def github_code(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """`text` verbatim in a fenced block whose fence is longer than any run of backticks in it
    (CommonMark's rule), so nothing inside can close it; mentions and `<!--` are defused as
    well, as a marker search reads the raw body."""
    s = _defuse(clip(text, limit))
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{s}\n{fence}"


def github_code_span(text: object, limit: int = 300) -> str:
    """`text` as an inline code span on one line."""
    s = _defuse(" ".join(clip(text, limit).split())).replace("`", INERT_BACKTICK)
    return f"`{s}`" if s else ""
