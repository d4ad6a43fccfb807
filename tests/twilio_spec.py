"""Twilio's OpenAPI description of Sync v1, obtained at test time (never committed: license).

It ships in the npm package `@twilio/cli-core` as
`package/src/services/twilio-api/twilio_sync_v1.json`. `load_twilio_sync_v1()` runs
`npm pack @twilio/cli-core@9.0.0` once, extracts that one file into a cache directory
(`$SYNC_SDK_CACHE_DIR`, else `$XDG_CACHE_HOME/sync-sdk`, else `~/.cache/sync-sdk`) and checks
its SHA-256, so later runs work offline. Without npm or the registry it raises
`TwilioSpecUnavailable` with the reason: callers let it fail the test (never skip)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

NPM_PACKAGE = "@twilio/cli-core"
NPM_VERSION = "9.0.0"
SPEC_MEMBER = "package/src/services/twilio-api/twilio_sync_v1.json"
SPEC_SHA256 = "0360fe39df8da59ebecefefbeb312aaae2d6e23faf783020486e3a743f499e92"
NPM_TIMEOUT = 240.0


class TwilioSpecUnavailable(RuntimeError):
    """Twilio's Sync v1 OpenAPI file could not be obtained."""


def cache_dir() -> Path:
    explicit = os.environ.get("SYNC_SDK_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sync-sdk"


def spec_path() -> Path:
    return cache_dir() / f"twilio-cli-core-{NPM_VERSION}" / "twilio_sync_v1.json"


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _npm_pack(workdir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise TwilioSpecUnavailable(
            f"`npm` is not on PATH; it is needed once to fetch {NPM_PACKAGE}@{NPM_VERSION} "
            f"(Twilio's OpenAPI files) into {spec_path().parent}"
        )
    cmd = [npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--loglevel=error"]
    try:
        done = subprocess.run(
            cmd, cwd=workdir, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise TwilioSpecUnavailable(
            f"`{' '.join(cmd[1:])}` did not finish in {NPM_TIMEOUT:g} s (npm registry unreachable?)"
        ) from None
    tarballs = sorted(workdir.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        raise TwilioSpecUnavailable(
            f"`npm {' '.join(cmd[1:])}` failed with exit code {done.returncode} "
            f"(npm registry unreachable?):\n{(done.stderr or done.stdout).strip()[-2000:]}"
        )
    return tarballs[0]


def _extract(tarball: Path) -> bytes:
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            member = tar.extractfile(SPEC_MEMBER)
            if member is None:
                raise KeyError(SPEC_MEMBER)
            return member.read()
    except (KeyError, tarfile.TarError, OSError) as exc:
        raise TwilioSpecUnavailable(
            f"{tarball.name} has no readable {SPEC_MEMBER}: {exc!r}"
        ) from None


def fetch_spec_bytes() -> bytes:
    """The raw spec file: from the cache, else from npm (then cached)."""
    target = spec_path()
    if target.is_file():
        raw = target.read_bytes()
        if _sha256(raw) == SPEC_SHA256:
            return raw
    with tempfile.TemporaryDirectory(prefix="twilio-spec-") as tmp:
        raw = _extract(_npm_pack(Path(tmp)))
    digest = _sha256(raw)
    if digest != SPEC_SHA256:
        raise TwilioSpecUnavailable(
            f"{SPEC_MEMBER} from {NPM_PACKAGE}@{NPM_VERSION} has SHA-256 {digest}, "
            f"expected {SPEC_SHA256}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with io.FileIO(fd, "wb") as out:
        out.write(raw)
    os.chmod(tmp_name, 0o644)
    os.replace(tmp_name, target)
    return raw


def load_twilio_sync_v1() -> dict[str, Any]:
    """Twilio's Sync v1 OpenAPI document as a dict (raises TwilioSpecUnavailable)."""
    spec: dict[str, Any] = json.loads(fetch_spec_bytes())
    return spec
