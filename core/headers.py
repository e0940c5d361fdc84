"""Security headers on every response.

The pages load only our own scripts, styles and images (map tiles aside, when configured), so the
policy allows `'self'` and the tile server: an injected script from elsewhere does not run, and no
page may be framed (clickjacking on the dispatcher console). Inline `style` attributes are allowed
(the pages and Leaflet set them); inline scripts are not. FastAPI's /docs and /redoc load Swagger
UI from a CDN with an inline script, so they only get the framing rule.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PREFIXES = ("/docs", "/redoc")


def tile_origin(tile_url: str | None) -> str:
    """The CSP source of a tile URL template (`{s}` subdomains become a wildcard); "" when none."""
    if not tile_url:
        return ""
    parts = urlsplit(tile_url.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def page_policy(tile_url: str | None) -> str:
    tiles = tile_origin(tile_url)
    images = " ".join(filter(None, ("'self'", "data:", "blob:", tiles)))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {images}; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response (plain ASGI: no extra task per request)."""

    def __init__(self, app: ASGIApp, tile_url: str | None = None) -> None:
        self.app = app
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        self.headers = [*common, (b"content-security-policy", page_policy(tile_url).encode())]
        self.docs_headers = [*common, (b"content-security-policy", b"frame-ancestors 'none'")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs_headers if scope["path"].startswith(DOCS_PREFIXES) else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                message["headers"] = [
                    *message.get("headers", ()),
                    *((name, value) for name, value in extra if name not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
