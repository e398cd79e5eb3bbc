"""Settings from the environment, validated once at start-up and passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(SystemExit):
    """Raised at start-up when a setting is missing or invalid; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    database_url: str = Field("sqlite:///mainline.db", validation_alias="MAINLINE_DATABASE_URL")
    queue_url: str = Field("sqlite:///mainline-queue.db", validation_alias="MAINLINE_QUEUE_URL")
    state_dir: Path = Field(Path("./.mainline"), validation_alias="MAINLINE_STATE_DIR")
    registry: str = Field("127.0.0.1:5000", validation_alias="MAINLINE_REGISTRY")
    # The registry's login (GHCR, Docker Hub: a user and a token); without it ECR's token for an
    # ECR host, else Docker's own config (`docker login`). auto | basic | ecr | docker | none.
    registry_username: str | None = Field(None, validation_alias="MAINLINE_REGISTRY_USERNAME")
    registry_password: SecretStr | None = Field(None, validation_alias="MAINLINE_REGISTRY_PASSWORD")
    registry_auth: str = Field("auto", pattern="^(auto|basic|ecr|docker|none)$",
                               validation_alias="MAINLINE_REGISTRY_AUTH")
    # Plain HTTP allowed (as dockerd's insecure-registries); a loopback registry always may.
    registry_insecure: bool = Field(False, validation_alias="MAINLINE_REGISTRY_INSECURE")
    # Each process migrates the schema as it starts (false: `mainline db upgrade` does, before).
    migrate_on_start: bool = Field(True, validation_alias="MAINLINE_MIGRATE_ON_START")
    lease_seconds: float = Field(30.0, gt=0, validation_alias="MAINLINE_LEASE_SECONDS")
    reconcile_seconds: float = Field(15.0, gt=0, validation_alias="MAINLINE_RECONCILE_SECONDS")
    worker_threads: int = Field(2, ge=1, le=64, validation_alias="MAINLINE_WORKER_THREADS")
    public_url: str = Field("http://127.0.0.1:8000", validation_alias="MAINLINE_PUBLIC_URL")
    max_body_bytes: int = Field(25 * 1024 * 1024, gt=0, validation_alias="MAINLINE_MAX_BODY_BYTES")

    github_webhook_secret: SecretStr | None = Field(None, validation_alias="GITHUB_WEBHOOK_SECRET")
    github_api_url: str = Field("https://api.github.com", validation_alias="GITHUB_API_URL")
    github_token: SecretStr | None = Field(None, validation_alias="GITHUB_TOKEN")
    github_app_id: int | None = Field(None, validation_alias="GITHUB_APP_ID")
    github_app_private_key: SecretStr | None = Field(None, validation_alias="GITHUB_APP_PRIVATE_KEY")
    github_app_installation_id: int | None = Field(None, validation_alias="GITHUB_APP_INSTALLATION_ID")
    # The App's key as a file (what `mainline setup github` writes, mode 0600); read once at start.
    # Exclusive with GITHUB_APP_PRIVATE_KEY: both set is refused, not silently resolved.
    github_app_private_key_path: Path | None = Field(None, validation_alias="GITHUB_APP_PRIVATE_KEY_PATH")
    # Content-creating writes are spaced out, as GitHub's secondary rate limits ask.
    github_write_interval: float = Field(1.0, ge=0, validation_alias="MAINLINE_GITHUB_WRITE_INTERVAL")

    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL"))
    slack_channel: str = Field("#deploys", validation_alias="MAINLINE_SLACK_CHANNEL")
    # GitHub login -> Slack user id, to mention PR authors: "octocat=U2CERLKJA,hubot=U0HUBOT"
    slack_users: str = Field("", validation_alias="MAINLINE_SLACK_USERS")

    # Who may freeze, unfreeze and replay dead letters: "github:octocat,slack:U2CERLKJA".
    admins: str = Field("", validation_alias="MAINLINE_ADMINS")
    # true: the dashboard and the read API are open to anyone who reaches the port.
    public_read: bool = Field(False, validation_alias="MAINLINE_PUBLIC_READ")
    log_format: str = Field("text", pattern="^(text|json)$", validation_alias="MAINLINE_LOG_FORMAT")
    # The demo's read-only API token (the demo makes one when this is unset).
    demo_api_token: SecretStr | None = Field(None, validation_alias="MAINLINE_DEMO_API_TOKEN")
    secrets_dir: Path | None = Field(None, validation_alias="MAINLINE_SECRETS_DIR")
    # GitHub's OAuth web flow for signing in to the dashboard (a GitHub App's or an OAuth app's).
    github_oauth_client_id: str | None = Field(None, validation_alias="GITHUB_OAUTH_CLIENT_ID")
    github_oauth_client_secret: SecretStr | None = Field(None, validation_alias="GITHUB_OAUTH_CLIENT_SECRET")
    # Where git and the OAuth pages live; derived from GITHUB_API_URL when unset
    # (https://api.github.com -> https://github.com, https://ghe/api/v3 -> https://ghe).
    github_web_url: str | None = Field(None, validation_alias="GITHUB_WEB_URL")
    # The invariant watchdog: how long the head may go unaccounted for before it is said loudly.
    sync_bound_seconds: float = Field(300.0, gt=0, validation_alias="MAINLINE_SYNC_BOUND_SECONDS")
    # A webhook delivery whose handling keeps raising is dead-lettered after this many attempts.
    delivery_attempts: int = Field(5, ge=1, le=100, validation_alias="MAINLINE_DELIVERY_ATTEMPTS")

    # The SES sender of release-note emails (an identity verified in SES); no mail without it.
    email_sender: str | None = Field(None, validation_alias="MAINLINE_EMAIL_SENDER")
    # The Prometheus servers a repository's canary may query (comma-separated): the repo names
    # one, the operator allows it, so a config cannot point Mainline at any address it likes.
    prometheus_urls: str = Field("http://127.0.0.1:9090", validation_alias="MAINLINE_PROMETHEUS_URLS")
    # The Docker hosts a repository's `hosts:` may name (comma-separated unix://, tcp://, ssh://
    # endpoints), and how ssh:// ones are reached: the key and the known hosts, checked strictly.
    docker_hosts: str = Field("", validation_alias="MAINLINE_DOCKER_HOSTS")
    ssh_key: Path | None = Field(None, validation_alias="MAINLINE_SSH_KEY")
    ssh_known_hosts: Path | None = Field(None, validation_alias="MAINLINE_SSH_KNOWN_HOSTS")
    # The load balancer's image where it runs on a Docker host (`load_balancer: {host}`): HAProxy,
    # sh and socat, a writable /mainline (deploy/haproxy/Dockerfile).
    haproxy_image: str | None = Field(None, validation_alias="MAINLINE_HAPROXY_IMAGE")

    @field_validator("database_url", "queue_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"must be a URL such as sqlite:///path or postgresql://…, got {value!r}")
        return value

    @field_validator("github_web_url")
    @classmethod
    def _web(cls, value: str | None) -> str | None:
        # file:// lets the tests serve repositories from disk; a deployment uses http(s).
        if value is not None and not value.startswith(("http://", "https://", "file://")):
            raise ValueError(f"must start with http://, https:// or file://, got {value!r}")
        return value

    @field_validator("github_api_url", "slack_api_url", "public_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value

    @field_validator("github_app_private_key")
    @classmethod
    def _pem(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and "PRIVATE KEY" not in value.get_secret_value():
            raise ValueError("must be a PEM private key")
        return value

    @model_validator(mode="after")
    def _key_file(self) -> Settings:
        path = self.github_app_private_key_path
        if path is None:
            return self
        if self.github_app_private_key is not None:
            raise ValueError("GITHUB_APP_PRIVATE_KEY and GITHUB_APP_PRIVATE_KEY_PATH are both set; set only one")
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ValueError(f"GITHUB_APP_PRIVATE_KEY_PATH: cannot read {path}: {reason}") from None
        if "PRIVATE KEY" not in text:
            raise ValueError(f"GITHUB_APP_PRIVATE_KEY_PATH: {path} is not a PEM private key")
        object.__setattr__(self, "github_app_private_key", SecretStr(text))  # frozen: set once, here
        return self

    @field_validator("email_sender")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError(f"must be an email address such as releases@example.com, got {value!r}")
        return value

    @field_validator("admins")
    @classmethod
    def _ids(cls, value: str) -> str:
        for item in filter(None, (p.strip() for p in value.split(","))):
            if not item.startswith(("github:", "slack:")):
                raise ValueError(f"must be github:LOGIN or slack:ID entries separated by commas, got {item!r}")
        return value

    @field_validator("slack_users")
    @classmethod
    def _pairs(cls, value: str) -> str:
        for pair in filter(None, (p.strip() for p in value.split(","))):
            if "=" not in pair:
                raise ValueError(f"must be login=SLACKID pairs separated by commas, got {pair!r}")
        return value

    def prometheus_url_list(self) -> tuple[str, ...]:
        return tuple(u.strip().rstrip("/") for u in self.prometheus_urls.split(",") if u.strip())

    def docker_host_list(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in self.docker_hosts.split(",") if u.strip())

    def admin_ids(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.admins.split(",") if a.strip())

    def github_web_base(self) -> str:
        """Where git clones and OAuth pages live, without a trailing slash."""
        if self.github_web_url:
            return self.github_web_url.rstrip("/")
        api = self.github_api_url.rstrip("/")
        if api == "https://api.github.com":
            return "https://github.com"
        return api.removesuffix("/api/v3")

    def slack_user_map(self) -> dict[str, str]:
        pairs = (p.strip().split("=", 1) for p in self.slack_users.split(",") if p.strip())
        return {login.strip(): user.strip() for login, user in pairs}

    def require(self, *names: str) -> None:
        """Stop with a message naming each setting a command needs but does not have."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            env = [self.model_fields[n].validation_alias for n in missing]
            raise SettingsError(f"mainline: missing setting(s): {', '.join(map(str, env))}")


def load_settings(**overrides) -> Settings:
    """Read and validate the environment once; exit with a message naming the bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            field = Settings.model_fields.get(name)
            alias = field.validation_alias if field is not None else None
            env = alias.choices[0] if isinstance(alias, AliasChoices) else (alias or name)
            lines.append(f"  {env}: {err['msg']}" if err["loc"] else f"  {err['msg']}")
        raise SettingsError("mainline: invalid settings:\n" + "\n".join(lines)) from None
