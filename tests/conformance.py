"""versitygw's own integration suite (`versitygw test ... full-flow`), run
straight at a versitygw and through the proxy in front of an identical one,
and compared test by test.

    python tests/conformance.py --versitygw build/bin/versitygw
        [--config NAME] [--backend versitygw|seaweedfs] [--markdown FILE] [--json FILE]

(--backend seaweedfs needs OSP_SEAWEEDFS or build/bin/weed, and boto3: run
it with build/venv/bin/python.)

prints the comparison and exits 1 when a test that passed direct did not
pass through the proxy, unless it is listed with its reason: DELIBERATE (the
proxy differs on purpose) or KNOWN (a difference not by design, to fix), or
when a listed test passes (the lists must stay exact). tests/test_conformance.py runs the same
comparison from pytest; `make conformance` runs every configuration.

How it is run:
- two fresh versitygw servers, started alike (posix backend, --iam-dir, the
  same root keys; with --versioning also --versioning-dir): the suite names
  its buckets test-bucket-1, -2, ... in each run, so two runs on one server
  would collide; a fresh server each also keeps one run's leftovers out of
  the other;
- the proxy in front of the second one with a single cos_map entry "*"
  holding versitygw's root keys, and the suite given the proxy's client key
  (from hmac_keystore), so every bucket the suite creates is served;
- the suite runs in a directory holding ./versitygw, which its multi-account
  tests execute to create users (`versitygw admin`);
- `--parallel` (as versitygw's own CI runs it): about a minute per run.

In front of SeaweedFS (configuration seaweedfs-full-flow, `--backend
seaweedfs`), the same with two fresh SeaweedFS servers (tests/seaweed.py:
one admin identity, no anonymous one); the suite direct gets the admin
keys, the proxy's "*" entry holds them with upload_framing "plain". The
suite's multi-account tests call versitygw's admin API at the endpoint,
which SeaweedFS does not have: they fail direct and so are not compared.
The suite panics in some of its tests against SeaweedFS, direct too; what
the crash hid is run test by test on one SeaweedFS (13 s to start) emptied
of every bucket between tests, the test list taken from the other run or
from a run direct at versitygw. About 8 minutes.

The suite prints "RUN  name", then "PASS name", "FAIL name: why" or "SKIP
name" per test (with ANSI colours). A test left without a result means the
suite process died in it (a panic in the suite); the tests it never reached
are then run one by one (`versitygw test NAME`), so one crash does not hide
the rest.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

# The keys are the tests' own (tests/helpers.py), repeated here so that the
# script runs without the test package on sys.path.
BACKEND_ACCESS_KEY = "backendroot"
BACKEND_SECRET_KEY = "backend-root-secret-0123456789"
CLIENT_ACCESS_KEY = "CLIENTAKIDAAAAAAAAAA"
CLIENT_SECRET_KEY = "client-secret-aaaaaaaaaaaaaaaaaaaaaaaaa"
REGION = "us-east-1"

# A whole run's limit: a wedged suite must fail the run, not hang CI.
RUN_TIMEOUT = 900.0
# One test re-run by name after a crash.
SINGLE_TIMEOUT = 120.0

PASS, FAIL, SKIP, CRASH = "pass", "fail", "skip", "crash"


# --------------------------------------------------------------------------
# the tests the proxy fails on purpose


def _names(*names: str) -> Tuple[str, ...]:
    return names


# Why each group differs. A test listed here may fail through the proxy
# without failing the comparison; one not listed may not. Keep it exact
# (names, not patterns): a new suite version's new tests must be looked at.
DELIBERATE_GROUPS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    (
        "other accounts: the test creates users or changes a bucket's owner with versitygw's admin API "
        "(`versitygw admin` at the endpoint) and then acts as them; the proxy holds one backend credential "
        "per bucket and does not pass versitygw's admin API on, so there are no other accounts to act as",
        _names(
        "AccessControl_CopyObject_with_legal_hold_policy",
        "AccessControl_CopyObject_with_retention_policy",
        "AccessControl_CopyObject_with_tagging_policy",
        "AccessControl_CreateMultipartUpload_with_legal_hold_policy",
        "AccessControl_CreateMultipartUpload_with_retention_policy",
        "AccessControl_CreateMultipartUpload_with_tagging_policy",
        "AccessControl_PutObject_with_legal_hold_policy",
        "AccessControl_PutObject_with_retention_policy",
        "AccessControl_PutObject_with_tagging_policy",
        "AccessControl_bucket_ownership_to_user",
        "AccessControl_bucket_policy_condition_binary_operator",
        "AccessControl_bucket_policy_condition_bool_operator",
        "AccessControl_bucket_policy_condition_date_operators",
        "AccessControl_bucket_policy_condition_explicit_deny_overrides_allow",
        "AccessControl_bucket_policy_condition_ip_allow",
        "AccessControl_bucket_policy_condition_ip_deny_no_match",
        "AccessControl_bucket_policy_condition_not_ip_address_allow",
        "AccessControl_bucket_policy_condition_not_ip_address_deny",
        "AccessControl_bucket_policy_condition_null_operator",
        "AccessControl_bucket_policy_condition_numeric_operators",
        "AccessControl_bucket_policy_condition_s3_prefix",
        "AccessControl_bucket_policy_condition_string_operators",
        "AccessControl_bucket_resource_all_action",
        "AccessControl_bucket_resource_single_action",
        "AccessControl_copy_object_with_starting_slash_for_user",
        "AccessControl_default_ACL_admin_successful_access",
        "AccessControl_default_ACL_user_access_denied",
        "AccessControl_default_ACL_userplus_access_denied",
        "AccessControl_multi_statement_policy",
        "AccessControl_policy_normalizes_object_key_for_get_put_delete",
        "AccessControl_root_PutBucketAcl",
        "AccessControl_single_object_resource_actions",
        "AccessControl_user_PutBucketAcl_with_policy_access",
        "Authentication_date_mismatch",
        "CopyObject_not_owned_source_bucket",
        "CopyObject_object_acl_not_supported",
        "CreateBucket_as_user",
        "CreateBucket_existing_bucket",
        "CreateBucket_non_default_acl",
        "CreateMultipartUpload_object_acl_not_supported",
        "GetBucketAcl_access_denied",
        "GetBucketAcl_success",
        "GetBucketLocation_no_access",
        "GetBucketVersioning_non_owner_access_denied",
        "GetBucketVersioning_with_acl_access",
        "GetBucketVersioning_with_policy_access",
        "IAM_ChangeBucketOwner_back_to_root",
        "IAM_CreateBucket_empty_owner_header",
        "IAM_CreateBucket_non_existing_user",
        "IAM_CreateBucket_success",
        "IAM_ListBuckets",
        "IAM_admin_ChangeBucketOwner",
        "IAM_user_access_denied",
        "IAM_userplus_CreateBucket",
        "IAM_userplus_access_denied",
        "ListBuckets_as_admin",
        "ListBuckets_as_user",
        "PutBucketAcl_invalid_owner",
        "PutBucketAcl_success_access_denied",
        "PutBucketAcl_success_acp",
        "PutBucketAcl_success_canned_acl",
        "PutBucketAcl_success_grants",
        "PutBucketPolicy_any_char_match",
        "PutBucketPolicy_explicit_deny",
        "PutBucketPolicy_invalid_action",
        "PutBucketPolicy_multi_wildcard_resource",
        "PutBucketPolicy_success",
        "PutObject_object_acl_not_supported",
        "Versioning_AccessControl_DeleteObject_policy",
        "Versioning_AccessControl_GetObjectAttributes_policy",
        "Versioning_AccessControl_GetObjectVersion",
        "Versioning_AccessControl_HeadObjectVersion",
        "Versioning_AccessControl_PutObjectTagging_policy",
        ),
    ),
    (
        "identity: the backend sees the proxy's backend account, not the client's access key; owner IDs, "
        "ACL grants, x-amz-expected-bucket-owner values and bucket-policy principals that name the client's "
        "key mean nothing to the backend (its owner is the account in the cos_map entry)",
        _names(
        "CreateBucket_default_acl",
        "CreateBucket_private_canned_acl",
        "CreateBucket_private_canned_acl_bucket_owner_enforced_ownership",
        "DeleteObjectTagging_expected_bucket_owner",
        "DeleteObject_expected_bucket_owner",
        "GetBucketAcl_translation_canned_private",
        "GetBucketAcl_translation_canned_public_read",
        "GetBucketAcl_translation_canned_public_read_write",
        "PutBucketAcl_invalid_acl_acp_and_grants",
        "PutBucketAcl_invalid_acl_canned_and_grants",
        "PutBucketPolicy_version",
        "PutObjectRetention_shorten_compliance_denied",
        "PutObjectRetention_shorten_governance_with_bypass",
        "WORMProtection_object_lock_retention_governance_bypass_overwrite_copy",
        "WORMProtection_object_lock_retention_governance_bypass_overwrite_mp",
        "WORMProtection_object_lock_retention_governance_bypass_overwrite_put",
        "WORMProtection_root_bypass_governance_retention_delete_object",
        ),
    ),
    (
        "anonymous requests: nothing unauthenticated reaches a backend (docs/security.md, guarantee 1), so "
        "public buckets, CORS preflight OPTIONS, browser POST uploads (signed by a policy in a form field "
        "the proxy does not verify) and unsigned requests the suite sends to check versitygw's routing are "
        "answered 403 AccessDenied before any other check",
        _names(
        "GetObject_overrides_fail_public",
        "HeadObject_overrides_fail_public",
        "PostObject_access_denied",
        "PostObject_checksums_success",
        "PostObject_default_content_type",
        "PostObject_expired_due_to_date",
        "PostObject_incorrect_region",
        "PostObject_invalid_algorithm",
        "PostObject_invalid_checksum_algorithm",
        "PostObject_invalid_checksum_value",
        "PostObject_invalid_content_type",
        "PostObject_invalid_credential_format",
        "PostObject_invalid_date",
        "PostObject_invalid_object_names",
        "PostObject_invalid_policy_document",
        "PostObject_invalid_tagging",
        "PostObject_invalid_website_redirect_location",
        "PostObject_missing_boundary",
        "PostObject_multiple_checksum_headers",
        "PostObject_non_existing_access_key",
        "PostObject_partial_auth_fields",
        "PostObject_policy_access_control",
        "PostObject_policy_condition_key_mismatch",
        "PostObject_policy_content_length_too_large",
        "PostObject_policy_content_length_too_small",
        "PostObject_policy_expired",
        "PostObject_policy_extra_field",
        "PostObject_policy_missing_bucket_condition",
        "PostObject_should_ignore_anything_after_file",
        "PostObject_signature_mismatch",
        "PostObject_success",
        "PostObject_success_double_dash_boundary",
        "PostObject_success_status_200",
        "PostObject_success_status_201",
        "PostObject_success_with_meta_properties",
        "PostObject_success_with_tagging",
        "PreflightOPTIONS_access_forbidden",
        "PreflightOPTIONS_access_granted",
        "PreflightOPTIONS_invalid_request_headers",
        "PreflightOPTIONS_invalid_request_method",
        "PreflightOPTIONS_missing_origin",
        "PreflightOPTIONS_non_existing_bucket",
        "PreflightOPTIONS_unset_bucket_cors",
        "PublicBucket_default_private_bucket",
        "PublicBucket_incorrect_sha256_hash",
        "PublicBucket_policy_deny_overrides_public_acl",
        "PublicBucket_public_acl",
        "PublicBucket_public_bucket_policy",
        "PublicBucket_public_object_policy",
        "PublicBucket_signed_streaming_payload",
        "RouterCopySourceNotAllowed",
        "RouterGetUploadsWithKey",
        "RouterListVersionsWithKey",
        "RouterPUTObjectOnlyUploadId",
        "RouterPostObjectWithoutQuery",
        "RouterPostRoot",
        "RouterPutPartNumberWithoutUploadId",
        ),
    ),
    (
        "the forwarding rule (docs/security.md): header names with '_' and a header given twice are refused "
        "(400 InvalidArgument), as a backend could read them as another header or take either copy; S3 "
        "clients send neither (the suite's metadata key \"something_long\" or \"Key_with_underscore\" is "
        "sent as x-amz-meta-something_long)",
        _names(
        "CompleteMultipartUpload_with_metadata",
        "CopyObject_with_metadata",
        "PutObject_long_metadata",
        "PutObject_should_combine_metadata",
        "PutObject_with_metadata",
        ),
    ),
    (
        "a backend's AccessDenied is answered as the proxy's own, without the backend's message "
        "(docs/security.md, guarantee 5: it may describe the proxy's credentials); the code and status are "
        "S3's, the message says which bucket's backend refused",
        _names(
        "CopyObject_incorrect_source_bucket_expected_owner",
        "DeleteBucket_incorrect_expected_bucket_owner",
        "DeleteObject_incorrect_expected_bucket_owner",
        "UploadPartCopy_incorrect_source_bucket_expected_owner",
        ),
    ),
    (
        "region: the proxy is one endpoint in front of backends in many regions and accepts a signature "
        "for any region (the region is signed, so it cannot be changed on the way); S3 refuses a region "
        "other than the bucket's",
        _names(
        "Authentication_credentials_incorrect_region",
        "PresignedAuth_creds_incorrect_region",
        ),
    ),
    (
        "checks the proxy makes first: object keys and copy-source keys with '.' or '..' segments are "
        "refused (400 InvalidURI, InvalidArgument) before anything else, as an intermediary could "
        "normalize them into another key than the one authorized (the suite's copy source "
        "\"obj%3FversionId%3D..%2f..%2fsecret.txt\" is one); a copy source is checked before the bucket "
        "is looked up (nothing that needs no secret waits for one)",
        _names(
        "PutObject_invalid_object_names",
        "UploadPartCopy_non_existing_bucket",
        "Versioning_CopyObject_encoded_versionid_separator_invalid_versionId",
        "Versioning_UploadPartCopy_encoded_versionid_separator_invalid_versionId",
        ),
    ),
    (
        "ListBuckets paging: the proxy's continuation token is opaque (base64 of the last name, as S3's "
        "are opaque); the suite expects versitygw's, which is the bare bucket name. Paging itself passes "
        "(ListBuckets_success, ListBuckets_with_prefix)",
        _names(
        "ListBuckets_truncated",
        ),
    ),
)

# Differences that are not by design: the proxy's own error answers say
# the same thing as S3's (same status, mostly the same code) in other words
# or without a detail element. Allowed so that the comparison catches any
# new difference, and listed in docs/compatibility.md as work to do; remove
# a test from here when it passes (the comparison reports it as stale).
KNOWN_GROUPS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    # Empty since WP-Z of issue 13: the proxy's own refusals (aws-chunked
    # framing and trailers, chunks under 8 KiB but the last, a bad
    # x-amz-copy-source, a too large header section, a session token with
    # a keystore key) now answer in S3's codes, words and elements
    # (tests/test_s3_error_words.py).
)

DELIBERATE: Dict[str, str] = {name: reason for reason, names in DELIBERATE_GROUPS for name in names}
KNOWN: Dict[str, str] = {name: reason for reason, names in KNOWN_GROUPS for name in names}
# Every allowed difference, with its reason.
ALLOWED: Dict[str, str] = {**DELIBERATE, **KNOWN}

# In front of SeaweedFS, the lists above hold as they are (they describe
# the proxy), and these add what only shows there. A test listed above may
# pass through the proxy in front of SeaweedFS (SeaweedFS ignores what the
# test expected the proxy to refuse, say), so for SeaweedFS only these lists
# are checked for staleness.
SEAWEEDFS_DELIBERATE_GROUPS: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
SEAWEEDFS_KNOWN_GROUPS: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
SEAWEEDFS_DELIBERATE: Dict[str, str] = {n: r for r, names in SEAWEEDFS_DELIBERATE_GROUPS for n in names}
SEAWEEDFS_KNOWN: Dict[str, str] = {n: r for r, names in SEAWEEDFS_KNOWN_GROUPS for n in names}


def allowed_for(backend: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """The DELIBERATE and KNOWN differences for runs in front of ``backend``."""
    if backend == "seaweedfs":
        return {**DELIBERATE, **SEAWEEDFS_DELIBERATE}, {**KNOWN, **SEAWEEDFS_KNOWN}
    return dict(DELIBERATE), dict(KNOWN)


def stale_checked_for(backend: str) -> Optional[Iterable[str]]:
    """The listed names whose passing through the proxy makes the list
    stale (None: every listed name)."""
    if backend == "seaweedfs":
        return [*SEAWEEDFS_DELIBERATE, *SEAWEEDFS_KNOWN]
    return None



# --------------------------------------------------------------------------
# parsing the suite's output

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A result marker in colour. The suite sometimes prints a message without a
# newline ("...: failed to delete the bucket: ..."), so the next marker can
# be mid-line: each marker is moved to a line of its own before parsing.
_MARKER = re.compile(r"\x1b\[3[0-9]m(RUN |PASS|FAIL|SKIP) \x1b\[0m")
_LINE = re.compile(r"^(RUN|PASS|FAIL|SKIP) {1,2}([A-Za-z0-9_]+)(?::\s?(.*))?$")
_SUMMARY = re.compile(r"^RAN: (\d+) PASS: (\d+) FAIL: (\d+) SKIP: (\d+)$")


@dataclass
class Outcome:
    status: str
    detail: str = ""


@dataclass
class RunResult:
    """One run of the suite: each test's outcome, in the order they ran."""

    label: str
    outcomes: Dict[str, Outcome] = field(default_factory=dict)
    summary: Optional[Tuple[int, int, int, int]] = None
    crashed: bool = False
    crash_text: str = ""
    returncode: int = 0
    seconds: float = 0.0
    rerun: List[str] = field(default_factory=list)

    def names(self, status: str) -> List[str]:
        return [n for n, o in self.outcomes.items() if o.status == status]

    def counts(self) -> Dict[str, int]:
        return {s: len(self.names(s)) for s in (PASS, FAIL, SKIP, CRASH)}


def parse_output(text: str, label: str = "") -> RunResult:
    """Reads the suite's per-test lines. A FAIL's reason is its first line
    (the suite prints long diffs); a test that RAN without a result before a
    panic is CRASH. A test may print FAIL and then PASS (some report a
    sub-check and go on): any FAIL wins."""
    result = RunResult(label)
    pending: List[str] = []
    text = _MARKER.sub(lambda m: "\n" + m.group(1) + " ", text)
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).rstrip("\r")
        summary = _SUMMARY.match(line.strip())
        if summary:
            result.summary = tuple(int(g) for g in summary.groups())  # type: ignore[assignment]
            continue
        if line.startswith("panic:") or line.startswith("fatal error:"):
            result.crashed = True
            result.crash_text = line
            continue
        m = _LINE.match(line)
        if not m:
            continue
        kind, name, detail = m.group(1), m.group(2), (m.group(3) or "").strip()
        if kind == "RUN":
            pending.append(name)
            continue
        if name in pending:
            pending.remove(name)
        previous = result.outcomes.get(name)
        if kind == "FAIL":
            if previous is None or previous.status != FAIL:
                result.outcomes[name] = Outcome(FAIL, detail[:500])
        elif kind == "PASS":
            if previous is None:
                result.outcomes[name] = Outcome(PASS)
        elif kind == "SKIP":
            if previous is None:
                result.outcomes[name] = Outcome(SKIP, detail[:500])
    for name in pending:
        if name not in result.outcomes:
            result.outcomes[name] = Outcome(CRASH, result.crash_text or "no result: the suite stopped in this test")
    return result


# --------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: "subprocess.Popen[bytes]", log_path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"versitygw exited with code {proc.returncode}:\n{log_path.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"versitygw did not listen on 127.0.0.1:{port} within {timeout}s")


class Versitygw:
    """A versitygw posix server in its own directory, set up as versitygw's
    own CI sets it up for the suite (root keys, --iam-dir, optionally
    --versioning-dir)."""

    def __init__(self, binary: str, base: Path, *, versioning: bool) -> None:
        self.base = base
        for sub in ("data", "iam", "versions"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        args = [binary, "--port", f"127.0.0.1:{self.port}", "--quiet", "--iam-dir", str(base / "iam"), "posix"]
        if versioning:
            args += ["--versioning-dir", str(base / "versions")]
        args.append(str(base / "data"))
        env = _clean_env(base / "home")
        env.update(ROOT_ACCESS_KEY=BACKEND_ACCESS_KEY, ROOT_SECRET_KEY=BACKEND_SECRET_KEY)
        self.log_path = base / "versitygw.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_port(self.port, self.proc, self.log_path)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def entry(self) -> Dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "region": REGION,
            "scheme": "http",
            "addressing_style": "path",
            "access_key": BACKEND_ACCESS_KEY,
            "secret_key": BACKEND_SECRET_KEY,
        }

    @property
    def access_key(self) -> str:
        return BACKEND_ACCESS_KEY

    @property
    def secret_key(self) -> str:
        return BACKEND_SECRET_KEY


class SeaweedBackend:
    """A SeaweedFS S3 gateway (tests/seaweed.py starts it: ``weed server
    -s3`` with one admin identity, no anonymous one, buckets not created on
    upload), used like Versitygw: the suite's endpoint and keys direct, a
    cos_map entry (``upload_framing = "plain"``, which SeaweedFS needs) for
    the proxy. SeaweedFS has no versioning directory to set up: it is run
    with the plain configuration only."""

    def __init__(self) -> None:
        # Imported here: tests/seaweed.py needs boto3 (the build venv has
        # it), which a versitygw-only run does not.
        from seaweed import SEAWEED_ACCESS_KEY, SEAWEED_SECRET_KEY, start_seaweedfs

        self.access_key = SEAWEED_ACCESS_KEY
        self.secret_key = SEAWEED_SECRET_KEY
        self._stack = contextlib.ExitStack()
        self._server = self._stack.enter_context(start_seaweedfs())
        self.endpoint_url = self._server.endpoint_url

    def stop(self) -> None:
        self._stack.close()

    def empty_all(self) -> bool:
        """Deletes every bucket with everything in it (uploads, versions);
        False when one is left (an object under a lock, an error)."""
        client = self._server.client()
        try:
            for bucket in client.list_buckets().get("Buckets", []):
                name = bucket["Name"]
                for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
                    for up in page.get("Uploads", []):
                        client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
                for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                        client.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"],
                                             BypassGovernanceRetention=True)
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                    for o in page.get("Contents", []):
                        client.delete_object(Bucket=name, Key=o["Key"], BypassGovernanceRetention=True)
                client.delete_bucket(Bucket=name)
            return not client.list_buckets().get("Buckets")
        except Exception:  # any failure: the caller starts a fresh server
            return False

    def entry(self) -> Dict[str, Any]:
        return self._server.entry()


Backend = Union[Versitygw, SeaweedBackend]
BACKENDS = ("versitygw", "seaweedfs")


def start_backend(kind: str, binary: str, base: Path, *, versioning: bool) -> Backend:
    """A fresh backend server of ``kind`` (one of BACKENDS)."""
    if kind == "versitygw":
        return Versitygw(binary, base, versioning=versioning)
    if kind == "seaweedfs":
        if versioning:
            raise ValueError("the SeaweedFS configuration runs without --versioning")
        return SeaweedBackend()
    raise ValueError(f"unknown backend {kind!r} (one of {', '.join(BACKENDS)})")


def start_proxy(backend: Backend) -> Any:
    """The proxy in front of ``backend``: one "*" entry, the tests' client
    keystore. Returns the started ProxyServer."""
    from object_storage_proxy import ProxyServer, ProxyServerConfig

    server = ProxyServer(
        ProxyServerConfig(
            {"*": backend.entry()},
            hmac_keystore={CLIENT_ACCESS_KEY: CLIENT_SECRET_KEY},
            http_port=0,
            bind_address="127.0.0.1",
            log_level="error",  # a line per request would bury the report
        )
    )
    server.start()
    return server


# --------------------------------------------------------------------------
# running the suite

_DROPPED_PREFIXES = ("AWS_", "VGW_", "ROOT_")


def _clean_env(home: Path) -> Dict[str, str]:
    """The suite's environment: no AWS_* of whoever runs it (AWS_CA_BUNDLE
    alone makes the suite's SDK refuse to start), no HTTP proxies."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROPPED_PREFIXES) and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(HOME=str(home), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", LC_ALL="C.UTF-8")
    return env


def _workdir(binary: str, base: Path) -> Path:
    """A directory holding ./versitygw (the suite runs it for admin calls)."""
    work = base / "work"
    work.mkdir(parents=True, exist_ok=True)
    link = work / "versitygw"
    if not link.exists():
        link.symlink_to(os.path.abspath(binary))
    return work


def _run(args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float) -> Tuple[int, str]:
    proc = subprocess.Popen(
        list(args), cwd=str(cwd), env=dict(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -1, out.decode(errors="replace") + f"\npanic: the suite did not finish within {timeout:.0f}s\n"
    return proc.returncode, out.decode(errors="replace")


def run_suite(
    binary: str,
    endpoint: str,
    access_key: str,
    secret_key: str,
    base: Path,
    *,
    label: str,
    group: str = "full-flow",
    versioning: bool = False,
    parallel: bool = True,
    log: Optional[Path] = None,
) -> RunResult:
    """Runs one group of the suite at ``endpoint`` and parses it."""
    env = _clean_env(base / "home")
    work = _workdir(binary, base)
    common = [os.path.abspath(binary), "test", "-a", access_key, "-s", secret_key, "-e", endpoint]
    args = common + [group] + (["--versioning-enabled"] if versioning else []) + (["--parallel"] if parallel else [])
    started = time.monotonic()
    code, text = _run(args, work, env, RUN_TIMEOUT)
    result = parse_output(text, label)
    result.returncode = code
    result.seconds = time.monotonic() - started
    if log is not None:
        log.write_text(text)
    return result


# --------------------------------------------------------------------------
# comparing


@dataclass
class Comparison:
    direct: RunResult
    proxy: RunResult
    # passed direct, not through the proxy, and not explained: each fails the run
    regressions: Dict[str, Outcome]
    # passed direct, not through the proxy, in DELIBERATE (by design)
    deliberate: Dict[str, Outcome]
    # passed direct, not through the proxy, in KNOWN (not by design, to fix)
    known: Dict[str, Outcome]
    # listed in DELIBERATE or KNOWN but passed through the proxy (the list is stale)
    stale: List[str]
    # did not pass direct (nothing to compare against)
    not_direct: List[str]
    # failed in the parallel run, passed when run alone (see _retry_alone)
    flaky: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.regressions and bool(self.direct.names(PASS))

    def passed_both(self) -> int:
        return sum(1 for n in self.direct.names(PASS) if self.proxy.outcomes.get(n, Outcome(FAIL)).status == PASS)


def compare(
    direct: RunResult, proxy: RunResult,
    deliberate: Mapping[str, str] = DELIBERATE, known: Mapping[str, str] = KNOWN,
    stale_checked: Optional[Iterable[str]] = None,
) -> Comparison:
    regressions: Dict[str, Outcome] = {}
    by_design: Dict[str, Outcome] = {}
    to_fix: Dict[str, Outcome] = {}
    for name in direct.names(PASS):
        got = proxy.outcomes.get(name, Outcome(CRASH, "never ran through the proxy"))
        if got.status == PASS:
            continue
        if name in deliberate:
            by_design[name] = got
        elif name in known:
            to_fix[name] = got
        else:
            regressions[name] = got
    listed = {**deliberate, **known} if stale_checked is None else set(stale_checked)
    stale = sorted(n for n in listed if proxy.outcomes.get(n, Outcome(FAIL)).status == PASS)
    not_direct = sorted(n for n, o in direct.outcomes.items() if o.status != PASS)
    return Comparison(direct, proxy, regressions, by_design, to_fix, stale, not_direct)


def report(c: Comparison, title: str) -> str:
    d, p = c.direct.counts(), c.proxy.counts()
    lines = [
        f"== {title}",
        f"direct:      {len(c.direct.outcomes)} tests, {d[PASS]} passed, {d[FAIL]} failed, {d[SKIP]} skipped,"
        f" {d[CRASH]} crashed ({c.direct.seconds:.0f} s)",
        f"proxy:       {len(c.proxy.outcomes)} tests, {p[PASS]} passed, {p[FAIL]} failed, {p[SKIP]} skipped,"
        f" {p[CRASH]} crashed ({c.proxy.seconds:.0f} s"
        + (f"; {len(c.proxy.rerun)} re-run one by one after the suite crashed" if c.proxy.rerun else "")
        + ")",
        f"passed direct and through the proxy: {c.passed_both()} of {d[PASS]}",
        f"passed direct, not through the proxy, by design (DELIBERATE): {len(c.deliberate)}",
        f"passed direct, not through the proxy, known and to fix (KNOWN): {len(c.known)}",
        f"passed direct, not through the proxy, unexplained (REGRESSIONS): {len(c.regressions)}",
    ]
    for name, o in sorted(c.regressions.items()):
        lines.append(f"  REGRESSION {name}: {o.status}: {o.detail[:300]}")
    if c.stale:
        lines.append(f"listed as a difference but passing through the proxy (update the lists): {', '.join(c.stale)}")
    if c.flaky:
        lines.append(f"failed through the proxy in the parallel run, passed alone: {', '.join(c.flaky)}")
    if len(c.not_direct) > 50:  # SeaweedFS fails hundreds: the names are in --json
        lines.append(f"did not pass direct: {len(c.not_direct)} tests (their names: --json)")
    elif c.not_direct:
        lines.append(f"did not pass direct: {', '.join(c.not_direct)}")
    return "\n".join(lines)


def markdown(comparisons: Sequence[Tuple[str, Comparison]]) -> str:
    """The numbers and the reasons, for docs/compatibility.md."""
    out = ["| configuration | tests | passed direct | passed through the proxy | by design | known, to fix | unexplained"
           " | failed direct | passed through the proxy only |",
           "|---|---|---|---|---|---|---|---|---|"]
    for title, c in comparisons:
        only = sum(1 for n, o in c.proxy.outcomes.items() if o.status == PASS and n in c.not_direct)
        out.append(
            f"| {title} | {len(c.direct.outcomes)} | {len(c.direct.names(PASS))} | {c.passed_both()} |"
            f" {len(c.deliberate)} | {len(c.known)} | {len(c.regressions)} | {len(c.not_direct)} | {only} |"
        )
    for heading, groups, attr in (
        ("By design", DELIBERATE_GROUPS + SEAWEEDFS_DELIBERATE_GROUPS, "deliberate"),
        ("Known, to fix", KNOWN_GROUPS + SEAWEEDFS_KNOWN_GROUPS, "known"),
    ):
        seen = {n for _, c in comparisons for n in getattr(c, attr)}
        out += ["", f"{heading}:", ""]
        for reason, names in groups:
            hit = [n for n in names if n in seen]
            if hit:
                out.append(f"- {reason} ({len(hit)}): " + ", ".join(f"`{n}`" for n in hit))
    return "\n".join(out)


# --------------------------------------------------------------------------
# one configuration, both ways


def run_both(
    binary: str, workdir: Path, *, group: str = "full-flow", versioning: bool = False, backend: str = "versitygw",
    test_list: Optional[Sequence[str]] = None,
) -> Comparison:
    """The suite direct at one backend server and through the proxy at
    another of the same kind, both at once (they share nothing). ``binary``
    is versitygw's in any case: it is the suite.

    When a run crashed (the suite panics on a nil pointer in some tests
    against SeaweedFS, direct too), the tests it never finished are run one
    by one. Their names are the other run's, or ``test_list``, or, when both
    runs crashed, those of a run direct at a fresh versitygw (which the
    suite runs to the end)."""
    gw_direct = start_backend(backend, binary, workdir / "direct-gw", versioning=versioning)
    gw_proxied = None
    proxy = None
    try:
        gw_proxied = start_backend(backend, binary, workdir / "proxied-gw", versioning=versioning)
        proxy = start_proxy(gw_proxied)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            fut_direct = pool.submit(
                run_suite, binary, gw_direct.endpoint_url, gw_direct.access_key, gw_direct.secret_key,
                workdir / "direct", label="direct", group=group, versioning=versioning,
                log=workdir / "direct.log",
            )
            fut_proxy = pool.submit(
                run_suite, binary, proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY,
                workdir / "proxy", label="proxy", group=group, versioning=versioning,
                log=workdir / "proxy.log",
            )
            direct = fut_direct.result()
            through = fut_proxy.result()
    finally:
        if proxy is not None:
            proxy.stop()
        gw_direct.stop()
        if gw_proxied is not None:
            gw_proxied.stop()
    if direct.crashed or through.crashed:
        names = list(test_list or [])
        if not names:
            if direct.crashed and through.crashed:
                names = _list_tests(binary, workdir, group, versioning)
            else:
                names = list((through if direct.crashed else direct).outcomes)
        # Run what the crash hid, both ways at once.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            jobs = [
                pool.submit(_fill_after_crash, binary, workdir, run, names, versioning, backend, run is through)
                for run in (direct, through) if run.crashed
            ]
            for job in jobs:
                job.result()
    deliberate, known = allowed_for(backend)
    c = compare(direct, through, deliberate, known, stale_checked_for(backend))
    return _retry_alone(binary, workdir, c, versioning, backend)


def _list_tests(binary: str, workdir: Path, group: str, versioning: bool) -> List[str]:
    """The group's test names, from a run direct at a fresh versitygw."""
    gw = Versitygw(binary, workdir / "list-gw", versioning=versioning)
    try:
        listing = run_suite(
            binary, gw.endpoint_url, gw.access_key, gw.secret_key, workdir / "list",
            label="list", group=group, versioning=versioning, log=workdir / "list.log",
        )
    finally:
        gw.stop()
    if listing.crashed or not listing.outcomes:
        raise RuntimeError(f"could not list the suite's tests: the run at versitygw crashed ({listing.crash_text})")
    return list(listing.outcomes)


def _fill_after_crash(
    binary: str, workdir: Path, run: RunResult, names: Sequence[str], versioning: bool,
    backend: str = "versitygw", through_proxy: bool = True,
) -> RunResult:
    """Runs alone each of ``names`` that the crashed ``run`` never
    finished: the tests in flight when it died get their own result, the
    one that killed it dies again alone."""
    missing = [n for n in names if n not in run.outcomes or run.outcomes[n].status == CRASH]
    started = time.monotonic()
    with AloneRunner(binary, workdir, versioning, backend, through_proxy=through_proxy) as alone:
        for name in missing:
            run.outcomes[name] = alone.run(name)
            run.rerun.append(name)
    run.seconds += time.monotonic() - started
    return run


def _retry_alone(binary: str, workdir: Path, c: Comparison, versioning: bool, backend: str = "versitygw") -> Comparison:
    """Runs alone, once, each test that failed through the proxy without a
    listed reason. A test that then passes is timing-dependent in the
    parallel run (a hundred tests at once on a small machine), not a
    difference of the proxy: it counts as passed and is named in
    ``flaky``; one that fails again stays a regression."""
    started = time.monotonic()
    with AloneRunner(binary, workdir, versioning, backend) as alone:
        for name in sorted(c.regressions):
            again = alone.run(name)
            c.proxy.rerun.append(name)
            if again.status == PASS:
                c.flaky.append(name)
                c.proxy.outcomes[name] = again
                del c.regressions[name]
            else:
                c.regressions[name] = again
    c.proxy.seconds += time.monotonic() - started
    return c


class AloneRunner:
    """Runs tests one by one (the suite's single-test command), direct or
    through the proxy. The suite numbers its buckets from 1 in every
    process, and a failed test may leave buckets behind, so each test gets
    an empty backend: a fresh versitygw (it starts at once), or the same
    SeaweedFS (13 s to start) emptied of every bucket, a fresh one when it
    cannot be emptied (an object under a lock, say)."""

    def __init__(self, binary: str, workdir: Path, versioning: bool, backend: str, *, through_proxy: bool = True) -> None:
        self.binary = binary
        self.workdir = workdir
        self.versioning = versioning
        self.backend = backend
        self.through_proxy = through_proxy
        self.log = workdir / ("proxy.log" if through_proxy else "direct.log")
        self._gw: Optional[Backend] = None
        self._proxy: Any = None
        self._base: Optional[Path] = None

    def __enter__(self) -> "AloneRunner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        if self._gw is not None:
            self._gw.stop()
            self._gw = None

    def _ready(self) -> Tuple[Path, str, str, str]:
        reuse = isinstance(self._gw, SeaweedBackend) and self._gw.empty_all()
        if not reuse:
            self._stop()
            self._base = Path(tempfile.mkdtemp(prefix="alone-", dir=self.workdir))
            self._gw = start_backend(self.backend, self.binary, self._base / "gw", versioning=self.versioning)
            if self.through_proxy:
                self._proxy = start_proxy(self._gw)
        assert self._gw is not None and self._base is not None
        if self.through_proxy:
            return self._base, self._proxy.endpoint_url, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY
        return self._base, self._gw.endpoint_url, self._gw.access_key, self._gw.secret_key

    def run(self, name: str) -> Outcome:
        base, endpoint, access_key, secret_key = self._ready()
        common = [os.path.abspath(self.binary), "test", "-a", access_key, "-s", secret_key, "-e", endpoint]
        _, out = _run(common + [name] + (["--versioning-enabled"] if self.versioning else []),
                      _workdir(self.binary, base), _clean_env(base / "home"), SINGLE_TIMEOUT)
        if not isinstance(self._gw, SeaweedBackend):
            self._stop()
        with open(self.log, "a") as log:
            log.write(out)
        one = parse_output(out, "proxy" if self.through_proxy else "direct")
        return one.outcomes.get(name, Outcome(CRASH, one.crash_text or "no result when run alone"))


def _run_alone(binary: str, workdir: Path, name: str, versioning: bool, backend: str = "versitygw") -> Outcome:
    """One test by name through a fresh backend and proxy."""
    with AloneRunner(binary, workdir, versioning, backend) as alone:
        return alone.run(name)


CONFIGURATIONS: Dict[str, Dict[str, Any]] = {
    "full-flow": {"group": "full-flow", "versioning": False, "backend": "versitygw"},
    "full-flow-versioning": {"group": "full-flow", "versioning": True, "backend": "versitygw"},
    "seaweedfs-full-flow": {"group": "full-flow", "versioning": False, "backend": "seaweedfs"},
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versitygw", default=os.environ.get("OSP_VERSITYGW", "build/bin/versitygw"))
    parser.add_argument("--config", action="append", choices=sorted(CONFIGURATIONS),
                        help="configurations to run (default: all)")
    parser.add_argument("--backend", action="append", choices=BACKENDS,
                        help="run only the configurations in front of this backend (default: all); "
                        "seaweedfs needs OSP_SEAWEEDFS (build/bin/weed)")
    parser.add_argument("--markdown", type=Path, help="write the docs/compatibility.md table here")
    parser.add_argument("--json", type=Path, help="write every test's outcome here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    if not (os.path.isfile(args.versitygw) and os.access(args.versitygw, os.X_OK)):
        print(f"versitygw not found at {args.versitygw} (`make conformance` builds it)", file=sys.stderr)
        return 2
    results: List[Tuple[str, Comparison]] = []
    workdir = Path(tempfile.mkdtemp(prefix="osp-conformance-"))
    try:
        names = [n for n in args.config or list(CONFIGURATIONS)
                 if not args.backend or CONFIGURATIONS[n]["backend"] in args.backend]
        if not names:
            print("no configuration matches --config and --backend", file=sys.stderr)
            return 2
        # Each (group, versioning)'s test list, from a run that finished:
        # a later configuration whose runs crash needs it (see run_both).
        lists: Dict[Tuple[str, bool], List[str]] = {}
        for name in names:
            conf = CONFIGURATIONS[name]
            key = (conf["group"], conf["versioning"])
            c = run_both(args.versitygw, workdir / name, test_list=lists.get(key), **conf)
            if not c.direct.crashed:
                lists.setdefault(key, list(c.direct.outcomes))
            results.append((name, c))
            print(report(c, name), flush=True)
    finally:
        if args.keep:
            print(f"logs in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.markdown:
        args.markdown.write_text(markdown(results) + "\n")
    if args.json:
        args.json.write_text(json.dumps({
            name: {
                "direct": {n: o.status for n, o in c.direct.outcomes.items()},
                "proxy": {n: [o.status, o.detail] for n, o in c.proxy.outcomes.items()},
                "deliberate": {n: allowed_for(CONFIGURATIONS[name]["backend"])[0][n] for n in c.deliberate},
                "known": {n: allowed_for(CONFIGURATIONS[name]["backend"])[1][n] for n in c.known},
                "not_direct": c.not_direct,
                "regressions": sorted(c.regressions),
            }
            for name, c in results
        }, indent=1, sort_keys=True))
    return 0 if all(c.ok and not c.stale for _, c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
