# SPDX-License-Identifier: MIT
"""The email kind with email.mode=smtp against a real SMTP server (aiosmtpd on
loopback): headers and body as sent, UTF-8 subjects, 4xx retried, 5xx dead,
AUTH from environment variables, header injection refused."""
import datetime
import email
import email.header
import email.policy
import email.utils
import json

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from conftest import free_port, job_state, one, wait_for, wait_state, job_errors as errors

FAST = dict(worker__poll_ms=100, worker__heartbeat_ms=200)
# aiosmtpd warns about AUTH without TLS, which is what the loopback tests want.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Collector:
    """Keeps every message; rcpt_replies / data_replies are answered first
    (one per RCPT / DATA), then 250."""

    def __init__(self, rcpt_replies=(), data_replies=()):
        self.messages = []
        self.rcpt_replies = list(rcpt_replies)
        self.data_replies = list(data_replies)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                              getattr(session, "authenticated", None)))
        return "250 Message accepted for delivery"


class Server:
    def __init__(self, handler, **kw):
        self.handler = handler
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.controller = Controller(handler, hostname="127.0.0.1", port=self.port, **kw)
        self.controller.start()

    def stop(self):
        self.controller.stop()


@pytest.fixture
def smtp_server():
    """smtp_server(rcpt_replies=[...], data_replies=[...], **controller_kw) starts an aiosmtpd server."""
    started = []

    def start(rcpt_replies=(), data_replies=(), **kw):
        s = Server(Collector(rcpt_replies, data_replies), **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def start_worker(workers, server, **kw):
    return workers.start(queues="mail", email__mode="smtp", email__smtp_url=server.url,
                         email__from="jobs@example.com", http__allow="127.0.0.1", **FAST, **kw)


def enqueue_email(db, payload, **kw):
    args = "".join(f", {k} => %s" for k in kw)
    return one(db, f"SELECT jobwheel.enqueue('email', %s, queue => 'mail'{args})", json.dumps(payload),
               *kw.values())


def test_message_arrives_with_its_headers_and_body(db, workers, smtp_server):
    server = smtp_server()
    start_worker(workers, server)
    before = datetime.datetime.now(datetime.timezone.utc)
    job = enqueue_email(db, {"to": "ada@example.org", "subject": "Report ready",
                             "body": "Hello,\nline two\n.leading dot\n"})
    wait_state(db, job, "succeeded")
    result = one(db, "SELECT result FROM jobwheel.jobs WHERE id = %s", job)
    assert result["mode"] == "smtp" and result["to"] == "ada@example.org"
    assert len(server.handler.messages) == 1
    mail_from, rcpt, content, _ = server.handler.messages[0]
    assert (mail_from, rcpt) == ("jobs@example.com", ["ada@example.org"])
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg["From"] == "jobs@example.com"
    assert msg["To"] == "ada@example.org"
    assert msg["Subject"] == "Report ready"
    assert msg["Message-ID"] == result["message_id"]
    assert result["message_id"].startswith(f"<{job}.1.") and result["message_id"].endswith("@example.com>")
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    date = email.utils.parsedate_to_datetime(msg["Date"])
    assert date.utcoffset() == datetime.timedelta(0)
    assert before - datetime.timedelta(seconds=2) <= date <= before + datetime.timedelta(seconds=30)
    assert b"\n" not in content.replace(b"\r\n", b"")  # CRLF line endings only
    assert b"\r\n\r\nHello,\r\nline two\r\n.leading dot\r\n" in content  # dot-stuffing undone
    assert msg.get_content().replace("\r\n", "\n") == "Hello,\nline two\n.leading dot\n"


def test_utf8_subject_is_encoded_and_decodes_back(db, workers, smtp_server):
    server = smtp_server()
    start_worker(workers, server)
    subject = "Grüße ✓ " + "ü" * 40  # long enough to need several encoded-words
    job = enqueue_email(db, {"to": ["a@example.org", "b@example.org"], "subject": subject,
                             "body": "Grüße\n", "from": "noreply@mail.example.net"})
    wait_state(db, job, "succeeded")
    mail_from, rcpt, content, _ = server.handler.messages[0]
    assert (mail_from, rcpt) == ("noreply@mail.example.net", ["a@example.org", "b@example.org"])
    raw = email.message_from_bytes(content, policy=email.policy.compat32)
    assert "=?UTF-8?B?" in raw["Subject"]
    assert all(ord(c) < 128 for c in raw["Subject"])
    decoded = str(email.header.make_header(email.header.decode_header(raw["Subject"])))
    assert decoded == subject
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg["Subject"] == subject
    assert msg.get_content().replace("\r\n", "\n") == "Grüße\n"
    assert msg["Message-ID"].endswith("@mail.example.net>")
    result = one(db, "SELECT result FROM jobwheel.jobs WHERE id = %s", job)
    assert result["to"] == ["a@example.org", "b@example.org"]


def test_451_once_is_retried_and_delivered_on_attempt_2(db, workers, smtp_server):
    server = smtp_server(rcpt_replies=["451 4.3.0 try again later"])
    start_worker(workers, server)
    job = enqueue_email(db, {"to": "ada@example.org", "subject": "s", "body": "b"}, backoff_base_ms=200)
    wait_state(db, job, "succeeded")
    assert one(db, "SELECT attempt FROM jobwheel.jobs WHERE id = %s", job) == 2
    errs = errors(db, job)
    assert len(errs) == 1 and "451" in errs[0], errs
    assert len(server.handler.messages) == 1


def test_451_at_data_is_retried(db, workers, smtp_server):
    server = smtp_server(data_replies=["451 4.3.0 queue full"])
    start_worker(workers, server)
    job = enqueue_email(db, {"to": "ada@example.org", "subject": "s", "body": "b"}, backoff_base_ms=200)
    wait_state(db, job, "succeeded")
    assert one(db, "SELECT attempt FROM jobwheel.jobs WHERE id = %s", job) == 2
    assert "451" in errors(db, job)[0]


def test_550_is_dead_naming_the_reply(db, workers, smtp_server):
    server = smtp_server(rcpt_replies=["550 5.1.1 mailbox unavailable"] * 5)
    start_worker(workers, server)
    job = enqueue_email(db, {"to": "nobody@example.org", "subject": "s", "body": "b"}, backoff_base_ms=200)
    wait_state(db, job, "dead")
    errs = errors(db, job)
    assert len(errs) == 1 and "550 5.1.1 mailbox unavailable" in errs[0], errs
    assert one(db, "SELECT last_error FROM jobwheel.dlq WHERE id = %s", job) == errs[0]
    assert server.handler.messages == []


def auth_server(smtp_server):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"mailer"
              and auth_data.password == b"s3cret pass")
        return AuthResult(success=ok, handled=False)
    return smtp_server(authenticator=authenticator, auth_require_tls=False, auth_required=True)


def test_auth_with_credentials_from_the_environment(db, workers, smtp_server):
    server = auth_server(smtp_server)
    w = start_worker(workers, server, email__smtp_user_env="JW_TEST_SMTP_USER",
                     email__smtp_password_env="JW_TEST_SMTP_PASSWORD",
                     env={"JW_TEST_SMTP_USER": "mailer", "JW_TEST_SMTP_PASSWORD": "s3cret pass"})
    job = enqueue_email(db, {"to": "ada@example.org", "subject": "s", "body": "b"})
    wait_state(db, job, "succeeded")
    assert len(server.handler.messages) == 1
    assert server.handler.messages[0][3] is True
    assert "s3cret" not in w.output()


def test_auth_refused_is_dead(db, workers, smtp_server):
    server = auth_server(smtp_server)
    start_worker(workers, server, email__smtp_user_env="JW_TEST_SMTP_USER",
                 email__smtp_password_env="JW_TEST_SMTP_PASSWORD",
                 env={"JW_TEST_SMTP_USER": "mailer", "JW_TEST_SMTP_PASSWORD": "wrong"})
    job = enqueue_email(db, {"to": "ada@example.org", "subject": "s", "body": "b"}, backoff_base_ms=200)
    wait_state(db, job, "dead")
    errs = errors(db, job)
    assert len(errs) == 1 and "535" in errs[0], errs
    assert "wrong" not in errs[0]


def test_without_credentials_the_server_requiring_auth_refuses(db, workers, smtp_server):
    server = auth_server(smtp_server)
    start_worker(workers, server)
    job = enqueue_email(db, {"to": "ada@example.org", "subject": "s", "body": "b"}, backoff_base_ms=200)
    wait_state(db, job, "dead")
    assert "530" in errors(db, job)[0]


@pytest.mark.parametrize("payload, why", [
    ({"to": "ada@example.org", "subject": "hi\r\nBcc: eve@example.org", "body": "b"}, "header injection"),
    ({"to": "ada@example.org\nBcc: eve@example.org", "subject": "s", "body": "b"}, "header injection"),
    ({"to": "ada@example.org", "subject": "s", "body": "b", "from": "a@b\r\nX: y"}, "header injection"),
    ({"to": "not-an-address", "subject": "s", "body": "b"}, "email address"),
    ({"to": [], "subject": "s", "body": "b"}, "array"),
])
def test_bad_payloads_are_dead_without_sending(db, workers, smtp_server, payload, why):
    server = smtp_server()
    start_worker(workers, server)
    job = enqueue_email(db, payload)
    wait_state(db, job, "dead")
    errs = errors(db, job)
    assert len(errs) == 1 and why in errs[0], errs
    assert server.handler.messages == []


def test_no_sender_is_dead(db, workers, smtp_server):
    server = smtp_server()
    workers.start(queues="mail", email__mode="smtp", email__smtp_url=server.url, http__allow="127.0.0.1", **FAST)
    job = enqueue_email(db, {"to": "ada@example.org", "subject": "s", "body": "b"})
    wait_state(db, job, "dead")
    assert "no sender" in errors(db, job)[0]


def test_loopback_server_needs_http_allow(db, workers, smtp_server):
    server = smtp_server()
    workers.start(queues="mail", email__mode="smtp", email__smtp_url=server.url, email__from="jobs@example.com",
                  **FAST)
    job = enqueue_email(db, {"to": "ada@example.org", "subject": "s", "body": "b"})
    wait_state(db, job, "dead")
    assert "outbound policy" in errors(db, job)[0]
    assert server.handler.messages == []
