"""Red team (H13) for issue 14: the stack and deploy pages and their buttons, the preview, DORA.

Each test is an attack through the public surface (signed webhooks from the GitHub stand-in, the
Flask test client with a signed-in session). Four were weaknesses when found (a 500 from an absurd
PR number, on the pages and in the preview; unbounded migration reads; framing) and are fixed;
the rest held, and are kept so they stay held."""

from __future__ import annotations

from bot.auth import SESSION_COOKIE, WebSessions
from bot.pages import csrf_token
from tests.conftest import authed
from tests.handlers.test_github_preview import preview_runs, process_inbox, with_v1_live

HOSTILE = '<img src=x onerror="alert(document.cookie)"><script>alert(1)</script>'
# GitHub's merge-commit line, with a number no pull request has: 20 digits overflow SQLite's INTEGER.
ABSURD_PULL = "Merge pull request #99999999999999999999 from evil/x"


def signed_in(w, login: str) -> str:
    session_id = WebSessions(w.wired.store).open(login)
    w.client.set_cookie(SESSION_COOKIE, session_id)
    return session_id


def production_deploys(w) -> list[str]:
    return sorted(w.deploys())


# -- pages: a page a reader opens must never be a 5xx ---------------------------------------------


def test_attack_a_commit_naming_an_absurd_pull_number_breaks_the_stack_and_deploy_pages(world, caplog):
    caplog.errors_expected = True  # the 500 logs its traceback (and the PR comment on #999… fails)
    with_v1_live(world)
    world.wired.pipeline.lock(world.service, "production", "github:octocat", "hold the release")
    # A line in a commit's body, merged with a reviewed PR (nobody reads every commit body).
    sha = world.sandbox.push_commit(world.repo, "master", {"NOTES.md": "x\n"}, f"Tidy notes\n\n{ABSURD_PULL}")
    world.relay()
    process_inbox(world)
    deploy = world.deploys()[sha]
    assert deploy["state"] == "queued"  # recorded with the absurd number in its pull_numbers
    signed_in(world, "eve")  # any reader
    stack = world.client.get(f"/services/{world.service}", headers={"Accept": "text/html"})
    page = world.client.get(f"/deploys/{deploy['id']}", headers={"Accept": "text/html"})
    assert stack.status_code == 200, stack.get_data(as_text=True)[:200]
    assert page.status_code == 200, page.get_data(as_text=True)[:200]


# -- the preview -----------------------------------------------------------------------------------


def test_attack_a_pull_request_naming_an_absurd_pull_number_still_gets_its_preview(world, caplog):
    with_v1_live(world)
    world.sandbox.create_branch(world.repo, "hubot/x", world.head())
    head = world.sandbox.push_commit(world.repo, "hubot/x", {"X.md": "x\n"}, f"Add x\n\n{ABSURD_PULL}",
                                     author_login="hubot")
    world.sandbox.open_pull(world.repo, "hubot/x", "master", "Add x", user="hubot")
    world.relay()
    process_inbox(world)
    failed = [r.getMessage() for r in caplog.records if "failed, will retry" in r.getMessage()]
    assert failed == []
    [run] = preview_runs(world, head)
    assert run.conclusion == "neutral"


MIGRATION = "class M < ActiveRecord::Migration[7.1]\n  def change\n    add_column :users, :c, :string\n  end\nend\n"


def test_attack_a_pull_request_with_hundreds_of_migrations_gets_a_bounded_preview(world):
    with_v1_live(world)
    git = world.wired.pipeline.w.git
    reads: list[str] = []
    read_file = git.read_file

    def counted(clone_url, sha, path, max_bytes=None):  # observes, changes nothing
        reads.append(path)
        return read_file(clone_url, sha, path, max_bytes=max_bytes)

    git.read_file = counted
    files = {f"db/migrate/2026{i:010d}_add_c{i}.rb": MIGRATION for i in range(400)}
    world.open_pr("hubot/many", files, "Many migrations", author="hubot")
    world.relay()
    process_inbox(world)
    [run] = preview_runs(world, world.head("hubot/many"))
    assert "add\\_c0" in run.output["summary"] or "add_c0" in run.output["summary"]
    # 400 migrations are read one `git show` each today (2.6 s here; 20 000 files take minutes).
    assert len([p for p in reads if p.startswith("db/migrate/")]) <= 100


def test_attack_hostile_titles_and_configs_in_a_preview_record_nothing_and_call_no_other_host(world):
    from tests.handlers.test_github_preview import counts

    with_v1_live(world)
    before = counts(world.wired.store)
    locks = world.wired.store.lock_for(world.service, "production")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    title = f"@acme/everyone {HOSTILE} <!-- mainline:deploy --> ```"
    world.open_pr("hubot/bomb", {".github/deploy.yml": bomb}, title, author="hubot")
    world.relay(events=("pull_request",))  # the branch push's own mainline/config check is not the preview's
    process_inbox(world)
    [run] = preview_runs(world, world.head("hubot/bomb"))
    summary = run.output["summary"]
    assert "<script>" not in summary and "<!-- mainline" not in summary and "@acme/everyone" not in summary
    assert "Invalid" in summary  # the bomb is refused, named, and nothing hangs
    assert counts(world.wired.store) == before
    assert world.wired.store.lock_for(world.service, "production") == locks
    names = {r.name for r in world.sandbox.repo(world.repo).check_runs.values()
             if r.head_sha == world.head("hubot/bomb")}
    assert names == {"mainline/preview"}


# -- pages: hostile text, CSRF, authorisation ------------------------------------------------------


def test_attack_hostile_repository_text_shows_as_typed_on_the_pages(world):
    with_v1_live(world)
    session_id = signed_in(world, "octocat")
    base = f"/services/{world.service}/production"
    locked = world.client.post(f"{base}/lock", data={"csrf": csrf_token(session_id), "reason": HOSTILE})
    assert locked.status_code == 303
    sha = world.sandbox.push_commit(world.repo, "master", {"N.md": "n\n"}, HOSTILE)
    world.relay()
    process_inbox(world)
    stack = world.client.get(f"/services/{world.service}").get_data(as_text=True)
    page = world.client.get(f"/deploys/{world.deploys()[sha]['id']}").get_data(as_text=True)
    for html in (stack, page):
        assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;img src=x" in stack  # shown as typed: in the lock and in the undeployed commit


def test_attack_csrf_get_logout_and_stale_tokens_are_refused(world):
    with_v1_live(world)
    world.wired.pipeline.lock(world.service, "production", "github:octocat", "incident")
    unlock = f"/services/{world.service}/production/unlock"
    session_id = signed_in(world, "octocat")
    assert world.client.get(unlock, query_string={"csrf": csrf_token(session_id)}).status_code == 405
    world.client.get("/logout")
    world.client.set_cookie(SESSION_COOKIE, session_id)  # the old cookie, replayed with its token
    answer = world.client.post(unlock, data={"csrf": csrf_token(session_id)}, headers={"Accept": "text/html"})
    assert answer.status_code in (302, 401)
    assert world.wired.store.lock_for(world.service, "production") is not None


def test_attack_a_deployer_cannot_ship_an_unmerged_sha_to_production_through_the_ref_field(world):
    with_v1_live(world)
    world.sandbox.create_branch(world.repo, "hubot/evil", world.head())
    evil = world.sandbox.push_commit(world.repo, "hubot/evil", {"EVIL.md": "x\n"}, "Unreviewed", author_login="hubot")
    world.relay()
    process_inbox(world)
    session_id = signed_in(world, "octocat")
    deploy = f"/services/{world.service}/production/deploy"
    for ref in (evil, evil[:12], "hubot/evil", "refs/heads/hubot/evil", "--upload-pack=touch /tmp/x"):
        answer = world.client.post(deploy, data={"csrf": csrf_token(session_id), "ref": ref})
        text = answer.get_data(as_text=True)
        assert answer.status_code in (303, 403), (ref, answer.status_code)
        assert answer.status_code == 403 or "mainline_flash" in answer.headers.get("Set-Cookie", ""), ref
        assert "Deploy #" not in text
    assert evil not in production_deploys(world)


def test_attack_a_staging_deployer_and_a_reader_cannot_act_on_production(world):
    with_v1_live(world)
    for login in ("hubot", "eve"):  # hubot deploys staging only; eve reads
        session_id = signed_in(world, login)
        for action in ("deploy", "rollback", "lock"):
            answer = world.client.post(f"/services/{world.service}/production/{action}",
                                       data={"csrf": csrf_token(session_id), "reason": "mine now"})
            assert answer.status_code == 403, (login, action)
            assert f"github:{login} is not among the deployers" in answer.get_data(as_text=True)
    assert world.wired.store.lock_for(world.service, "production") is None


def test_attack_the_pages_send_no_redirect_off_the_site(world):
    with_v1_live(world)
    session_id = signed_in(world, "octocat")
    for path in (f"/services/{world.service}/production/lock", "/services/%2F%2Fevil.example/production/lock",
                 "/deploys/1/approve"):
        answer = world.client.post(path, data={"csrf": csrf_token(session_id), "reason": "x"})
        location = answer.headers.get("Location", "/")
        assert location.startswith("/") and not location.startswith("//"), (path, location)


def test_attack_the_pages_with_buttons_cannot_be_framed_by_another_site(world):
    with_v1_live(world)
    signed_in(world, "octocat")
    page = world.client.get(f"/services/{world.service}")
    assert ">Roll back</button>" in page.get_data(as_text=True)
    csp = page.headers.get("Content-Security-Policy", "")
    assert page.headers.get("X-Frame-Options", "").upper() in ("DENY", "SAMEORIGIN") or "frame-ancestors" in csp


# -- GET /api/dora ---------------------------------------------------------------------------------


def test_attack_hostile_dora_parameters_are_answered_4xx(client, wired):
    reader = authed(client, wired)
    for query in ({"service": "web", "days": "9" * 5000}, {"service": "web", "days": "-1"},
                  {"service": "web", "days": "1e3"}, {"service": "\x00"}, {"service": "a" * 100_000},
                  {"environment": "production"}, {"service": "web", "environment": "\x00' OR 1=1 --"}):
        answer = reader.get("/api/dora", query_string=query)
        assert 400 <= answer.status_code < 500, (str(query)[:60], answer.status_code)
        assert "error" in answer.get_json()
