"""Release-note emails through Amazon SES."""

from __future__ import annotations

import boto3

from bot.infra.aws.client import aws_client, call
from bot.infra.aws.errors import AwsError, SesError
from bot.notify.release_notes import ReleaseNotes


class SesRejectedError(SesError):
    """SES rejected the message: an unverified sender, a suppressed or malformed address."""


REJECTED_CODES = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException",
                            "ConfigurationSetDoesNotExist", "AccountSendingPausedException"})


class SesMailer:
    def __init__(self, session: boto3.Session | None, sender: str, region: str | None = None):
        # SES is not in every region: boto3's own default (AWS_DEFAULT_REGION), else us-east-1.
        session = session or boto3.Session()
        self.ses = aws_client(session, "ses", region or session.region_name or "us-east-1")
        self.sender = sender

    def send(self, notes: ReleaseNotes, to: list[str]) -> str | None:
        """Send the release notes to `to`; the SES message id, None when there is nobody to tell."""
        if not to:
            return None
        message = {
            "Subject": {"Data": notes.subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": notes.text, "Charset": "UTF-8"},
                     "Html": {"Data": notes.html, "Charset": "UTF-8"}},
        }
        try:
            resp = call(self.ses, "send_email", Source=self.sender, Destination={"ToAddresses": list(to)},
                        Message=message)
        except AwsError as exc:
            kind = SesRejectedError if exc.code in REJECTED_CODES else SesError
            raise kind(f"SES did not send the release notes for {notes.service} {notes.sha[:7]}: {exc}",
                       exc.code, exc.operation) from exc
        return resp["MessageId"]
