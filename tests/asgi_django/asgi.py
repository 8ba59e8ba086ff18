"""The miniature project's ASGI application: Django for HTTP, Channels for WebSockets, where
``/ws/chat/{host}/{room}`` echoes each frame (a chat endpoint it is not)."""

from __future__ import annotations

from typing import Any

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()  # sets Django up before Channels is imported

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class Echo(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data or "")


application: Any = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter([path("ws/chat/<host>/<room>", Echo.as_asgi())]),
    }
)
