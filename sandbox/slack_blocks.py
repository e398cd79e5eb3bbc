"""Slack's Block Kit as the Slack stand-in checks it (docs.slack.dev/reference/block-kit), and how a
person reads what Mainline posts: its live control sequences and its displayed text."""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_BLOCKS = 50
MAX_TEXT = 40_000
BLOCK_TYPES = {"section", "divider", "header", "context", "actions", "image", "input", "rich_text", "file", "video"}
ELEMENT_TYPES = {"button", "static_select", "overflow", "datepicker", "users_select", "conversations_select",
                 "channels_select", "checkboxes", "radio_buttons", "timepicker", "multi_static_select"}


# What Slack's mrkdwn turns into something live: `<!channel>`, `<!here>`, `<!everyone>`,
# `<!subteam^…>`, `<@U…>`, `<#C…>` and `<url|label>` links. Escaped text has no raw `<`.
_CONTROL_SEQUENCE = re.compile(r"<([^<>]*)>")


def live_sequences(text: str) -> list[str]:
    """The control sequences Slack would act on in `text` (mentions, broadcasts, links)."""
    return _CONTROL_SEQUENCE.findall(text or "")


def displayed(text: str) -> str:
    """`text` as a person reads it in Slack: the three escapes shown as the characters."""
    return (text or "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_object_problems(obj, where: str, plain_only: bool = False, limit: int = 3000) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: a text object must be an object"]
    problems = []
    kind = obj.get("type")
    if kind not in ("plain_text", "mrkdwn") or (plain_only and kind != "plain_text"):
        problems.append(f"{where}: text type {kind!r} not allowed here")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}: text must be a non-empty string")
    elif len(text) > limit:
        problems.append(f"{where}: text longer than {limit}")
    if "emoji" in obj and kind != "plain_text":
        problems.append(f"{where}: emoji only goes with plain_text")
    return problems


def _element_problems(element, where: str, action_ids: set) -> list[str]:
    if not isinstance(element, dict) or element.get("type") not in ELEMENT_TYPES:
        return [f"{where}: unknown element {element.get('type') if isinstance(element, dict) else element!r}"]
    problems = []
    action_id = element.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or not 0 < len(action_id) <= 255:
            problems.append(f"{where}: action_id must be 1-255 characters")
        elif action_id in action_ids:
            problems.append(f"{where}: action_id {action_id!r} is not unique")
        action_ids.add(action_id)
    if element["type"] == "button":
        problems += _text_object_problems(element.get("text"), f"{where}.text", plain_only=True, limit=75)
        if len(str(element.get("value", ""))) > 2000:
            problems.append(f"{where}: value longer than 2000")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"{where}: style must be primary or danger")
    return problems


def block_problems(blocks) -> list[str]:
    """Why `blocks` is not valid Block Kit for a message (empty when it is)."""
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks, at most {MAX_BLOCKS}")
    block_ids: set = set()
    action_ids: set = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"{where}: unknown block type")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255 or block_id in block_ids:
                problems.append(f"{where}: block_id must be unique and at most 255 characters")
            block_ids.add(block_id)
        check = _BLOCK_CHECKS.get(block["type"])
        if check is not None:
            problems += check(block, where, action_ids)
    return problems


def _section_problems(block: dict, where: str, action_ids: set) -> list[str]:
    problems = []
    if "text" not in block and "fields" not in block:
        problems.append(f"{where}: a section needs text or fields")
    if "text" in block:
        problems += _text_object_problems(block["text"], f"{where}.text")
    fields = block.get("fields", [])
    if len(fields) > 10:
        problems.append(f"{where}: more than 10 fields")
    for j, item in enumerate(fields):
        problems += _text_object_problems(item, f"{where}.fields[{j}]", limit=2000)
    if "accessory" in block:
        problems += _element_problems(block["accessory"], f"{where}.accessory", action_ids)
    return problems


def _header_problems(block: dict, where: str, action_ids: set) -> list[str]:
    return _text_object_problems(block.get("text"), f"{where}.text", plain_only=True, limit=150)


def _context_problems(block: dict, where: str, action_ids: set) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 0 < len(elements) <= 10:
        return [f"{where}: a context needs 1-10 elements"]
    return [problem for j, item in enumerate(elements)
            if not (isinstance(item, dict) and item.get("type") == "image")
            for problem in _text_object_problems(item, f"{where}.elements[{j}]")]


def _actions_problems(block: dict, where: str, action_ids: set) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 0 < len(elements) <= 25:
        return [f"{where}: actions need 1-25 elements"]
    return [problem for j, item in enumerate(elements)
            for problem in _element_problems(item, f"{where}.elements[{j}]", action_ids)]


# What each kind of block must hold beyond its type and block_id (other kinds: nothing checked).
_BLOCK_CHECKS: dict[str, Callable[[dict, str, set], list[str]]] = {
    "section": _section_problems, "header": _header_problems,
    "context": _context_problems, "actions": _actions_problems,
}
