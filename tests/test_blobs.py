"""Voice files in an S3 bucket (VOXCLONE_BLOB_URL): a voice cloned on one machine speaks on another that
shares only the library's URL and the bucket; deleting a voice empties its part of the bucket; a bad
URL or an unreachable bucket stops the start with one line, not a traceback.

The bucket is moto's S3 server on a local port: a real S3-compatible HTTP endpoint."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from conftest import SHARED_DATA, TONE, clone_elsewhere
from moto.server import ThreadedMotoServer
from reverse_proxy import free_port
from tone_cloner import ToneCloner

from voxclone.cloning import Cloners
from voxclone.database import sqlite_url
from voxclone.runtime import Parts

CLIP = SHARED_DATA / "103-1240-0000.flac"  # 14 s of one reader
PREFIX = "team/voices"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A client of the S3 server, with the credentials voxclone finds the standard way (AWS_* variables)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "voxclone-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "voxclone-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))  # nothing from the user's ~/.aws
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return boto3.session.Session().client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def bucket(s3) -> str:
    name = f"voxclone-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=name)
    return name


def _keys(s3, bucket: str, prefix: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_a_voice_cloned_on_one_machine_speaks_on_another_sharing_the_library_and_the_bucket(
    settings, database_url, make_client, s3, s3_endpoint, bucket, tmp_path
):
    shared = {
        "database_url": database_url or sqlite_url(tmp_path / "library.sqlite3"),  # SQLite: one file both open
        "blob_url": f"s3://{bucket}/{PREFIX}",
        "blob_endpoint": s3_endpoint,
        "clone_engine": "tone",
    }
    first = settings.model_copy(update={**shared, "data_dir": tmp_path / "one"})
    second = settings.model_copy(update={**shared, "data_dir": tmp_path / "two", "run_enrolments": False})
    cloning = make_client(first, Parts(cloners=Cloners([ToneCloner()])))
    api_only = make_client(second, Parts(cloners=Cloners([ToneCloner()])))

    voice_id = clone_elsewhere(api_only, "Bucketed", CLIP)["voice_id"]
    stored = _keys(s3, bucket, f"{PREFIX}/{voice_id}/")
    assert any("/samples/" in key for key in stored) and any("/samples/" not in key for key in stored)
    for machine in ("one", "two"):
        assert not (tmp_path / machine / "voices" / voice_id).exists()  # objects, not files in a data dir
    assert cloning.get(f"/speak_as/{TONE}", params={"prompt": "Still here."}).status_code == 200

    assert cloning.delete(f"/v1/voices/{voice_id}").status_code == 200
    assert _keys(s3, bucket, f"{PREFIX}/{voice_id}/") == []
    assert api_only.get(f"/speak_as/{voice_id}", params={"prompt": "Gone?"}).status_code == 404


def test_a_start_deletes_the_objects_of_voices_the_library_does_not_have(
    settings, make_client, s3, s3_endpoint, bucket
):
    """What a crash in the middle of a delete leaves (the row gone, the objects not) goes at the next start."""
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/0123456789abcdef0123/voice.tone.npz", Body=b"left behind")
    s3.put_object(Bucket=bucket, Key="elsewhere/0123456789abcdef0123/voice.tone.npz", Body=b"not ours")
    client = make_client(
        settings.model_copy(update={"blob_url": f"s3://{bucket}/{PREFIX}/", "blob_endpoint": s3_endpoint})
    )
    assert client.get(f"/speak_as/{TONE}", params={"prompt": "Started."}).status_code == 200
    assert _keys(s3, bucket, f"{PREFIX}/") == []
    assert _keys(s3, bucket, "elsewhere/") == ["elsewhere/0123456789abcdef0123/voice.tone.npz"]


def _voices_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxclone.cli", "voices"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("s3://Not_A_Bucket/x", "must look like s3://bucket or s3://bucket/prefix"),
        ("s3://no-such-bucket-here", "there is no bucket 'no-such-bucket-here'"),
        ("unreachable", "cannot open the bucket"),
    ],
)
def test_a_bad_blob_url_or_an_unreachable_bucket_stops_the_start_with_one_line(
    where, said, s3, s3_endpoint, tmp_path, tone_model
):
    endpoint = f"http://127.0.0.1:{free_port()}" if where == "unreachable" else s3_endpoint
    result = _voices_command(
        {
            "VOXCLONE_DATA_DIR": str(tmp_path / "d"),
            "VOXCLONE_EXTRA_VOICE_PATHS": str(tone_model),
            "VOXCLONE_BLOB_URL": "s3://voxclone-anywhere" if where == "unreachable" else where,
            "VOXCLONE_BLOB_ENDPOINT": endpoint,
        }
    )
    assert result.returncode == 1 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "voxclone-test-secret" not in result.stderr
