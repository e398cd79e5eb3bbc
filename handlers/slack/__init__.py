"""Slack's slash commands and the deploy card's buttons."""
