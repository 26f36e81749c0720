"""The three pages (big screen, judges' console, operators' console) and their static assets.

Pages are static shells with no data in them; everything they show comes from /api/v1 after the role
checks. All assets, ECharts included, are served from services/board/static: the venue may have no
internet, so nothing loads from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.board.auth import public

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/screen": "screen.html", "/judge": "judge.html", "/operator": "operator.html"}
PAGES.update({"/publication": "publication.html", "/imports": "imports.html"})  # 公示 (public), imports (operators)


def _page(filename: str):  # type: ignore[no-untyped-def]
    path = STATIC / filename

    @public
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache", "X-Frame-Options": "DENY"})

    return handler


def add_routes(app: web.Application) -> None:
    for route, filename in PAGES.items():
        app.router.add_get(route, _page(filename), name=f"page:{filename}")
    app.router.add_static("/static/", STATIC, name="static", append_version=False)
