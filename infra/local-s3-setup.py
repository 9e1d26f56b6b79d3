#!/usr/bin/env python3
"""Prepares the local S3-compatible server for `cargo lambda watch --env-file infra/local-s3.env`.

Creates the two buckets of infra/local-s3.env with versioning on, uploads the seed's test data,
and uploads the seed's source files: dataset3.csv and dataset4.csv (the keys the multi-record
fixture names) and the practice file dataset1.csv under the key with spaces and non-ASCII letters
that the unicode fixture names (new rows: its event leads to a drift check). That fixture names a version id from a real bucket, so a copy of it
naming the version this server gave the upload is written to target/local-events/. Run with the
Python of .venv (boto3 comes with moto):

    .venv/bin/python infra/local-s3-setup.py [endpoint, default http://127.0.0.1:5000]
"""

import json
import pathlib
import sys

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = "risk-dev-source-123456789012-us-east-1"
ARTIFACTS = "risk-dev-artifacts-123456789012-us-east-1"
UNICODE_KEY = "incoming/2026-11/Clients Müller & Søn (März).csv"


def main() -> None:
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    for bucket in (SOURCE, ARTIFACTS):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.upload_file(str(ROOT / "data/testdata/testdata.csv"), ARTIFACTS, "testdata/testdata.csv")
    for name in ("dataset3.csv", "dataset4.csv"):
        s3.upload_file(str(ROOT / "data/sourcedata" / name), SOURCE, name)
    body = (ROOT / "data/practicedata/dataset1.csv").read_bytes()
    version = s3.put_object(Bucket=SOURCE, Key=UNICODE_KEY, Body=body)["VersionId"]

    fixture = json.loads((ROOT / "infra/events/s3-put-unicode-key.json").read_text())
    fixture["Records"][0]["s3"]["object"]["versionId"] = version
    out = ROOT / "target/local-events"
    out.mkdir(parents=True, exist_ok=True)
    (out / "s3-put-unicode-key.json").write_text(json.dumps(fixture, indent=2, ensure_ascii=False))
    print(f"buckets {SOURCE} and {ARTIFACTS} ready on {endpoint}")
    print(f"event for {UNICODE_KEY!r} version {version}: {out / 's3-put-unicode-key.json'}")


if __name__ == "__main__":
    main()
