"""Secret references resolved on the bot's side: files under MAINLINE_SECRETS_DIR (nothing
outside it, whatever the name or a symlink says), AWS Secrets Manager and SSM (moto), errors that
name the reference and never the value, and the mask applied to what the bot keeps."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from bot.errors import SecretError
from bot.infra.secrets import Masker, SecretResolver

VALUE = "s3cr3t-value-for-tests-9f8e7d"


@pytest.fixture
def secrets_dir(tmp_path):
    root = tmp_path / "secrets"
    (root / "team").mkdir(parents=True)
    (root / "team" / "dsn").write_text(VALUE + "\n")
    (tmp_path / "outside").write_text("not-for-you-1234")
    (root / "escape").symlink_to(tmp_path / "outside")
    return root


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name="prod/web/db", SecretString=VALUE)
        boto3.client("ssm").put_parameter(Name="/prod/web/key", Value=VALUE + "-ssm", Type="SecureString")
        yield


def test_a_file_under_the_secrets_dir_is_read_without_its_newline(secrets_dir):
    assert SecretResolver(secrets_dir).resolve([("DSN", "file:team/dsn")]) == {"DSN": VALUE}


@pytest.mark.parametrize("ref", ["file:../outside", "file:/etc/passwd", "file:team/../../outside", "file:escape",
                                 "file:missing"])
def test_nothing_outside_the_secrets_dir_is_read_and_the_error_names_only_the_reference(secrets_dir, ref):
    with pytest.raises(SecretError) as caught:
        SecretResolver(secrets_dir).resolve([("X", ref)])
    assert ref in str(caught.value) and "not-for-you" not in str(caught.value)


def test_a_file_reference_without_a_secrets_dir_is_refused():
    with pytest.raises(SecretError, match="MAINLINE_SECRETS_DIR"):
        SecretResolver(None).resolve([("X", "file:dsn")])


def test_secrets_manager_and_ssm_are_resolved(aws):
    got = SecretResolver(None).resolve([("DB", "aws-secretsmanager:prod/web/db"), ("KEY", "aws-ssm:/prod/web/key")])
    assert got == {"DB": VALUE, "KEY": VALUE + "-ssm"}


def test_a_missing_aws_secret_fails_naming_the_reference(aws):
    with pytest.raises(SecretError, match="aws-ssm:/prod/web/nope") as caught:
        SecretResolver(None).resolve([("DB", "aws-secretsmanager:prod/web/db"), ("KEY", "aws-ssm:/prod/web/nope")])
    assert VALUE not in str(caught.value)


def test_a_value_too_short_to_mask_is_refused(tmp_path):
    (tmp_path / "pin").write_text("123")
    with pytest.raises(SecretError, match="too short"):
        SecretResolver(tmp_path).resolve([("PIN", "file:pin")])


def test_the_mask_hides_every_value_in_text_and_event_data():
    mask = Masker([VALUE, "other-secret"])
    assert mask(f"db at {VALUE}; also other-secret") == "db at ***; also ***"
    assert mask.data({"output": f"x {VALUE}", "n": 3}) == {"output": "x ***", "n": 3}
