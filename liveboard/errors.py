"""Errors shared by every service, in one place (as aiokafka keeps its own)."""


class LiveboardError(Exception):
    """Base of all errors the CLI reports as a one-line message and a non-zero exit."""

    exit_code = 1


class ConfigError(LiveboardError):
    """A setting or configuration file is invalid."""


class StackError(LiveboardError):
    """The embedded stack cannot start, stop or answer."""


class MigrationError(LiveboardError):
    """A ClickHouse migration failed; the message names the file and the server's answer."""


class TopicError(LiveboardError):
    """A topic is missing or does not match the catalog."""


class ValidationError(LiveboardError):
    """An event or contest file does not match its contract."""
