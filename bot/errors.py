"""Our exceptions. Adapters turn SDK errors into these."""


class MainlineError(Exception):
    """Base of every error Mainline raises on purpose."""


class TransientError(MainlineError):
    """Worth retrying: a connection reset, a 5xx, a 429."""


class UnreachableError(TransientError):
    """What serves an environment cannot be reached (its load balancer's Docker host does not
    answer): said once to the people, retried every pass."""


class NotFoundError(MainlineError):
    """The thing asked for does not exist."""


class AuthError(MainlineError):
    """Credentials missing, wrong, or not allowed to do this."""


class BuildError(MainlineError):
    """The image could not be built or pushed."""


class RolloutError(MainlineError):
    """A new release could not be put in place; what served before still serves."""


class DeployFailed(MainlineError):
    """A deploy ended in failure, with a reason a person can act on."""


class LeaseLostError(MainlineError):
    """Another worker now owns this environment: stop without writing."""


class RevertConflictError(MainlineError):
    """Reverting the bad commits on the production branch conflicted."""

    def __init__(self, files: list[str]):
        self.files = files
        super().__init__("revert conflicts in " + ", ".join(files))


class ServiceOwnedError(AuthError):
    """A repository declared a service that belongs to another repository."""

    def __init__(self, service: str, owner: str, claimant: str):
        self.service, self.owner, self.claimant = service, owner, claimant
        super().__init__(f"service {service!r} belongs to {owner}; {claimant} cannot deploy it "
                         f"(rename `service:` in .github/deploy.yml)")


class InfrastructureFailure(MainlineError):
    """A rollout stopped for a reason that is not the release's: an image that cannot be
    pulled, a secret that cannot be read, tasks that cannot be placed, another deploy that
    replaced ours, a configuration error. The release is not judged and nothing is reverted.
    `restore` says whether what served before must be put back (False when nothing changed,
    or when someone else's deploy now owns the service)."""

    def __init__(self, message: str, kind: str, details: tuple[str, ...] = (), restore: bool = True):
        super().__init__(message)
        self.kind = kind
        self.details = details
        self.restore = restore


class SecretError(MainlineError):
    """A secret reference could not be resolved. Raised before anything changes; the message
    names the reference, never a value."""


class FileTooLargeError(MainlineError):
    """A file of a repository is larger than the reader takes: it is not read at all."""

    def __init__(self, path: str, size: int, limit: int):
        super().__init__(f"{path} is {size} bytes, over the {limit} bytes read")
        self.path, self.size, self.limit = path, size, limit
