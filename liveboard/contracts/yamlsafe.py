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
contest file (about 13 KB) is ~1,000 values, 12 levels deep, with under 20 aliases. The defaults stay
there on purpose: a province-scale field (notice 002: 100,000 streamers) registers its contestants through
the organiser import (``contestant_registered`` events), not in the file; an operator who wants them in the
file raises the limits (a 30,000-contestant file written as indented JSON is 6.8 MB and ~510,000 values).

With libyaml (``yaml.__with_libyaml__``) the document is parsed and composed in C, within the same limits
(see "the libyaml fast path" below): a 30,000-contestant file loads in ~2 s instead of ~50 s.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
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


# --------------------------------------------------------------------------------- the libyaml fast path
#
# PyYAML's pure-Python scanner, parser and composer take ~15 s for a 3,000-contestant file and ~50 s for
# 30,000 (6.8 MB, ~510,000 values) on a loaded machine. libyaml (``yaml.CSafeLoader``) parses and composes
# in C, but its composer recurses in C (a very deep nesting would overflow the C stack, not raise
# RecursionError) and cannot be hooked to count. So the fast path first streams the C parser's events and
# counts nesting depth and alias uses (no node is built; it stops at the first level or alias over the
# limit), then lets libyaml compose, then runs the same :func:`check_expansion` walk. Anything over a limit
# or any YAML error goes to the pure-Python path, so the refusals and error messages are exactly the ones it
# gives (its line numbers, its wording).

_C_LOADER: type | None = getattr(yaml, "CSafeLoader", None) if getattr(yaml, "__with_libyaml__", False) else None
_FAST_ATTRS = frozenset(
    {
        "__module__",
        "__qualname__",
        "__doc__",
        "__dict__",
        "__weakref__",
        "yaml_implicit_resolvers",
        "yaml_path_resolvers",
        "yaml_constructors",
        "yaml_multi_constructors",
    }
)
_c_twins: dict[type, type | None] = {}


def c_twin(base: type[yaml.SafeLoader]) -> type | None:
    """A libyaml loader with ``base``'s resolvers and constructors, or None when libyaml is missing or
    ``base`` (a SafeLoader subclass) overrides behaviour beyond those tables (only tables carry over)."""
    if base in _c_twins:
        return _c_twins[base]
    twin = None
    if _C_LOADER is not None and issubclass(base, yaml.SafeLoader):
        own = [c for c in base.__mro__[: base.__mro__.index(yaml.SafeLoader)]]
        if all(set(vars(c)) <= _FAST_ATTRS for c in own):
            twin = type(
                f"C{base.__name__}",
                (_C_LOADER,),
                {
                    "yaml_implicit_resolvers": base.yaml_implicit_resolvers,
                    "yaml_path_resolvers": base.yaml_path_resolvers,
                    "yaml_constructors": base.yaml_constructors,
                    "yaml_multi_constructors": base.yaml_multi_constructors,
                },
            )
    _c_twins[base] = twin
    return twin


def _event_counts(text: str, loader_cls: type, limits: YamlLimits) -> tuple[int, int] | None:
    """(alias uses, values) of the document from libyaml's events, building no node; None at the first
    level past the depth limit or alias past the alias limit."""
    loader = loader_cls(text)
    start = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
    end = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    scalar, alias, stream_end = yaml.ScalarEvent, yaml.AliasEvent, yaml.StreamEndEvent
    depth = aliases = values = 0
    max_depth, max_aliases = limits.max_depth, limits.max_aliases
    try:
        get = loader.get_event
        while True:
            event = get()
            kind = type(event)
            if kind is scalar:
                values += 1
                if depth >= max_depth:  # a value is one level below its collection, as the composer counts
                    return None
            elif kind in start:
                values += 1
                depth += 1
                if depth > max_depth:
                    return None
            elif kind in end:
                depth -= 1
            elif kind is alias:
                aliases += 1
                if aliases > max_aliases:
                    return None
            elif event is None or kind is stream_end:
                return aliases, values
    finally:
        loader.dispose()


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off while a large document's nodes and values are built (none of them
    is garbage yet): 510,000 values compose in 2 s instead of 8.5 s, construct in 0.7 s instead of 3.2 s."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _compose_fast(text: str, base: type[yaml.SafeLoader], limits: YamlLimits) -> tuple[Any, yaml.Node | None] | None:
    """The libyaml composition of ``text`` within the limits, or None to take the pure-Python path."""
    twin = c_twin(base)
    if twin is None:
        return None
    try:
        counts = _event_counts(text, twin, limits)
    except yaml.YAMLError:
        return None  # bad YAML: the pure-Python path reports it as it always has
    if counts is None:
        return None  # over a limit: the pure-Python path refuses it with its own message and line
    aliases, values = counts
    if not aliases and values > limits.max_nodes:
        raise YamlLimitError(
            f"the document holds {values:,} values; the limit is {limits.max_nodes:,} (LIVEBOARD_YAML_MAX_NODES)"
            " / 文件值过多 (register a province-scale field through the organiser import: docs/contests.md)"
        )
    loader = twin(text)
    try:
        with paused_gc():
            node = loader.get_single_node()
    except yaml.YAMLError:
        loader.dispose()
        return None
    try:
        if node is not None and aliases:
            # without aliases the tree is the events: depth and values are counted above, no cycle possible
            check_expansion(node, limits)
    except BaseException:
        loader.dispose()
        raise
    return loader, node


def compose_limited(
    text: str, base: type[yaml.SafeLoader] = yaml.SafeLoader, limits: YamlLimits | None = None
) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    """Compose ``text`` within the limits; returns the loader (to construct from, then ``dispose``) and the
    root node (None: empty document). Raises :class:`YamlLimitError` or ``yaml.YAMLError``.

    With libyaml the document is parsed and composed in C (see above); the loader returned is then a
    libyaml twin of ``base`` with the same resolvers and constructors."""
    limits = limits or YamlLimits.from_env()
    size = len(text.encode("utf-8"))
    if size > limits.max_bytes:
        raise too_large(size, limits)
    fast = _compose_fast(text, base, limits)
    if fast is not None:
        return fast  # type: ignore[return-value]
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
        with paused_gc():
            return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def load_file_limited(
    path: str | Path, base: type[yaml.SafeLoader] = yaml.SafeLoader, limits: YamlLimits | None = None
) -> Any:
    limits = limits or YamlLimits.from_env()
    return load_limited(read_limited(path, limits), base, limits)
