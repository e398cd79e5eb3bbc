"""What commit messages say about pull requests: the numbers GitHub writes into merge and squash
commits. Read by the push handler (which PRs a push ships) and by the preview."""

from __future__ import annotations

import re

_MERGE_PR = re.compile(r"^Merge pull request #(\d{1,9})\b", re.M)
_SQUASH_PR = re.compile(r"\(#(\d{1,9})\)\s*$", re.M)


def pull_numbers_in(messages: list[str]) -> tuple[int, ...]:
    """PR numbers named by merge and squash commit messages, as GitHub writes them."""
    found: set[int] = set()
    for message in messages:
        found.update(int(n) for n in _MERGE_PR.findall(message))
        first = message.split("\n", 1)[0]
        found.update(int(n) for n in _SQUASH_PR.findall(first))
    return tuple(sorted(found))
