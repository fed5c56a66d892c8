"""Fixtures of the end-to-end tests: the dashboard server process and Debian's Chromium."""

from tests.fixtures.browser import browser, dashboard

__all__ = ["browser", "dashboard"]
