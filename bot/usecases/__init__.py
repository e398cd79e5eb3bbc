"""What people and webhooks ask of Mainline: intake (a push or a merge), commands (deploy,
roll back, lock, approve, ...), queries (status, history) and the reconciler."""
