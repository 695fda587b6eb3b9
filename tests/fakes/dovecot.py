"""A real IMAP server for tests: Debian's dovecot, started with its own configuration in a temp directory.

    with Dovecot() as server:              # 127.0.0.1, a free port, plain IMAP (ssl = no)
        server.user, server.password       # one passwd-file account; its maildir is in a temp directory
        server.append(raw_bytes)           # put an unseen mail into INBOX (IMAP APPEND)

    with Dovecot(tls=(cert, key)) as server:  # TLS with that certificate (PEM files, e.g. tests/fakes/tls.py):
        server.port                        # plain IMAP that offers STARTTLS (the helpers here stay plain)
        server.ssl_port                    # implicit TLS (IMAPS), on a second free port

Runs as the current user (no root needed): no chroot for the login processes, the internal and login users
are whoever runs the tests. Under root (dovecot's login processes refuse root) Debian's own unprivileged users
dovenull and dovecot serve, so the temp directory is made readable to them. `available()`: is it installed?
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.fakes.smtp_server import LOCALHOST, free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

__all__ = ["DOVECOT", "Dovecot", "available", "quoted"]


def available() -> bool:
    return os.access(DOVECOT, os.X_OK)


class Dovecot:
    """dovecot -F in the foreground of a child process, stopped (and waited for) on exit."""

    def __init__(
        self, *, user: str = "support", password: str = "imap-pass-1", tls: tuple[Path, Path] | None = None
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
        if os.getuid() == 0:
            self.root.chmod(0o755)
        self.user = user
        self.password = password
        self.host = LOCALHOST
        self.port = free_port()
        self.tls = tls
        self.ssl_port = free_port() if tls else 0  # 0: dovecot opens no IMAPS listener
        self._process: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        me = pwd.getpwuid(os.getuid()).pw_name
        # Dovecot's login processes refuse to run as root: under root, Debian's unprivileged users serve.
        login_user = "dovenull" if os.getuid() == 0 else me
        internal_user = "dovecot" if os.getuid() == 0 else me
        # Mail is never accessed as root either: under root the mailbox belongs to the dovecot user.
        owner = pwd.getpwnam(internal_user)
        uid, gid = owner.pw_uid, owner.pw_gid
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.root / sub, uid, gid)
        passwd = self.root / "passwd"
        passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        passwd.chmod(0o644)  # a test account's password; dovecot's auth process runs as another user under root
        # ssl = yes: STARTTLS on the plain listener and IMAPS on ssl_port; plain LOGIN stays allowed for the helpers.
        ssl = f"ssl = yes\nssl_cert = <{self.tls[0]}\nssl_key = <{self.tls[1]}" if self.tls else "ssl = no"
        config = self.root / "dovecot.conf"
        config.write_text(
            f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = {self.host}
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {min(uid, 500)}
first_valid_gid = {min(gid, 500)}
mail_location = maildir:{self.root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.ssl_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0600
  }}
}}
"""
        )
        return config

    def start(self) -> Dovecot:
        config = self._config()
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self._process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                with imaplib.IMAP4(self.host, self.port, timeout=2) as client:
                    client.noop()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("dovecot did not start listening in time")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a mail into `folder`, unseen."""
        client = self.client()
        try:
            client.create(quoted(folder))  # "already exists" for INBOX: harmless
            status, detail = client.append(quoted(folder), "", imaplib.Time2Internaldate(time.time()), raw)
            assert status == "OK", detail
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> list[bytes]:
        """The flags of every mail in `folder`, in order."""
        client = self.client()
        try:
            client.select(quoted(folder))
            status, data = client.fetch("1:*", "(FLAGS)")
            return [item for item in data if isinstance(item, bytes)] if status == "OK" else []
        finally:
            client.logout()

    def logins(self) -> list[str]:
        """dovecot's log line of each successful login, in order: "..., TLS, ..." when it was over TLS (implicit
        or STARTTLS), "..., secured, ..." for plain IMAP from this host."""
        return [line for line in self.log_text().splitlines() if "imap-login: Info: Login:" in line]

    def log_text(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def quoted(folder: str) -> str:
    """An IMAP quoted string (imaplib sends its arguments as they are: a name with a space must be quoted)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
