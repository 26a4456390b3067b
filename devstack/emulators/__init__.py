"""Local emulators of the outside services' HTTP APIs, for development and tests only.

Each emulator implements enough of a vendor's documented HTTP API that the vendor's
official SDK works against it unchanged. Production code never imports this package.
"""
