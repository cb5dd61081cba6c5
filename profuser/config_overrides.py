"""``key=value`` overrides of a run config: parsed as YAML values, applied to the plain tree
before validation, with one-line errors naming the override."""

from __future__ import annotations

from typing import Any

import yaml

from profuser.errors import ConfigError


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.0.c=value`` -> (["a", "b", "0", "c"], parsed YAML value)."""
    if "=" not in text:
        raise ConfigError(f"override `{text}` is not of the form key=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override `{text}` has an empty key")
    try:
        return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"override `{text}`: the value is not valid YAML; quote it") from None


def apply_override(tree: dict, keys: list[str], value: Any) -> None:
    """Set ``value`` at dotted ``keys`` in a plain dict/list tree, creating dicts as needed."""
    node: Any = tree
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(
                    f"override `{'.'.join(keys)}`: no list item {key} at `{'.'.join(keys[:i])}`"
                )
            node = node[int(key)]
        else:
            if not isinstance(node.get(key, {}), dict | list):
                raise ConfigError(
                    f"override `{'.'.join(keys)}`: `{'.'.join(keys[: i + 1])}` is not a section"
                )
            node = node.setdefault(key, {})
    last = keys[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"override `{'.'.join(keys)}`: no list item {last}")
        node[int(last)] = value
    else:
        node[last] = value
