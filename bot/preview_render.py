"""A preview (bot/preview.py) as GitHub markdown (the `mainline/preview` check run) and as plain
text (`mainline deploy --dry-run`, Slack). Everything a repository controls (titles, subjects,
paths, reasons, the config diff) is escaped for GitHub; the text form is escaped by its caller
for where it goes (Slack: bot.escape.slack_text)."""

from __future__ import annotations

from bot.escape import clip, github_code, github_code_span, github_inline
from bot.preview_images import human_bytes

MARK = {"pass": "✅", "wait": "⏳", "block": "⛔"}


def _short(sha: str | None) -> str:
    return sha[:7] if sha else "nothing"


def headline(p: dict) -> str:
    """One plain line: what would happen now."""
    what = f"#{p['pull']['number']}" if p.get("pull") else f"{p['service']} {_short(p['sha'])}"
    verb = "Merging" if p.get("pull") else "Deploying"
    holds = p.get("holds")
    if holds:
        would = "would be blocked" if holds["status"] == "block" else "would wait"
        return f"{verb} {what} now {would} in {p['environment']}: {holds['gate']}: {clip(holds['reason'], 200)}"
    return (f"{verb} {what} now would ship {p['commits_total']} commit(s) to {p['environment']} "
            f"(live: {_short((p.get('live') or {}).get('sha'))})")


# -- markdown ------------------------------------------------------------------------------------


def render_preview_markdown(p: dict) -> str:
    """The check run's summary for one environment."""
    live = (p.get("live") or {}).get("sha")
    where = (f"**{github_inline(p['service'])}** in **{github_inline(p['environment'])}**: live "
             f"{github_code_span(_short(live))} → {github_code_span(_short(p['sha']))}")
    out = [f"### {github_inline(headline(p), 400)}", where]
    out += [f"> {github_inline(note, 500)}" for note in p.get("notes") or []]
    out += _md_commits(p) + _md_migrations(p) + _md_gates(p) + _md_config(p) + _md_image(p)
    out.append("_A preview: nothing was queued, recorded or asked for._")
    return "\n\n".join(out)


def _md_commits(p: dict) -> list[str]:
    if not p["commits"]:
        return ["#### Commits\n\nNone: nothing new since what is live."]
    lines = [f"- {github_code_span(_short(c['sha']))} {github_inline(c['subject'], 200)}" for c in p["commits"]]
    if p["commits_total"] > len(p["commits"]):
        lines.append(f"- … and {p['commits_total'] - len(p['commits'])} more")
    out = [f"#### Commits ({p['commits_total']} since {_short((p.get('live') or {}).get('sha'))})", "\n".join(lines)]
    if p.get("behind"):
        out.append(f"⚠️ It lacks {p['behind']} commit(s) that are live now: they would go back out.")
    if p.get("pulls"):
        out.append("#### Pull requests\n\n" + "\n".join(
            f"- #{n['number']} {github_inline(n['title'] or '(title unknown)', 200)}"
            + (f" by {github_inline('@' + n['author'], 60)}" if n.get("author") else "") for n in p["pulls"]))
    return out


def _md_migrations(p: dict) -> list[str]:
    if not p["migrations"]:
        return ["#### Migrations\n\nNone."]
    lines = []
    for m in p["migrations"]:
        reasons = _reasons(m) or m["kind"]
        lines.append(f"- {github_code_span(m['path'])}: **{m['kind']}**: {github_inline(reasons, 400)}")
        lines += [f"  - rule {github_code_span(r['rule'])}: {github_inline(r['safe'], 400)}" for r in _rules(m)]
    return ["#### Migrations", "\n".join(lines)]


def _rules(m: dict) -> list[dict]:
    """Each rule a contract migration breaks, once, with the safe way (#15)."""
    seen: dict[str, dict] = {}
    for r in m.get("rules") or []:
        seen.setdefault(r["rule"], r)
    return list(seen.values())


def _reasons(m: dict) -> str:
    """The reasons without the kind each repeats (`contract: drops column …`)."""
    return "; ".join(r.split(": ", 1)[1] if r.startswith(("expand: ", "contract: ")) else r for r in m["reasons"])


def _md_gates(p: dict) -> list[str]:
    lines = [f"- {MARK.get(g['status'], '•')} **{github_inline(g['gate'])}**: {github_inline(g['reason'], 400)}"
             for g in p["gates"]]
    window = p.get("window")
    if window and not window["open"] and window.get("opens_at"):
        lines.append(f"- the deploy window next opens at {github_code_span(window['opens_at'])}")
    return ["#### Gates, as they would decide now", "\n".join(lines)]


def _md_config(p: dict) -> list[str]:
    c = p["config"]
    out = ["#### Config (`.github/deploy.yml`)"]
    if not c["valid"]:
        out.append(f"⛔ Invalid: {github_inline(c['problem'], 500)}")
    if not c["changed"]:
        out.append("No change from the production branch.")
        return out
    out.append(github_inline(c["counts"], 300))
    out.append(github_code(c["diff"], 6000).replace("```\n", "```diff\n", 1))
    return out


def _md_image(p: dict) -> list[str]:
    image = p.get("image")
    if not image:
        return []
    sizes = f"{human_bytes(image['live_bytes'])} live → {human_bytes(image['new_bytes'])} ({_delta(image)})"
    return ["#### Image", sizes]


def _delta(image: dict) -> str:
    return f"{'+' if image['delta_bytes'] >= 0 else ''}{human_bytes(image['delta_bytes'])}"


# -- text ------------------------------------------------------------------------------------------


def render_preview_text(p: dict) -> str:
    """The same, as plain lines for a terminal or a chat message."""
    live = (p.get("live") or {}).get("sha")
    where = f"{p['service']} in {p['environment']}: live {_short(live)} -> {_short(p['sha'])}"
    out = [headline(p), f"{where} (dry run: nothing was queued or recorded)"]
    out += [f"note: {clip(n, 500)}" for n in p.get("notes") or []]
    out.append(f"commits ({p['commits_total']}):" if p["commits"] else "commits: none since what is live")
    out += [f"  {_short(c['sha'])} {clip(c['subject'], 200)}" for c in p["commits"]]
    if p["commits_total"] > len(p["commits"]):
        out.append(f"  ... and {p['commits_total'] - len(p['commits'])} more")
    if p.get("behind"):
        out.append(f"  (lacks {p['behind']} live commit(s): they would go back out)")
    out += [f"  PR #{n['number']} {clip(n['title'], 200)}" + (f" by {n['author']}" if n.get("author") else "")
            for n in p.get("pulls") or []]
    out.append("migrations:" if p["migrations"] else "migrations: none")
    for m in p["migrations"]:
        out.append(f"  {m['path']}: {m['kind']}: {clip(_reasons(m), 400)}")
        out += [f"    rule {r['rule']}: {clip(r['safe'], 400)}" for r in _rules(m)]
    out.append("gates:")
    out += [f"  {g['status']:<5} {g['gate']}: {clip(g['reason'], 400)}" for g in p["gates"]]
    window = p.get("window")
    if window and not window["open"] and window.get("opens_at"):
        out.append(f"  the deploy window next opens at {window['opens_at']}")
    c = p["config"]
    if not c["valid"]:
        out.append(f"config: INVALID: {clip(c['problem'], 500)}")
    out.append(f"config: {c['counts']}" if c["changed"] else "config: no change from the production branch")
    if c["changed"]:
        out += ["  " + line for line in clip(c["diff"], 4000).splitlines()]
    if p.get("app"):
        out.append(f"app: {clip(p['app'], 1500)}")
    image = p.get("image")
    if image:
        out.append(f"image: {human_bytes(image['live_bytes'])} -> {human_bytes(image['new_bytes'])} ({_delta(image)})")
    return "\n".join(out)
