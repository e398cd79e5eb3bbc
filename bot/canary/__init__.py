"""Canary analysis: judge a new version on a share of traffic against the old one."""
