"""All GitHub event handlers, combined in one router."""

from bot.routing import Router
from handlers.github import issue_comment, preview, pull_request, push

router = Router(push.router, pull_request.router, issue_comment.router, preview.router)
