"""The demo's check that every pull request it opens gets its `mainline/preview` check run before
it is merged (issue 14): read back from the local GitHub, as a person would see it on the PR."""

from __future__ import annotations

import requests

CHECK = "mainline/preview"


def preview_appears(demo, repo: str, token: str, number: int, head_sha: str, timeout: float = 90) -> dict:
    """Wait for the preview check run on the PR's head; say its title as a check line."""

    def found():
        try:
            runs = requests.get(f"{demo.github.url}/repos/{repo}/commits/{head_sha}/check-runs",
                                params={"check_name": CHECK}, headers={"Authorization": f"token {token}"},
                                timeout=5).json().get("check_runs", [])
        except (requests.RequestException, ValueError):
            return None
        return next((r for r in runs if r["name"] == CHECK and r["status"] == "completed"), None)

    run = demo.wait(found, timeout, f"PR #{number} got no {CHECK} check run before its merge")
    demo.check("would ship" in (run["output"]["title"] or "") or "would wait" in (run["output"]["title"] or ""),
               f"before the merge, PR #{number} shows {CHECK}: “{run['output']['title']}”")
    return run
