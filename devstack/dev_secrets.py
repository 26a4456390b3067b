"""Secrets for the dev stack: generated once, kept in the data directory, never logged."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

# Setting name -> generator of a fresh value in the format the setting expects. A data
# directory made before the master key also holds APPROVAL_TOKEN_SECRET and
# CREDENTIALS_ENCRYPTION_KEY: they stay, and still verify and decrypt what they made.
DEV_SECRETS = {
    "ENCRYPTION_MASTER_KEY": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    "RESEND_WEBHOOK_SECRET": lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
    "CODEC_AUTH_TOKEN": lambda: secrets.token_urlsafe(32),
    "SUPABASE_JWT_SECRET": lambda: secrets.token_urlsafe(32),  # signs the demo user's tokens
}


def load_or_create_dev_secrets(home: Path) -> dict[str, str]:
    """Return the dev secrets from ``home/secrets.json``, creating missing ones (mode 0600)."""
    path = home / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name, make in DEV_SECRETS.items():
        if name not in stored:
            stored[name] = make()
            changed = True
    if changed:
        home.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
        tmp.replace(path)
    return stored


def apply_dev_secrets(home: Path) -> None:
    """Put generated secrets into the environment where the environment has none."""
    for name, value in load_or_create_dev_secrets(home).items():
        os.environ.setdefault(name, value)
