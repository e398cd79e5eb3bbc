"""Which reporters the settings switch on. Each reporter is optional: with no GitHub token or
Slack token configured, deploys still run and the event log still tells the story."""

from __future__ import annotations

import logging

from bot.settings import Settings

log = logging.getLogger("mainline.reporting")


def reporters_for(settings: Settings) -> list:
    reporters: list = []
    return reporters
