"""What must hold after a burst or a fault, read from the outside: the bot's API, the GitHub
stand-in's records, the Docker engine, the inbox table. Each check returns the findings (empty: it
held), so a benchmark prints them and a test asserts them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rig import ENDED, Rig, Service

from sandbox.github_api import BOT_LOGIN

JUDGED = {"rolling_back", "rolled_back", "bisecting", "reverting", "reverted"}


def duplicates(rig: Rig, svc: Service) -> list[str]:
    """A second bot deployment, check run of one name, comment or revert pull request for one sha."""
    gh = rig.github.repo(svc.repo)
    found = []
    per_sha = Counter((d.sha, d.environment) for d in gh.deployments.values() if d.creator == BOT_LOGIN)
    found += [f"{svc.name} {sha[:10]}: {n} deployments to {env}" for (sha, env), n in per_sha.items() if n > 1]
    runs = Counter((r.head_sha, r.name) for r in gh.check_runs.values())
    found += [f"{svc.name} {sha[:10]}: {n} check runs {name}" for (sha, name), n in runs.items() if n > 1]
    comments = Counter((c.issue_number, c.body) for c in gh.comments.values() if c.user == BOT_LOGIN)
    found += [f"{svc.name} #{num}: a comment posted {n} times" for (num, _), n in comments.items() if n > 1]
    reverts = Counter(p.title for p in gh.pulls.values() if p.title.startswith("Revert"))
    found += [f"{svc.name}: {n} revert pull requests {title!r}" for title, n in reverts.items() if n > 1]
    return found


def unaccounted(rig: Rig, svc: Service) -> list[str]:
    """Every merged sha ends live, superseded, reverted or failed with a reason, in one deploy;
    a sha without a deploy of its own must be inside the live release (coalesced)."""
    deploys = rig.deploys(svc)
    found = [f"{svc.name} {sha[:10]}: {n} deploys" for sha, n in Counter(d["sha"] for d in deploys).items() if n > 1]
    by_sha = {d["sha"]: d for d in deploys}
    order = [sha for sha, *_ in svc.merges]
    live = next((i for i in range(len(order) - 1, -1, -1) if by_sha.get(order[i], {}).get("state") == "live"), -1)
    for i, sha in enumerate(order):
        d = by_sha.get(sha)
        if d is None:
            if i > live:
                found.append(f"{svc.name} {sha[:10]}: merged, no deploy, not in the live release")
        elif d["state"] not in ENDED:
            found.append(f"{svc.name} {sha[:10]}: still {d['state']}")
        elif d["state"] == "failed" and not d.get("reason"):
            found.append(f"{svc.name} {sha[:10]}: failed without a reason")
        if d is not None and [e["kind"] for e in d.get("events", [])].count("live") > 1:
            found.append(f"{svc.name} {sha[:10]}: went live twice")
    return found


def judged(rig: Rig, svc: Service) -> list[str]:
    """Every release here is good: none may be rolled back or reverted."""
    found = []
    for d in rig.deploys(svc):
        kinds = {e["kind"] for e in d.get("events", [])} | {d["state"]}
        if kinds & JUDGED:
            found.append(f"{svc.name} {d['sha'][:10]}: {sorted(kinds & JUDGED)} ({d.get('reason')})")
    gh = rig.github.repo(svc.repo)
    found += [f"{svc.name}: revert pull request {p.title!r}" for p in gh.pulls.values() if p.title.startswith("Revert")]
    return found


def out_of_sync(rig: Rig, svc: Service) -> list[str]:
    """Master equals production: the live release is master's head, and HAProxy serves it."""
    head = rig.github.head(svc.repo, "master")
    status = next((s for s in rig.api(f"/api/services?service={svc.name}") if s["service"] == svc.name), None)
    live = (status or {}).get("live") or {}
    found = []
    if live.get("sha") != head or not (status or {}).get("in_sync"):
        found.append(f"{svc.name}: master {head[:10]}, production {str(live.get('sha'))[:10]}")
    version = svc.merges[-1][2] if svc.merges and len(svc.merges[-1]) > 2 else None
    if version is not None and rig.serves(svc) != f"{svc.name} {version}":
        found.append(f"{svc.name}: HAProxy serves {rig.serves(svc)!r}, not {version}")
    return found


def orphans(rig: Rig, svc: Service, docker_host: str | Sequence[str | None] | None) -> list[str]:
    """Containers of the service that are not the live release's running replicas, on the engine
    `docker_host` or, given several (an environment's `hosts:`), on every one of them together."""
    import docker

    head = rig.github.head(svc.repo, "master")
    found = []
    running = 0
    for engine in [docker_host] if docker_host is None or isinstance(docker_host, str) else docker_host:
        client = docker.DockerClient(base_url=engine) if engine else docker.from_env()
        try:
            mine = client.containers.list(all=True, filters={"label": f"mainline.service={svc.name}"})
        finally:
            client.close()
        where = f" on {engine}" if docker_host is not None and not isinstance(docker_host, str) else ""
        for c in mine:
            if c.labels.get("mainline.sha") != head or c.status != "running":
                found.append(f"{svc.name}: container {c.name}{where} "
                             f"({c.labels.get('mainline.sha', '?')[:10]}, {c.status})")
        running += sum(1 for c in mine if c.status == "running" and c.labels.get("mainline.sha") == head)
    if running != rig.replicas:
        found.append(f"{svc.name}: {running} replicas of the live release run, not {rig.replicas}")
    return found


def lost_webhooks(rig: Rig) -> list[str]:
    """Every delivery the stand-in made was accepted, and the inbox holds none unprocessed or dead."""
    found = [f"delivery {d.id} ({d.event}): {d.status_code or d.error}" for d in rig.github.deliveries
             if d.status_code is None or d.status_code >= 300]
    if rig.pg is not None:
        import psycopg

        with psycopg.connect(rig.pg.url, autocommit=True) as conn:
            rows = conn.execute("SELECT delivery_id, event, last_error FROM webhook_deliveries "
                                "WHERE processed_at IS NULL OR dead_at IS NOT NULL").fetchall()
        found += [f"inbox {row[0]} ({row[1]}): not processed: {row[2]}" for row in rows]
    return found
