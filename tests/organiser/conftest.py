"""The board fixtures (board served in-process on the real stack, headless Chromium) for the organiser's pages."""

from tests.board.conftest import artifacts, board, browser, client  # noqa: F401
