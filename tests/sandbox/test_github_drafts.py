"""Draft pull requests on the stand-in, as on GitHub: opened through REST with `draft`, shown as
drafts in the API and in the webhook, and refused by the merge button until a person is done."""

from __future__ import annotations


def test_a_draft_opened_through_rest_stays_a_draft_and_cannot_be_merged(api, sandbox, webapp, receiver):
    sandbox.create_branch(webapp, "revert-1", sandbox.head(webapp, "master"))
    sandbox.push_commit(webapp, "revert-1", {"VERSION": "0\n"}, "Revert the version")

    created = api.post(f"/repos/{webapp}/pulls", json={"title": 'Revert "Bump"', "head": "revert-1",
                                                       "base": "master", "draft": True})
    number = created.json()["number"]
    merge = api.put(f"/repos/{webapp}/pulls/{number}/merge", json={})

    assert created.status_code == 201 and created.json()["draft"] is True
    assert api.get(f"/repos/{webapp}/pulls/{number}").json()["draft"] is True
    assert [p["draft"] for p in api.get(f"/repos/{webapp}/pulls").json()] == [True]
    assert (merge.status_code, merge.json()["message"]) == (405, "Pull Request is still a draft")
    assert sandbox.head(webapp, "master") != sandbox.head(webapp, "revert-1")
    sandbox.flush_webhooks()
    [opened] = [r["json"] for r in receiver.events("pull_request") if r["json"]["action"] == "opened"]
    assert opened["pull_request"]["draft"] is True


def test_a_pull_request_is_not_a_draft_unless_asked(api, sandbox, webapp):
    sandbox.create_branch(webapp, "feature", sandbox.head(webapp, "master"))
    sandbox.push_commit(webapp, "feature", {"VERSION": "2\n"}, "Bump")
    created = api.post(f"/repos/{webapp}/pulls", json={"title": "Bump", "head": "feature", "base": "master"})
    assert created.json()["draft"] is False
    assert api.put(f"/repos/{webapp}/pulls/{created.json()['number']}/merge", json={}).json()["merged"] is True
