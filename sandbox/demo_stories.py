"""The demo's stories, by the name `mainline demo --story NAME` takes."""

from __future__ import annotations

from pathlib import Path

from sandbox.demo import Demo, DemoPorts, run_demo
from sandbox.demo_batch import BatchDemo
from sandbox.demo_canary import CanaryDemo
from sandbox.demo_ecs import EcsDemo

STORIES: dict[str, type[Demo]] = {"default": Demo, "canary": CanaryDemo, "batch": BatchDemo, "ecs": EcsDemo}


def run_story(story: str = "default", once: bool = False, bot_port: int = 8000, ports: DemoPorts | None = None,
              state_dir: Path | None = None) -> int:
    return run_demo(once=once, bot_port=bot_port, ports=ports, state_dir=state_dir, demo_class=STORIES[story])
