"""A Reporter that keeps every notice: what GitHub checks, Slack and email would have been told."""

from __future__ import annotations

from bot.ports import DeployNotice


class FakeChat:
    def __init__(self) -> None:
        self.notices: list[DeployNotice] = []

    def notify(self, notice: DeployNotice) -> None:
        self.notices.append(notice)

    def states(self, deploy_id: int) -> list[str]:
        """The states told for one deploy, in order, repeats folded."""
        out: list[str] = []
        for n in self.notices:
            if n.deploy_id == deploy_id and n.kind == "transition" and (not out or out[-1] != n.state):
                out.append(n.state)
        return out
