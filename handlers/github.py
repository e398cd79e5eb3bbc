"""All GitHub event handlers, combined in one router."""

from bot.routing import Router
from handlers import github_issue_comment, github_preview, github_pull_request, github_push

router = Router(github_push.router, github_pull_request.router, github_issue_comment.router,
                github_preview.router)
