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
PAGES["/screen/collective"] = "screen-collective.html"  # the collective ranking screen (区县/市/团队), issue 12
PAGES["/api/docs"] = "api-docs.html"  # the API reference: Swagger UI (vendored) over /api/v1/openapi.json
LOGO_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
LOGO_TYPES[".webp"] = "image/webp"


def _page(filename: str):  # type: ignore[no-untyped-def]
    path = STATIC / filename

    @public
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache", "X-Frame-Options": "DENY"})

    return handler


@public
async def screen_logo(request: web.Request) -> web.StreamResponse:
    """The contest's logo for its screens (``display.logo``: a file in the contests folder; public)."""
    from services.board.context import ctx

    c = ctx(request)
    contest = c.contests.get(request.match_info["contest"])
    disp = getattr(contest, "display", None)
    if contest is None or disp is None or not disp.logo:
        raise web.HTTPNotFound(text="contest: no logo")
    path = Path(c.board.contests_dir) / disp.logo  # the name's pattern allows no folder
    if not path.is_file():
        raise web.HTTPNotFound(text=f"display.logo: {disp.logo} is not in the contests folder")
    headers = {"Cache-Control": "max-age=300", "Content-Type": LOGO_TYPES[path.suffix.lower()]}
    headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"  # an SVG runs no script
    return web.FileResponse(path, headers=headers)


def add_routes(app: web.Application) -> None:
    for route, filename in PAGES.items():
        app.router.add_get(route, _page(filename), name=f"page:{filename}")
    app.router.add_get("/screen/logo/{contest}", screen_logo, name="screen:logo")
    app.router.add_static("/static/", STATIC, name="static", append_version=False)
