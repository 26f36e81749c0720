"""Safe YAML with limits: size, nesting depth, alias uses and the size an alias-expanded document reaches.

PyYAML's safe loader refuses arbitrary objects but not denial of service: a few hundred bytes of nested
aliases ("billion laughs") expand to hundreds of millions of values once anything walks the document, and
a few thousand nested brackets exhaust Python's recursion limit with a traceback. Contest files come from
organisers and are dropped into folders the board, the scorer and the collectors read, so every contest
file goes through :func:`compose_limited` (via ``liveboard.contracts.contest_validate``) or
:func:`load_limited`, and a file over a limit is refused at once with a message naming the limit.

The limits (``YamlLimits.from_env``): ``LIVEBOARD_YAML_MAX_BYTES`` (default 4 MiB),
``LIVEBOARD_YAML_MAX_DEPTH`` (64 levels, counted through aliases), ``LIVEBOARD_YAML_MAX_ALIASES`` (1,000
alias uses) and ``LIVEBOARD_YAML_MAX_NODES`` (500,000 values once aliases are expanded). The largest real
contest file (about 13 KB) is ~1,000 values, 12 levels deep, with under 20 aliases.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class YamlLimits:
    max_bytes: int = 4 << 20
    max_depth: int = 64
    max_aliases: int = 1000
    max_nodes: int = 500_000

    @classmethod
    def from_env(cls) -> YamlLimits:
        d = cls()

        def num(name: str, default: int) -> int:
            raw = os.environ.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise YamlLimitError(f"{name}={raw!r}: not a whole number") from None
            if value < 1:
                raise YamlLimitError(f"{name}={raw!r}: must be at least 1")
            return value

        return cls(
            num("LIVEBOARD_YAML_MAX_BYTES", d.max_bytes),
            num("LIVEBOARD_YAML_MAX_DEPTH", d.max_depth),
            num("LIVEBOARD_YAML_MAX_ALIASES", d.max_aliases),
            num("LIVEBOARD_YAML_MAX_NODES", d.max_nodes),
        )


class YamlLimitError(ValueError):
    """A YAML document over one of the limits; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _line(node_or_event: Any) -> int | None:
    mark = getattr(node_or_event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def too_large(size: int, limits: YamlLimits) -> YamlLimitError:
    return YamlLimitError(
        f"the file is {size:,} bytes; the limit is {limits.max_bytes:,} bytes (LIVEBOARD_YAML_MAX_BYTES) / 文件过大"
    )


def check_size(path: str | Path, limits: YamlLimits | None = None) -> None:
    """Refuse a file over the size limit before reading it."""
    limits = limits or YamlLimits.from_env()
    size = Path(path).stat().st_size
    if size > limits.max_bytes:
        raise too_large(size, limits)


def read_limited(path: str | Path, limits: YamlLimits | None = None) -> str:
    """The text of a YAML file, refused (:class:`YamlLimitError`) past the size limit without reading it all."""
    limits = limits or YamlLimits.from_env()
    with open(path, "rb") as f:
        data = f.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise too_large(max(len(data), Path(path).stat().st_size), limits)
    return data.decode("utf-8")


class _LimitedComposer:
    """Mixed in before a PyYAML loader class: counts depth and aliases while composing."""

    lb_limits: YamlLimits = YamlLimits()
    _lb_depth = 0
    _lb_aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            self._lb_aliases += 1
            if self._lb_aliases > self.lb_limits.max_aliases:
                event = self.peek_event()  # type: ignore[attr-defined]
                raise YamlLimitError(
                    f"more than {self.lb_limits.max_aliases:,} alias uses (*name); the limit is "
                    f"{self.lb_limits.max_aliases:,} (LIVEBOARD_YAML_MAX_ALIASES) / 别名引用过多",
                    _line(event),
                )
            return super().compose_node(parent, index)  # type: ignore[misc]
        self._lb_depth += 1
        try:
            if self._lb_depth > self.lb_limits.max_depth:
                event = self.peek_event()  # type: ignore[attr-defined]
                raise YamlLimitError(
                    f"nested more than {self.lb_limits.max_depth} levels deep; the limit is "
                    f"{self.lb_limits.max_depth} (LIVEBOARD_YAML_MAX_DEPTH) / 嵌套层级过深",
                    _line(event),
                )
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._lb_depth -= 1


_classes: dict[tuple[type, YamlLimits], type] = {}


def limited_loader(base: type[yaml.SafeLoader], limits: YamlLimits) -> type[yaml.SafeLoader]:
    """``base`` (a SafeLoader subclass) with the depth and alias limits applied while composing."""
    key = (base, limits)
    cls = _classes.get(key)
    if cls is None:
        cls = _classes[key] = type(f"Limited{base.__name__}", (_LimitedComposer, base), {"lb_limits": limits})
    return cls  # type: ignore[return-value]


def check_expansion(root: yaml.Node, limits: YamlLimits) -> int:
    """The number of values ``root`` holds once every alias is expanded; refused past ``max_nodes``, past
    ``max_depth`` counted through aliases, or when an alias refers to a node that contains it.

    Linear in the distinct nodes: the expanded size of each node is computed once (an alias is the same
    node object as its anchor) and the count stops as soon as it passes the limit.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        if depth > limits.max_depth:
            raise YamlLimitError(
                f"nested more than {limits.max_depth} levels deep (counting through aliases); the limit is "
                f"{limits.max_depth} (LIVEBOARD_YAML_MAX_DEPTH) / 嵌套层级过深",
                _line(node),
            )
        key = id(node)
        hit = sizes.get(key)
        if hit is not None:
            return hit
        if key in open_:
            raise YamlLimitError(
                "an alias refers to a node that contains it (recursive alias) / 别名循环引用", _line(node)
            )
        total = 1
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            open_.add(key)
            children = (
                [x for pair in node.value for x in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
            )
            for child in children:
                total += size(child, depth + 1)
                if total > limits.max_nodes:
                    raise YamlLimitError(
                        f"the aliases (*name) expand the document past {limits.max_nodes:,} values; the limit is "
                        f"{limits.max_nodes:,} (LIVEBOARD_YAML_MAX_NODES) / 别名展开后过大 (alias bomb?)",
                        _line(node),
                    )
            open_.discard(key)
        sizes[key] = total
        return total

    return size(root, 1)


def compose_limited(
    text: str, base: type[yaml.SafeLoader] = yaml.SafeLoader, limits: YamlLimits | None = None
) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    """Compose ``text`` within the limits; returns the loader (to construct from, then ``dispose``) and the
    root node (None: empty document). Raises :class:`YamlLimitError` or ``yaml.YAMLError``."""
    limits = limits or YamlLimits.from_env()
    size = len(text.encode("utf-8"))
    if size > limits.max_bytes:
        raise too_large(size, limits)
    loader = limited_loader(base, limits)(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            check_expansion(node, limits)
    except BaseException:
        loader.dispose()
        raise
    return loader, node


def load_limited(text: str, base: type[yaml.SafeLoader] = yaml.SafeLoader, limits: YamlLimits | None = None) -> Any:
    """``yaml.safe_load`` within the limits."""
    loader, node = compose_limited(text, base, limits)
    try:
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def load_file_limited(
    path: str | Path, base: type[yaml.SafeLoader] = yaml.SafeLoader, limits: YamlLimits | None = None
) -> Any:
    limits = limits or YamlLimits.from_env()
    return load_limited(read_limited(path, limits), base, limits)
