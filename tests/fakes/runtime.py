"""Builder and Target fakes: a registry of image names, and per environment the image that
serves. Faults are set by the test: a build that fails, an image that never gets healthy or
fails its bake, an infrastructure error on a call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.domain import Replica, RolloutPlan, VerifyReport
from bot.errors import BuildError, RolloutError
from bot.ports import EventSink


class FakeBuilder:
    def __init__(self) -> None:
        self.images: set[str] = set()
        self.builds: list[str] = []
        self.broken: set[str] = set()  # images whose build fails

    def image_exists(self, image: str) -> bool:
        return image in self.images

    def ensure_image(self, context: Path, image: str, on_event: EventSink) -> str:
        if image in self.broken:
            raise BuildError(f"{image}: the Dockerfile does not build")
        self.builds.append(image)
        self.images.add(image)
        on_event(f"built {image}")
        return image


class FakeTarget:
    def __init__(self) -> None:
        self.serving: dict[tuple[str, str], str] = {}  # (service, environment) -> image
        self.rollouts: list[str] = []
        self.discarded: list[str] = []
        self.unhealthy: set[str] = set()  # images that never get healthy on rollout
        self.bad: set[str] = set()  # images that fail their bake
        self.faults: dict[str, Exception] = {}  # method name -> error it raises (infrastructure)
        self.hooks: dict[str, Callable[[RolloutPlan], object]] = {}  # method name -> called first

    def _fault(self, method: str, plan: RolloutPlan) -> None:
        if method in self.hooks:
            self.hooks[method](plan)
        if method in self.faults:
            raise self.faults[method]

    def roll_out(self, plan: RolloutPlan, on_event: EventSink) -> None:
        self._fault("roll_out", plan)
        if plan.image in self.unhealthy:
            raise RolloutError(f"{plan.image} never became healthy")
        key = (plan.service, plan.environment)
        if self.serving.get(key) != plan.image:  # observes what runs: a replay changes nothing
            self.rollouts.append(plan.image)
            self.serving[key] = plan.image
        on_event(f"{plan.image} serves")

    def verify(self, plan: RolloutPlan, on_event: EventSink) -> VerifyReport:
        self._fault("verify", plan)
        if plan.image in self.bad:
            return VerifyReport(False, 5, 3, 100, 40, reason="5xx rate 40.0% over 1.0%", last_output="500")
        return VerifyReport(True, 5, 0, 100, 0)

    def finish(self, plan: RolloutPlan, on_event: EventSink) -> None:
        self._fault("finish", plan)

    def discard(self, plan: RolloutPlan, on_event: EventSink) -> None:
        self.discarded.append(plan.image)
        key = (plan.service, plan.environment)
        if self.serving.get(key) == plan.image and plan.image:
            del self.serving[key]

    def replicas(self, service: str, environment: str) -> list[Replica]:
        image = self.serving.get((service, environment))
        return [Replica(f"{service}-1", image, image.rsplit(":", 1)[-1], "127.0.0.1:1", True)] if image else []
