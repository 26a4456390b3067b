"""All emulators behind one local HTTP server, each under its own path prefix."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import Mount

from emulators.resend import ResendEmulator
from emulators.runner import ThreadedServer, serve_in_thread
from emulators.steel import SteelEmulator
from emulators.supermemory import SupermemoryEmulator


@dataclass(frozen=True)
class EmulatedService:
    """How the settings point a service at its emulator."""

    name: str
    prefix: str
    key_setting: str
    url_setting: str
    dev_key: str


EMULATED_SERVICES = (
    EmulatedService("resend", "/resend", "RESEND_API_KEY", "RESEND_API_URL", "re_dev_emulator"),
    EmulatedService("steel", "/steel", "STEEL_API_KEY", "STEEL_BASE_URL", "steel_dev_emulator"),
    EmulatedService(
        "supermemory",
        "/supermemory",
        "SUPERMEMORY_API_KEY",
        "SUPERMEMORY_BASE_URL",
        "sm_dev_emulator",
    ),
)


@dataclass
class EmulatorStack:
    """The running emulators and the server that serves them."""

    url: str
    resend: ResendEmulator
    steel: SteelEmulator
    supermemory: SupermemoryEmulator
    server: ThreadedServer

    def stop(self) -> None:
        """Stop serving."""
        self.server.stop()


def start_emulators(
    *, resend_webhook_url: str | None = None, resend_webhook_secret: str | None = None
) -> EmulatorStack:
    """Start every emulator on one loopback port; Resend delivers webhooks if given a URL."""
    resend = ResendEmulator()
    steel = SteelEmulator()
    supermemory = SupermemoryEmulator()
    if resend_webhook_url and resend_webhook_secret:
        resend.configure_webhook(resend_webhook_url, resend_webhook_secret)
    app = Starlette(
        routes=[
            Mount("/resend", app=resend.app),
            Mount("/steel", app=steel.app),
            Mount("/supermemory", app=supermemory.app),
        ]
    )
    server = serve_in_thread(app)
    return EmulatorStack(
        url=server.url, resend=resend, steel=steel, supermemory=supermemory, server=server
    )
