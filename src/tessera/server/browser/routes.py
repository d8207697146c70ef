"""The browser-facing routes, in one list."""

from __future__ import annotations

from starlette.routing import Route

from tessera.server.browser.flow import Flow
from tessera.server.browser.logout import Logout
from tessera.server.browser.pages import Pages, page_errors


def routes() -> list[Route]:
    pages = Pages()
    flow, logout = Flow(pages), Logout(pages)
    guarded = page_errors(pages)
    return [
        Route("/oauth2/authorize", guarded(flow.authorize), methods=["GET", "POST"]),
        Route("/login", guarded(flow.login_page), methods=["GET"]),
        Route("/login", guarded(flow.login), methods=["POST"]),
        Route("/consent", guarded(flow.consent_page), methods=["GET"]),
        Route("/consent", guarded(flow.consent), methods=["POST"]),
        Route("/oauth2/logout", guarded(logout.logout), methods=["GET", "POST"]),
        Route("/static/tessera.css", pages.stylesheet_response, methods=["GET"]),
    ]
