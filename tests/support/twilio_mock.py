"""A Prism mock of Twilio's own OpenAPI spec on loopback, and an HTTP client that records calls."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn
from urllib.parse import parse_qs, urlsplit

from twilio.http.response import Response
from twilio.rest import Client

from store.twilio_rest import DEFAULT_TIMEOUT_SECONDS, BaseUrlHttpClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Twilio's own twilio-oai specs, as shipped (MIT) in this npm package's twilio-oai/spec/json/.
TWILIO_OAI_PACKAGE = "@twilio-alpha/mcp"
TWILIO_OAI_VERSION = "0.7.0"
TWILIO_OAI_INTEGRITY = (
    "sha512-YsUde1pMXwqHm8Cvq9JdtsyvclVCC/f/V+FmxTNN04u5Qt5aapkbQgcfqBYQ0xcmvATBNswgPDo3MPVaCtZK8Q=="
)
TWILIO_OAI_MEMBER = "package/twilio-oai/spec/json/{name}"
TWILIO_SPEC_NAMES = ("twilio_api_v2010.json", "twilio_taskrouter_v1.json")
TWILIO_OAI_PREFIX = PROJECT_ROOT / ".tools" / "twilio-oai" / TWILIO_OAI_VERSION
TWILIO_SPEC = TWILIO_OAI_PREFIX / "twilio_api_v2010.json"
PRISM_PACKAGE = "@stoplight/prism-cli"
PRISM_VERSION = "5.16.0"
PRISM_PREFIX = PROJECT_ROOT / ".tools" / "prism"
LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TEST_AUTH_TOKEN = "test-auth-token"


class PrismUnavailable(RuntimeError):
    """Prism could not be installed or started."""


class PrismPortTaken(PrismUnavailable):
    """Prism could not bind the port it was given."""


def ensure_prism(prefix: Path = PRISM_PREFIX) -> Path:
    """Return the prism executable, installing the pinned prism-cli under `prefix` if needed."""
    executable = prefix / "node_modules" / ".bin" / "prism"
    if _installed_version(prefix) == PRISM_VERSION and executable.exists():
        return executable
    npm = _npm(f"install {PRISM_PACKAGE}@{PRISM_VERSION} into {prefix}")
    prefix.mkdir(parents=True, exist_ok=True)
    # Parallel test sessions share the folder; only one of them runs npm.
    with open(prefix / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(prefix) != PRISM_VERSION or not executable.exists():
            command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix)]
            result = subprocess.run(
                [*command, f"{PRISM_PACKAGE}@{PRISM_VERSION}"],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                raise PrismUnavailable(
                    f"`npm install {PRISM_PACKAGE}@{PRISM_VERSION}` failed "
                    f"({result.returncode}):\n{result.stderr[-2000:]}"
                )
    if not executable.exists():
        raise PrismUnavailable(f"npm install finished but {executable} is missing")
    return executable


def _npm(purpose: str) -> str:
    """Return the npm executable, or raise PrismUnavailable saying what it was needed for."""
    npm = shutil.which("npm")
    if npm is None:
        raise PrismUnavailable(
            f"npm not found: install Node.js with npm (sudo apt-get install nodejs npm) so the "
            f"tests can {purpose}"
        )
    return npm


def ensure_twilio_spec(
    name: str = "twilio_api_v2010.json", prefix: Path = TWILIO_OAI_PREFIX
) -> Path:
    """Return one of Twilio's OpenAPI specs, unpacked from the pinned npm package on first use."""
    if name not in TWILIO_SPEC_NAMES:
        raise ValueError(f"{name} is not one of the specs unpacked: {TWILIO_SPEC_NAMES}")
    spec = prefix / name
    if spec.is_file():
        return spec
    package = f"{TWILIO_OAI_PACKAGE}@{TWILIO_OAI_VERSION}"
    npm = _npm(f"fetch Twilio's OpenAPI specs ({package}) into {prefix}")
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not spec.is_file():
            with tempfile.TemporaryDirectory(dir=prefix) as scratch:
                tarball = _npm_pack(npm, package, Path(scratch))
                _unpack_specs(tarball, prefix)
    return spec


def _npm_pack(npm: str, package: str, folder: Path) -> Path:
    """Download `package`'s tarball into `folder` with `npm pack` and check it is the pinned one."""
    result = subprocess.run(
        [npm, "pack", "--ignore-scripts", "--pack-destination", str(folder), package],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise PrismUnavailable(
            f"`npm pack {package}` failed ({result.returncode}):\n{result.stderr[-2000:]}"
        )
    [tarball] = folder.glob("*.tgz")
    digest = hashlib.sha512(tarball.read_bytes()).digest()
    integrity = "sha512-" + base64.b64encode(digest).decode()
    if integrity != TWILIO_OAI_INTEGRITY:
        raise PrismUnavailable(f"{package} is not the tarball pinned here (integrity {integrity})")
    return tarball


def _unpack_specs(tarball: Path, prefix: Path) -> None:
    """Copy the specs out of the package's tarball; each appears whole or not at all."""
    with tarfile.open(tarball) as archive:
        for name in TWILIO_SPEC_NAMES:
            try:
                source = archive.extractfile(TWILIO_OAI_MEMBER.format(name=name))
            except KeyError:
                source = None
            if source is None:
                raise PrismUnavailable(f"{name} is not a file in {tarball.name}")
            partial = prefix / f".{name}.partial"
            with source, open(partial, "wb") as target:
                shutil.copyfileobj(source, target)
            os.replace(partial, prefix / name)


def _installed_version(prefix: Path) -> str | None:
    """Return the prism-cli version installed under `prefix`, if any."""
    manifest = prefix / "node_modules" / PRISM_PACKAGE / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class PrismMock:
    """A `prism mock` subprocess serving Twilio's 2010-04-01 spec on 127.0.0.1."""

    def __init__(self, executable: Path, spec: Path = TWILIO_SPEC) -> None:
        """Remember what to run; `start()` runs it."""
        self.executable = executable
        self.spec = spec
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def started(cls, spec: Path | None = None) -> PrismMock:
        """Install prism (and fetch the spec) if needed, start it on a free port once it answers."""
        executable = ensure_prism()
        if spec is None:
            spec = ensure_twilio_spec()
        attempts_left = 3
        while True:
            mock = cls(executable, spec)
            try:
                mock.start()
                return mock
            except PrismPortTaken:
                # Another process took the port between free_port() and prism's bind.
                attempts_left -= 1
                if not attempts_left:
                    raise
            except BaseException:
                mock.close()
                raise

    @property
    def base_url(self) -> str:
        """Return the mock's URL, standing in for https://api.twilio.com."""
        if self.port is None:
            raise RuntimeError("Prism is not running")
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start prism and wait until it answers HTTP."""
        if not self.spec.is_file():
            raise PrismUnavailable(f"Twilio's OpenAPI spec is missing: {self.spec}")
        if self._log is None or self._log.closed:
            self._log = tempfile.TemporaryFile()
        self.port = free_port()
        # No --errors: Twilio's own list examples break its schema and would come back as 500s;
        # request validation (the 422s) works without it.
        self._process = subprocess.Popen(
            [str(self.executable), "mock", "-h", LOOPBACK, "-p", str(self.port), str(self.spec)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._fail(f"prism exited with {self._process.returncode}")
            if self._answers():
                return
            time.sleep(0.1)
        self._fail(f"prism did not answer within {timeout:.0f} s")

    def _fail(self, reason: str) -> NoReturn:
        """Stop prism and raise PrismUnavailable with the end of its output."""
        tail = self.log_tail()
        self.close()
        error = PrismPortTaken if "EADDRINUSE" in tail else PrismUnavailable
        raise error(f"{reason}:\n{tail}")

    def _answers(self) -> bool:
        """Return whether prism answers a GET (any status) on its port."""
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=1)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            connection.close()

    def log_tail(self, size: int = 4000) -> str:
        """Return the end of prism's output, for error messages."""
        if self._log is None or self._log.closed:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-size:]

    def close(self) -> None:
        """Stop prism: terminate, wait, then kill if it lingers."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.port = None
        if self._log is not None and not self._log.closed:
            self._log.close()

    def __enter__(self) -> PrismMock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class RecordedRequest:
    """One REST call as it went over the wire, and how the mock answered it."""

    method: str
    path: str
    params: dict[str, list[str]]
    status: int
    body: str

    @property
    def accepted(self) -> bool:
        """Return whether the answer was 2xx."""
        return 200 <= self.status < 300


class RecordingHttpClient(BaseUrlHttpClient):
    """A BaseUrlHttpClient for the mock that records every request and the answer it got."""

    def __init__(
        self, base_url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, **kwargs: Any
    ) -> None:
        """Hook requests so the form body is recorded exactly as it was encoded."""
        super().__init__(base_url, timeout=timeout, **kwargs)
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._wire = threading.local()
        self.request_hooks.setdefault("response", []).append(self._capture_wire)

    def _capture_wire(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """Keep the body requests actually sent, for this thread's request()."""
        self._wire.body = response.request.body
        return response

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send the request as BaseUrlHttpClient does, then record it."""
        self._wire.body = None
        lists = {key for key, value in (data or {}).items() if isinstance(value, list | tuple)}
        if lists:
            # Twilio (like OpenAPI's default `explode: true`) takes a list as repeated keys,
            # `Key=a&Key=b`, but Prism only reads `Key[]=a&Key[]=b` as an array and answers 422
            # "must be array" otherwise (stoplightio/prism#2473). Rename for the mock only.
            data = {f"{key}[]" if key in lists else key: value for key, value in data.items()}
        response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        body = self._wire.body or ""
        if isinstance(body, bytes):
            body = body.decode()
        recorded = RecordedRequest(
            method=method.upper(),
            path=urlsplit(url).path,
            params={
                key.removesuffix("[]") if key.removesuffix("[]") in lists else key: values
                for key, values in parse_qs(body, keep_blank_values=True).items()
            },
            status=response.status_code,
            body=response.text,
        )
        with self._lock:
            self.requests.append(recorded)
        return response

    def accepted(self) -> list[RecordedRequest]:
        """Return the requests answered 2xx."""
        with self._lock:
            return [r for r in self.requests if r.accepted]

    def refused(self) -> list[RecordedRequest]:
        """Return the requests answered 4xx."""
        with self._lock:
            return [r for r in self.requests if 400 <= r.status < 500]

    def assert_all_accepted(self) -> None:
        """Fail, showing each answer body (Prism's validation text), unless all were 2xx."""
        with self._lock:
            failed = [r for r in self.requests if not r.accepted]
        if failed:
            lines = [
                f"{r.method} {r.path} {r.params} -> {r.status}\n{_reasons(r.body)}  {r.body}"
                for r in failed
            ]
            raise AssertionError("Twilio's spec refused requests:\n" + "\n".join(lines))


def _reasons(body: str) -> str:
    """Return Prism's per-field validation messages in `body`, one indented line each."""
    try:
        problems = json.loads(body).get("validation") or []
    except (ValueError, AttributeError):
        return ""
    return "".join(f"  {p.get('message')}\n" for p in problems if isinstance(p, dict))


@dataclass(frozen=True)
class TwilioRest:
    """A real Twilio client wired to the mock, and the recording HTTP client under it."""

    client: Client
    http: RecordingHttpClient
