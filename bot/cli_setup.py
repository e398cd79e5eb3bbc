"""`mainline setup github`: register Mainline's GitHub App through GitHub's App-manifest flow.

The command serves a page on 127.0.0.1 that posts the manifest (built from github-app.yml) to
GitHub; the person confirms there, GitHub redirects back to the command's local callback with a
one-time `code`, and the command exchanges it (POST /app-manifests/{code}/conversions) for the
App's id, private key and webhook secret, written to a key file (0600) and an env file (0600).
Nothing secret is printed.
"""

from __future__ import annotations

import hmac
import html
import json
import os
import queue
import re
import secrets
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import click
import requests
import yaml

LEVELS = ("read", "write", "admin")
SHIPPED = Path(__file__).resolve().parent.parent / "github-app.yml"
CODE = re.compile(r"[A-Za-z0-9_-]{1,200}")
PLAIN = re.compile(r"[A-Za-z0-9_./:@+-]*")


class SetupError(click.ClickException):
    pass


def load_app_definition(path: Path) -> dict:
    """github-app.yml, checked: each permission has an access level and a reason, each event a reason."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SetupError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise SetupError(f"{path}: needs at least `name`, `permissions` and `events`")
    for name, grant in (data.get("permissions") or {}).items():
        if not isinstance(grant, dict) or grant.get("access") not in LEVELS or not grant.get("reason"):
            raise SetupError(f"{path}: permissions.{name} needs `access` (read, write or admin) and a `reason`")
    for event in data.get("events") or []:
        if not isinstance(event, dict) or not event.get("name") or not event.get("reason"):
            raise SetupError(f"{path}: each of `events` needs a `name` and a `reason`")
    return data


def manifest_for(definition: dict, public_url: str, redirect_url: str, name: str | None = None) -> dict:
    """GitHub's App manifest: the definition's permissions and events, our webhook and callbacks."""
    base = public_url.rstrip("/")
    return {
        "name": name or definition["name"],
        "url": base,
        "description": definition.get("description", ""),
        "public": bool(definition.get("public", False)),
        "hook_attributes": {"url": f"{base}/github/webhook", "active": True},
        "redirect_url": redirect_url,
        "callback_urls": [f"{base}/login/callback"],  # signing in to the dashboard with the App
        "default_permissions": {k: v["access"] for k, v in (definition.get("permissions") or {}).items()},
        "default_events": [e["name"] for e in definition.get("events") or []],
    }


class Callback:
    """The local page that posts the manifest, and the callback that receives GitHub's code."""

    def __init__(self, port: int):
        self.state = secrets.token_urlsafe(24)
        self.codes: queue.Queue[str] = queue.Queue()
        self.page = "<p>Starting…</p>"  # set by post_manifest once the callback's address is known
        callback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if self.headers.get("Host", "") not in callback.hosts:
                    # A page on another name that resolves here (DNS rebinding) gets neither the state nor the callback.
                    self._answer(421, "<p>Open this page as http://127.0.0.1 with its port.</p>")
                elif url.path == "/":
                    self._answer(200, callback.page)
                elif url.path == "/callback":
                    self._answer(*callback.receive(parse_qs(url.query)))
                else:
                    self._answer(404, "<p>Not found.</p>")

            def _answer(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # the code is in the query: never logged
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.hosts = {f"{host}:{self.server.server_address[1]}" for host in ("127.0.0.1", "localhost")}
        self.redirect_url = f"{self.url}/callback"
        self._thread = threading.Thread(target=self.server.serve_forever, name="setup-callback", daemon=True)

    def post_manifest(self, manifest: dict, new_app_url: str) -> None:
        """The page at / posts `manifest` to GitHub's new-App page, with our state."""
        self.page = _page(new_app_url, self.state, manifest)

    def receive(self, query: dict[str, list[str]]) -> tuple[int, str]:
        state, code = (query.get(k, [""])[0] for k in ("state", "code"))
        if not hmac.compare_digest(state.encode(), self.state.encode()):
            return 400, "<p>This callback does not belong to the set-up running in your terminal.</p>"
        if not CODE.fullmatch(code):
            return 400, "<p>GitHub sent no code.</p>"
        self.codes.put(code)
        return 200, "<p>GitHub created the App. Return to your terminal.</p>"

    def __enter__(self) -> Callback:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _page(new_app_url: str, state: str, manifest: dict) -> str:
    action = html.escape(f"{new_app_url}?state={state}", quote=True)
    value = html.escape(json.dumps(manifest), quote=True)
    return ("<!doctype html><title>Mainline: create the GitHub App</title>"
            f'<form method="post" action="{action}"><input type="hidden" name="manifest" value="{value}">'
            "<p>Mainline will be registered as a GitHub App with the permissions of github-app.yml.</p>"
            '<button type="submit">Create the GitHub App on GitHub</button></form>'
            "<script>document.forms[0].submit()</script>")


def exchange(api_url: str, code: str) -> dict:
    """POST /app-manifests/{code}/conversions: the App, its key (`pem`) and webhook secret."""
    try:
        answer = requests.post(f"{api_url.rstrip('/')}/app-manifests/{code}/conversions", timeout=30,
                               headers={"Accept": "application/vnd.github+json"})
    except requests.RequestException as exc:
        raise SetupError(f"could not reach GitHub to exchange the code: {exc}") from None
    if answer.status_code != 201:
        try:
            message = str(answer.json().get("message", ""))[:200]
        except ValueError:
            message = answer.text[:200]
        raise SetupError(f"GitHub answered {answer.status_code} {message} to the code exchange (a code is good "
                         "once, within an hour): run `mainline setup github` again")
    app = answer.json()
    for field in ("id", "pem", "webhook_secret"):
        if not app.get(field):
            raise SetupError(f"GitHub's answer lacks `{field}`")
    if not isinstance(app["id"], int) or "PRIVATE KEY" not in str(app["pem"]):
        raise SetupError("GitHub's answer is not an App (an integer `id` and a PEM `pem`)")
    return app


def write_key(path: Path, pem: str, force: bool) -> None:
    if path.exists() and not force:
        raise SetupError(f"{path} exists: pass --force to replace it, or --key-file elsewhere")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(pem if pem.endswith("\n") else pem + "\n")


def _quoted(value: str) -> str:
    return value if PLAIN.fullmatch(value) else json.dumps(value)


def write_env(path: Path, values: dict[str, str], drop: tuple[str, ...] = ()) -> list[str]:
    """Set `values` in the env file (other lines kept), remove `drop` keys; mode 0600. Returns the
    keys removed."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    out: list[str] = []
    done: set[str] = set()
    removed: list[str] = []
    skipping_until = None
    for line in lines:
        if skipping_until is not None:  # the rest of a quoted multi-line value being dropped
            if line.rstrip().endswith(skipping_until):
                skipping_until = None
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if sep and key in values:
            out.append(f"{key}={_quoted(values[key])}")
            done.add(key)
        elif sep and key in drop:
            removed.append(key)
            quote = value.strip()[:1]
            if quote in ("'", '"') and not (len(value.strip()) > 1 and value.rstrip().endswith(quote)):
                skipping_until = quote
        else:
            out.append(line)
    out += [f"{k}={_quoted(v)}" for k, v in values.items() if k not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(out) + "\n")
    os.replace(temporary, path)
    return removed


@click.group()
def setup() -> None:
    """First-time set-up of what Mainline connects to."""


@setup.command("github")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), default=Path(".env"), show_default=True,
              help="Where GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_PATH and GITHUB_WEBHOOK_SECRET are written.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the App's private key is written (mode 0600). Default: github-app.pem beside the env file.")
@click.option("--definition", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The App's permissions and events (default: ./github-app.yml, else the one Mainline ships).")
@click.option("--public-url", envvar="MAINLINE_PUBLIC_URL", required=True,
              help="Where GitHub reaches Mainline (webhooks: PUBLIC_URL/github/webhook). Env: MAINLINE_PUBLIC_URL.")
@click.option("--api-url", envvar="GITHUB_API_URL", default="https://api.github.com", show_default=True)
@click.option("--web-url", envvar="GITHUB_WEB_URL", default=None,
              help="GitHub's web address (default: from --api-url, https://github.com for api.github.com).")
@click.option("--org", default=None, help="Register the App under this organisation instead of your account.")
@click.option("--name", default=None, help="The App's name (GitHub names must be unique); default from the definition.")
@click.option("--port", type=int, default=0, help="Port of the local callback on 127.0.0.1 (default: any free one).")
@click.option("--timeout", type=float, default=900.0, show_default=True, help="Seconds to wait for GitHub's redirect.")
@click.option("--no-browser", is_flag=True, help="Only print the URL to open.")
@click.option("--force", is_flag=True, help="Replace an existing key file.")
def setup_github(env_file: Path, key_file: Path | None, definition: Path | None, public_url: str, api_url: str,
                 web_url: str | None, org: str | None, name: str | None, port: int, timeout: float,
                 no_browser: bool, force: bool) -> None:
    """Register Mainline's GitHub App (GitHub's App-manifest flow) and write its settings."""
    if definition is None:
        here = Path("github-app.yml")
        definition = here if here.is_file() else SHIPPED
    app_definition = load_app_definition(definition)
    if not public_url.startswith(("http://", "https://")):
        raise SetupError(f"--public-url must start with http:// or https://, got {public_url!r}")
    if org is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}", org):
        raise SetupError(f"not an organisation name: {org!r}")
    web = (web_url or _web_from_api(api_url)).rstrip("/")
    new_app_url = f"{web}/organizations/{org}/settings/apps/new" if org else f"{web}/settings/apps/new"
    key_file = (key_file or env_file.parent / "github-app.pem").resolve()
    if key_file.exists() and not force:
        raise SetupError(f"{key_file} exists: pass --force to replace it, or --key-file elsewhere")

    with Callback(port) as callback:
        callback.post_manifest(manifest_for(app_definition, public_url, callback.redirect_url, name), new_app_url)
        click.echo(f"Open {callback.url}/ in your browser: it sends the App's manifest to {new_app_url},")
        click.echo("where you confirm it. GitHub then redirects back here.")
        if not no_browser:
            webbrowser.open(f"{callback.url}/")
        try:
            code = callback.codes.get(timeout=timeout)
        except queue.Empty:
            raise SetupError(f"GitHub did not redirect back within {timeout:.0f} s; run the command again") from None

    app = exchange(api_url, code)
    write_key(key_file, app["pem"], force)
    values = {"GITHUB_APP_ID": str(app["id"]), "GITHUB_APP_PRIVATE_KEY_PATH": str(key_file),
              "GITHUB_WEBHOOK_SECRET": app["webhook_secret"]}
    if app.get("client_id") and app.get("client_secret"):
        values |= {"GITHUB_OAUTH_CLIENT_ID": app["client_id"], "GITHUB_OAUTH_CLIENT_SECRET": app["client_secret"]}
    if api_url.rstrip("/") != "https://api.github.com":
        values["GITHUB_API_URL"] = api_url.rstrip("/")
    removed = write_env(env_file, values, drop=("GITHUB_APP_PRIVATE_KEY",))
    click.echo(f"Created the GitHub App {app.get('name', '')!s} (id {app['id']}): {app.get('html_url', '')}")
    click.echo(f"Wrote {', '.join(values)} to {env_file} (mode 0600) and the private key to {key_file} (mode 0600).")
    if removed:
        click.echo(f"Removed GITHUB_APP_PRIVATE_KEY from {env_file}: the key file replaces it.")
    click.echo(f"Next: install the App on your repositories at {app.get('html_url', web)}/installations/new")


def _web_from_api(api_url: str) -> str:
    api = api_url.rstrip("/")
    return "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
