"""The miniature project's ASGI application: Django for HTTP, Channels for WebSockets, where
``/ws/chat/{host}/{room}`` refuses every connection (a chat endpoint it is not)."""

from __future__ import annotations

from typing import Any

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()  # sets Django up before Channels is imported

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class Refusing(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.close()  # before the accept: the ASGI server answers HTTP 403


application: Any = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter([path("ws/chat/<host>/<room>", Refusing.as_asgi())]),
    }
)
