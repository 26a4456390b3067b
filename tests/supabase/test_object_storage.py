"""Files where the app can serve them: an S3-compatible server (moto's, in this process,
on loopback) stands for Supabase Storage's S3 endpoint; our store is the real one."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
from moto.server import ThreadedMotoServer
from temporalio.testing import WorkflowEnvironment

from activities.object_store import (
    ASSETS_BUCKET_RULES,
    MB,
    BucketRules,
    LocalFolderStore,
    ObjectRefused,
    S3Config,
    S3Store,
    mime_allowed,
    object_key,
)
from db.migrate import run_migrations
from devstack.emulators.runner import free_port
from tests.harness import running_stack
from tests.supabase.test_seed_adoption import _run, _seed_000, _seed_003
from tests.waiting import eventually
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS, start_job
from workers.starters import start_generation
from workflows.models.agent_job import AgentJobInput
from workflows.models.generation import GenerationInput

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class S3Server:
    """moto's S3 server on a loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def config(self, bucket: str) -> S3Config:
        return S3Config(self.endpoint, bucket, "us-east-1", "test-key-id", "test-secret")

    def create_bucket(self) -> str:
        bucket = f"assets-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test-key-id",
            aws_secret_access_key="test-secret",
        ).create_bucket(Bucket=bucket)
        return bucket


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(s3: S3Server) -> S3Store:
    return S3Store(s3.config(s3.create_bucket()))


async def test_upload_lands_under_the_users_folder_and_reads_back(store: S3Store) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    await store.put(object_key(alice, "image", "g1_0.png"), PNG, "image/png")
    await store.put(object_key(bob, "image", "g2_0.png"), PNG + b"b", "image/png")
    assert store.keys(f"{alice}/") == [f"{alice}/image/g1_0.png"]
    assert store.keys(f"{bob}/") == [f"{bob}/image/g2_0.png"]
    assert await store.get(f"{alice}/image/g1_0.png") == ("image/png", PNG)


@pytest.mark.parametrize(
    ("content_type", "allowed"),
    [
        ("image/png", True),
        ("image/jpeg", True),
        ("IMAGE/PNG", True),
        ("application/pdf", True),
        ("video/mp4", True),
        ("text/html", False),
        ("image/svg+xml", False),  # scripts in an image: not on the seed's list
        ("application/octet-stream", False),
        ("image/png; charset=binary", False),
        ("image/png/extra", False),
        ("image/", False),
        ("/png", False),
        ("*/*", False),
        ("image/*", False),
        ("", False),
        ("imagepng", False),
        ("image/png\x00", False),
    ],
)
async def test_mime_types_outside_the_whitelist_are_refused_before_upload(
    store: S3Store, content_type: str, allowed: bool
) -> None:
    key = object_key(uuid.uuid4(), "image", "x.png")
    if allowed:
        await store.put(key, PNG, content_type)
        assert store.keys(key) == [key]
    else:
        with pytest.raises(ObjectRefused, match="MIME type"):
            await store.put(key, PNG, content_type)
        assert store.keys(key) == []


def test_wildcards_match_one_type_only() -> None:
    assert mime_allowed("image/png", ("image/*",))
    assert not mime_allowed("video/mp4", ("image/*",))
    assert not mime_allowed("imagex/png", ("image/*",))
    assert not mime_allowed("image", ("image/*",))


async def test_size_limit_is_the_buckets(s3: S3Server) -> None:
    store = S3Store(s3.config(s3.create_bucket()), BucketRules(max_bytes=10))
    user = uuid.uuid4()
    await store.put(object_key(user, "image", "ten.png"), b"x" * 10, "image/png")
    with pytest.raises(ObjectRefused, match="over the bucket's limit of 10 bytes"):
        await store.put(object_key(user, "image", "eleven.png"), b"x" * 11, "image/png")
    assert store.keys(f"{user}/") == [f"{user}/image/ten.png"]
    # Seed 003's bucket: 50 MB, checked before anything is sent.
    with pytest.raises(ObjectRefused, match="52428800"):
        ASSETS_BUCKET_RULES.check(f"{user}/image/big.png", "image/png", 50 * MB + 1)
    ASSETS_BUCKET_RULES.check(f"{user}/image/big.png", "image/png", 50 * MB)


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "/{u}/image/x.png",
        "{u}/../x.png",
        "{u}/image/",
        "{u}//x.png",
        "{u}/image/x y.png",
        "{u}/image/.hidden",
        "not-a-user/image/x.png",
        "{u}",
        "{u}/image/x.png\n",
    ],
)
async def test_keys_outside_a_users_folder_are_refused(store: S3Store, key: str) -> None:
    with pytest.raises(ObjectRefused):
        await store.put(key.format(u=uuid.uuid4()), PNG, "image/png")


class LosesFirstAnswer:
    """A TCP proxy to the S3 server that passes the first request through but drops its
    answer (closes the client's connection when the answer starts): the object is stored,
    the uploader sees a failure. Later connections pass both ways."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            drop = self.connections == 1
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, drop), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, drop: bool) -> None:
        try:
            while data := source.recv(65536):
                if drop:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()


async def test_a_retry_after_a_failed_upload_writes_one_object(s3: S3Server) -> None:
    bucket = s3.create_bucket()
    proxy = LosesFirstAnswer(s3.port)
    try:
        config = S3Config(proxy.endpoint, bucket, "us-east-1", "test-key-id", "test-secret")
        store = S3Store(config)
        key = object_key(uuid.uuid4(), "image", "g_0.png")
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
            await store.put(key, PNG, "image/png")
        # The failed attempt reached the server; the retry writes the same key again.
        await store.put(key, PNG, "image/png")
        assert proxy.connections == 2
    finally:
        proxy.close()
    direct = S3Store(s3.config(bucket))
    assert direct.keys() == [key]
    assert await direct.get(key) == ("image/png", PNG)


async def test_a_signed_url_reads_the_object_for_a_while(store: S3Store) -> None:
    key = object_key(uuid.uuid4(), "screenshots", "job_blob.png")
    await store.put(key, PNG, "image/png")
    url = await store.signed_url(key, expires_in=60)
    assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200 and response.content == PNG


async def test_the_local_folder_keeps_the_same_rules(tmp_path: Any) -> None:
    local = LocalFolderStore(tmp_path)
    key = object_key(uuid.uuid4(), "image", "a.png")
    await local.put(key, PNG, "image/png")
    assert await local.get(key) == ("image/png", PNG)
    with pytest.raises(ObjectRefused):
        await local.put(key, PNG, "text/html")
    assert (await local.signed_url(key)).startswith("file://")


# --- the worker, end to end ---------------------------------------------------------------


def _s3_settings(s3: S3Server, bucket: str) -> dict[str, Any]:
    return {
        "asset_storage_endpoint": s3.endpoint,
        "asset_storage_bucket": bucket,
        "asset_storage_access_key_id": "test-key-id",
        "asset_storage_secret_access_key": "test-secret",
    }


async def test_generation_results_go_to_the_bucket_and_assets_point_at_them(
    s3: S3Server,
    supabase_url: str,
    admin_url_of: Callable[[str], str],
    temporal_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    bucket = s3.create_bucket()
    ids = await _seed_003(supabase_url, admin_url_of(supabase_url))
    # The worker reads the bucket's rules from storage.buckets: name ours like it.
    await _run(
        admin_url_of(supabase_url),
        ("UPDATE storage.buckets SET id = %s, name = %s WHERE id = 'assets'", (bucket, bucket)),
    )
    await run_migrations(supabase_url)
    async with running_stack(
        supabase_url,
        temporal_env.client,
        task_queue,
        **_s3_settings(s3, bucket),
    ) as stack:
        request = GenerationInput(
            generation_id=uuid.uuid4(), user_id=ids["user"], prompt_text="a beach"
        )
        handle = await start_generation(stack.client, stack.settings, request)
        result = await handle.result()
        assets = await stack.fetchall(
            "SELECT file_path, mime_type, file_size FROM assets WHERE id = ANY(%s::uuid[])",
            result.asset_ids,
        )
    store = S3Store(s3.config(bucket))
    assert sorted(a["file_path"] for a in assets) == store.keys(f"{ids['user']}/image/")
    for asset in assets:
        content_type, data = await store.get(asset["file_path"])
        assert (content_type, asset["mime_type"]) == ("image/png", "image/png")
        assert len(data) == asset["file_size"] and data.startswith(b"\x89PNG")


async def test_screenshots_go_to_the_bucket_and_the_email_still_shows_one_inline(
    s3: S3Server,
    supabase_url: str,
    admin_url_of: Callable[[str], str],
    temporal_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    bucket = s3.create_bucket()
    ids = await _seed_000(supabase_url, admin_url_of(supabase_url))
    await run_migrations(supabase_url)
    async with running_stack(
        supabase_url, temporal_env.client, task_queue, **_s3_settings(s3, bucket)
    ) as stack:
        workspace = await stack.fetchrow(
            "SELECT id FROM workspaces WHERE user_id = %s", ids["user"]
        )
        assert workspace is not None
        request = AgentJobInput(
            job_id=uuid.uuid4(),
            user_id=ids["user"],
            workspace_id=workspace["id"],
            title="Tidy",
            instruction="Remove the old specs",
            steps=[*SAFE_STEPS[:1], DELETE_STEP],
        )
        await start_job(stack, request)
        sent = await eventually(
            lambda: next(iter(stack.emulators.resend.sent_emails()), None), what="the email"
        )
        blobs = await stack.fetchall(
            "SELECT object_key, data, byte_size FROM blobs ORDER BY created_at"
        )
    keys = S3Store(s3.config(bucket)).keys(f"{ids['user']}/screenshots/")
    assert blobs and all(b["data"] is None for b in blobs)
    assert sorted(b["object_key"] for b in blobs) == keys
    assert all(k.startswith(f"{ids['user']}/screenshots/{request.job_id}_") for k in keys)
    attachment = sent["attachments"][0]
    assert attachment["content_id"] == "screenshot"
    inline = base64.b64decode(attachment["content"])
    assert inline.startswith(b"\x89PNG") and len(inline) in {b["byte_size"] for b in blobs}
