"""A small router: each handler module registers its (event, action) pairs; one place combines them."""

from __future__ import annotations

from collections.abc import Callable

Handler = Callable[..., object]


class Router:
    def __init__(self, *routers: Router):
        self._routes: dict[tuple[str, str | None], list[Handler]] = {}
        for other in routers:
            for key, handlers in other._routes.items():
                self._routes.setdefault(key, []).extend(handlers)

    def register(self, event: str, action: str | None = None) -> Callable[[Handler], Handler]:
        def decorator(func: Handler) -> Handler:
            self._routes.setdefault((event, action), []).append(func)
            return func

        return decorator

    def handlers_for(self, event: str, action: str | None) -> list[Handler]:
        return self._routes.get((event, None), []) + (self._routes.get((event, action), []) if action else [])

    def accepts(self, event: str, action: str | None) -> bool:
        return bool(self.handlers_for(event, action))

    def dispatch(self, event: str, action: str | None, payload: dict, *args) -> list[object]:
        return [handler(payload, *args) for handler in self.handlers_for(event, action)]
