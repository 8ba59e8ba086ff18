"""Faulty variants of the reference client, chosen by ``EDUSPHERE_FAULT``.

Run like the reference client (``python faulty_client.py`` with ``EDUSPHERE_WS_URL`` set); each
variant overrides one step of :class:`reference_client.ReconnectingClient` to break one
requirement, the way real clients get it wrong:

- ``double-schedule``: schedules a reconnection on both the error and the close event (CLIENT-003)
- ``no-reset``: never resets the attempt counter when a connection opens (CLIENT-005)
- ``unbounded``: never gives up (CLIENT-004)
- ``reconnect-after-clean``: treats a clean close (1000) as a loss (CLIENT-006)
- ``wrong-delay``: reads the seed's "exponential backoff" literally: base x 2^(n-1) (CLIENT-002)
- ``wrong-path``: reconnects to another room (CLIENT-007)
- ``bad-frame``: after a reconnection sends a text frame without ``message`` (CLIENT-008)
- ``no-reconnect``: gives up at once after a loss (CLIENT-001)

An empty or missing ``EDUSPHERE_FAULT`` runs the reference client unchanged.
"""

from __future__ import annotations

import os
import sys

from reference_client import ReconnectingClient, main


class DoubleSchedule(ReconnectingClient):
    def _after_loss(self) -> None:
        self._schedule_reconnect()  # "onerror"
        self._schedule_reconnect()  # "onclose"


class NoReset(ReconnectingClient):
    def _reset_counter(self) -> None:
        pass


class Unbounded(ReconnectingClient):
    def _may_retry(self) -> bool:
        return True


class ReconnectAfterClean(ReconnectingClient):
    def _is_clean_close(self, code: int | None) -> bool:
        return False


class WrongDelay(ReconnectingClient):
    def _delay_for(self, attempt: int) -> float:
        return float(self.base_delay * 2 ** (attempt - 1))


class WrongPath(ReconnectingClient):
    def _url_for(self, connection_number: int) -> str:
        if connection_number == 0:
            return self.url
        head, _, _room = self.url.rstrip("/").rpartition("/")
        return f"{head}/lobby"


class BadFrame(ReconnectingClient):
    async def send_text(self, message: str) -> dict[str, str]:
        if self.connections_opened > 1:
            return await self.send_json({"type": "text", "text": message})
        return await super().send_text(message)


class NoReconnect(ReconnectingClient):
    def _may_retry(self) -> bool:
        return False


FAULTS: dict[str, type[ReconnectingClient]] = {
    "": ReconnectingClient,
    "double-schedule": DoubleSchedule,
    "no-reset": NoReset,
    "unbounded": Unbounded,
    "reconnect-after-clean": ReconnectAfterClean,
    "wrong-delay": WrongDelay,
    "wrong-path": WrongPath,
    "bad-frame": BadFrame,
    "no-reconnect": NoReconnect,
}


if __name__ == "__main__":
    fault = os.environ.get("EDUSPHERE_FAULT", "")
    if fault not in FAULTS:
        print(f"faulty_client: unknown EDUSPHERE_FAULT {fault!r}", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main([], client_class=FAULTS[fault]))
