"""Release notes: the pull requests between the previous live sha and the new one, as an email
(subject, text, HTML), JSON for the API and Slack Block Kit. Pure: no I/O."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field

from bot.escape import slack_text, slack_url

# Slack refuses a section whose text is longer than this.
SLACK_SECTION_LIMIT = 3000


@dataclass(frozen=True)
class PullSummary:
    number: int
    title: str
    author: str
    url: str

    def line(self) -> str:
        return f"#{self.number} {self.title} (@{self.author}) {self.url}"


@dataclass(frozen=True)
class ReleaseNotes:
    service: str
    environment: str
    previous_sha: str | None  # None for the first release
    sha: str
    pulls: tuple[PullSummary, ...] = field(default_factory=tuple)

    @classmethod
    def build(cls, service: str, environment: str, previous_sha: str | None, sha: str,
              pulls: list[tuple[int, str, str, str]]) -> ReleaseNotes:
        """From (number, title, author, url) tuples, oldest first as merged."""
        return cls(service, environment, previous_sha, sha, tuple(PullSummary(*p) for p in pulls))

    @property
    def range(self) -> str:
        return f"{self.previous_sha[:7]}..{self.sha[:7]}" if self.previous_sha else self.sha[:7]

    @property
    def subject(self) -> str:
        count = len(self.pulls)
        changes = f"{count} pull request{'s' if count != 1 else ''}"
        return f"[{self.service}] {self.environment} is live at {self.sha[:7]} ({changes})"

    @property
    def text(self) -> str:
        lines = [f"{self.service} {self.sha[:7]} is live in {self.environment}.", ""]
        lines.append(f"Changes {self.range}:" if self.pulls else f"No pull requests in {self.range}.")
        lines += [f"- {p.line()}" for p in self.pulls]
        return "\n".join(lines) + "\n"

    @property
    def html(self) -> str:
        e = html.escape
        items = "".join(
            f'<li><a href="{e(p.url, quote=True)}">#{p.number}</a> {e(p.title)} by @{e(p.author)}</li>'
            for p in self.pulls
        )
        body = f"<ul>{items}</ul>" if items else f"<p>No pull requests in {e(self.range)}.</p>"
        return (f"<p><strong>{e(self.service)}</strong> <code>{e(self.sha[:7])}</code> is live in "
                f"{e(self.environment)}.</p><p>Changes {e(self.range)}:</p>{body}")

    def as_json(self) -> dict:
        return {
            "service": self.service,
            "environment": self.environment,
            "previous_sha": self.previous_sha,
            "sha": self.sha,
            "subject": self.subject,
            "pulls": [asdict(p) for p in self.pulls],
        }

    def slack_blocks(self) -> list[dict]:
        head = f"*{slack_text(self.service, 100)}* `{self.sha[:7]}` is live in *{slack_text(self.environment, 100)}*"
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]
        lines = [f"• {_slack_link(p.url, f'#{p.number}')} {slack_text(p.title, 300)} (@{slack_text(p.author, 100)})"
                 for p in self.pulls]
        text = "\n".join(lines) or f"No pull requests in {self.range}."
        if len(text) > SLACK_SECTION_LIMIT:
            text = text[: SLACK_SECTION_LIMIT - 1] + "…"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        return blocks


def _slack_link(url: str, label: str) -> str:
    """`<url|label>`, or the bare label when the url could end the link early."""
    target = slack_url(url)
    return f"<{target}|{slack_text(label, 100)}>" if target else slack_text(label, 100)
