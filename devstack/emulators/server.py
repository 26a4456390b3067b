"""All emulators behind one local HTTP server, each under its own path prefix."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.routing import Mount

from devstack.emulators.google_ads import GoogleAdsEmulator
from devstack.emulators.google_oauth import DEV_CLIENT_ID as GOOGLE_CLIENT_ID
from devstack.emulators.google_oauth import DEV_CLIENT_SECRET as GOOGLE_CLIENT_SECRET
from devstack.emulators.google_oauth import GoogleOAuthEmulator
from devstack.emulators.higgsfield import HiggsfieldEmulator
from devstack.emulators.meta import DEV_APP_ID as META_APP_ID
from devstack.emulators.meta import DEV_APP_SECRET as META_APP_SECRET
from devstack.emulators.meta import MetaEmulator
from devstack.emulators.resend import ResendEmulator
from devstack.emulators.runner import ThreadedServer, serve_in_thread
from devstack.emulators.slack import SlackEmulator
from devstack.emulators.steel import SteelEmulator
from devstack.emulators.supermemory import SupermemoryEmulator
from devstack.emulators.threads import DEV_APP_SECRET as THREADS_APP_SECRET
from devstack.emulators.threads import ThreadsEmulator
from devstack.emulators.tokens import Clock


@dataclass(frozen=True)
class EmulatedService:
    """How the settings point a service at its emulator (``extra``: more settings the
    emulator needs, such as an OAuth client's id and secret)."""

    name: str
    prefix: str
    key_setting: str
    url_setting: str
    dev_key: str
    extra: tuple[tuple[str, str], ...] = ()


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
    # Higgsfield keys are per user (user_api_keys); only the base URL is global.
    EmulatedService("higgsfield", "/higgsfield", "", "HIGGSFIELD_BASE_URL", ""),
    # Ad-platform tokens are per connection (platform_connections.credentials); Google Ads
    # also needs the app's developer token on every request. Meta's emulated app exchanges
    # long-lived tokens.
    EmulatedService(
        "meta",
        "/meta",
        "",
        "META_GRAPH_URL",
        "",
        extra=(("META_APP_ID", META_APP_ID), ("META_APP_SECRET", META_APP_SECRET)),
    ),
    EmulatedService(
        "google-ads",
        "/google-ads",
        "GOOGLE_ADS_DEVELOPER_TOKEN",
        "GOOGLE_ADS_URL",
        "dev-emulator-developer-token",
    ),
    # Google's OAuth token endpoint (refresh tokens -> access tokens) and its client.
    EmulatedService(
        "google-oauth",
        "/google-oauth",
        "GOOGLE_OAUTH_CLIENT_SECRET",
        "GOOGLE_OAUTH_URL",
        GOOGLE_CLIENT_SECRET,
        extra=(("GOOGLE_OAUTH_CLIENT_ID", GOOGLE_CLIENT_ID),),
    ),
    EmulatedService(
        "threads", "/threads", "THREADS_APP_SECRET", "THREADS_GRAPH_URL", THREADS_APP_SECRET
    ),
    # Slack tokens and webhook URLs are per notification channel; only the API URL is global.
    EmulatedService("slack", "/slack/api/", "", "SLACK_API_URL", ""),
)


@dataclass
class EmulatorStack:
    """The running emulators and the server that serves them."""

    url: str
    resend: ResendEmulator
    steel: SteelEmulator
    supermemory: SupermemoryEmulator
    higgsfield: HiggsfieldEmulator
    meta: MetaEmulator
    google_ads: GoogleAdsEmulator
    slack: SlackEmulator
    server: ThreadedServer
    google_oauth: GoogleOAuthEmulator = field(default_factory=GoogleOAuthEmulator)
    threads: ThreadsEmulator = field(default_factory=ThreadsEmulator)
    clock: Clock = field(default_factory=Clock)  # the token emulators' shared clock

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
    higgsfield = HiggsfieldEmulator()
    clock = Clock()  # one clock for every token: tests move it to expire them
    meta = MetaEmulator(clock=clock)
    google_ads = GoogleAdsEmulator()
    google_oauth = GoogleOAuthEmulator(clock=clock)
    google_ads.token_state = google_oauth.access_token_state
    threads = ThreadsEmulator(clock=clock)
    slack = SlackEmulator()
    if resend_webhook_url and resend_webhook_secret:
        resend.configure_webhook(resend_webhook_url, resend_webhook_secret)
    app = Starlette(
        routes=[
            Mount("/resend", app=resend.app),
            Mount("/steel", app=steel.app),
            Mount("/supermemory", app=supermemory.app),
            Mount("/higgsfield", app=higgsfield.app),
            Mount("/meta", app=meta.app),
            Mount("/google-ads", app=google_ads.app),
            Mount("/google-oauth", app=google_oauth.app),
            Mount("/threads", app=threads.app),
            Mount("/slack", app=slack.app),
        ]
    )
    server = serve_in_thread(app)
    return EmulatorStack(
        url=server.url,
        resend=resend,
        steel=steel,
        supermemory=supermemory,
        higgsfield=higgsfield,
        meta=meta,
        google_ads=google_ads,
        slack=slack,
        server=server,
        google_oauth=google_oauth,
        threads=threads,
        clock=clock,
    )
