"""Culprit finding: when a release of several pull requests fails, find the one that broke it,
revert only that one, and ship the rest.

- `options`: the `culprit:` block of `.github/deploy.yml`.
- `search`: the bisection itself, pure: which commit to try next, when to stop and why.
- `trial`: how one candidate is judged (a port, a shadow replica on Docker, a fake in tests).
- `step`: the engine's `bisecting` state, between `rolled_back` and `reverting`.
- `plan`: what `reverting` reverts once the search is over, and who is told what.
"""
