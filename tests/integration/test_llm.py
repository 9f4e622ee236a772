# SPDX-License-Identifier: MIT
"""The llm kind against fake providers on loopback speaking the Gemini
(generateContent) and OpenAI-compatible (chat/completions) shapes: fallback
through the chain, retries, fall-through statuses, non-retryable requests,
errors in 200 answers and the per-provider circuit breaker."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import job_state, one, wait_for, wait_state, job_result as result, job_errors as errors

KEYS = {"GEMINI_API_KEY": "gem-secret-key-123", "OPENROUTER_API_KEY": "or-secret-key-456",
        "GROQ_API_KEY": "groq-secret-key-789"}
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Say hi"}]


def gemini_ok(text="Hi from Gemini"):
    return 200, {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                 "finishReason": "STOP"}],
                 "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7}}, {}


def openai_ok(text="Hi from OpenAI"):
    return 200, {"id": "c1", "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}, {}


def status(code, headers=None, body=None):
    return code, body if body is not None else {"error": {"code": code, "message": f"fake says {code}"}}, \
        headers or {}


class FakeProviders:
    """One HTTP server for the three providers: /gemini/models/M:generateContent,
    /openrouter/chat/completions, /groq/chat/completions. Each provider answers
    from its script in order (the last answer repeats) and records requests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.scripts = {"gemini": [status(500)], "openrouter": [status(500)], "groq": [status(500)]}
        self.requests = {"gemini": [], "openrouter": [], "groq": []}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                name = self.path.split("/")[1]
                with fake.lock:
                    reqs = fake.requests.get(name)
                    if reqs is None:
                        code, reply, headers = 404, {"error": "no such provider"}, {}
                    else:
                        reqs.append({"time": time.monotonic(), "path": self.path,
                                     "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "body": json.loads(body)})
                        script = fake.scripts[name]
                        code, reply, headers = script.pop(0) if len(script) > 1 else script[0]
                data = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script(self, name, *answers):
        with self.lock:
            self.scripts[name] = list(answers)

    def count(self, name):
        with self.lock:
            return len(self.requests[name])

    def settings(self, **extra):
        s = dict(queues="ai", worker__poll_ms=100, worker__heartbeat_ms=200, http__allow="127.0.0.1")
        for name in ("gemini", "openrouter", "groq"):
            s[f"llm__provider__{name}__base_url"] = f"http://127.0.0.1:{self.port}/{name}"
        s.update(extra)
        return s

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeProviders()
    yield f
    f.close()


def enqueue(db, payload, **kw):
    kw.setdefault("queue", "ai")
    args = ", ".join(f"{k} => %s" for k in kw)
    return one(db, f"SELECT jobwheel.enqueue('llm', %s, {args})", json.dumps(payload), *kw.values())


def no_keys(*texts):
    for t in texts:
        for key in KEYS.values():
            assert key not in t


def test_gemini_answers(db, workers, fake):
    fake.script("gemini", gemini_ok("Hello there"))
    w = workers.start(env=KEYS, **fake.settings())
    job = enqueue(db, {"messages": MESSAGES, "max_tokens": 32, "temperature": 0.2})
    wait_state(db, job, "succeeded")
    r = result(db, job)
    assert r["provider"] == "gemini" and r["model"] == "gemini-2.0-flash"
    assert r["text"] == "Hello there"
    assert r["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    assert len(r["tried"]) == 1
    assert r["tried"][0]["provider"] == "gemini" and r["tried"][0]["status"] == 200
    assert r["tried"][0]["error"] is None and r["tried"][0]["ms"] >= 0
    req = fake.requests["gemini"][0]
    assert req["path"] == "/gemini/models/gemini-2.0-flash:generateContent"
    assert req["headers"]["x-goog-api-key"] == KEYS["GEMINI_API_KEY"]
    assert req["body"]["contents"] == [{"role": "user", "parts": [{"text": "Say hi"}]}]
    assert req["body"]["systemInstruction"] == {"parts": [{"text": "Answer briefly."}]}
    assert req["body"]["generationConfig"] == {"maxOutputTokens": 32, "temperature": 0.2}
    assert fake.count("openrouter") == 0
    no_keys(json.dumps(r), w.output())


def test_gemini_500s_fall_back_to_openrouter(db, workers, fake):
    fake.script("gemini", status(500))
    fake.script("openrouter", openai_ok("Hi via OpenRouter"))
    workers.start(env=KEYS, **fake.settings())
    job = enqueue(db, {"messages": MESSAGES})
    wait_state(db, job, "succeeded")
    r = result(db, job)
    assert r["provider"] == "openrouter" and r["model"] == "openai/gpt-4o-mini" and r["text"] == "Hi via OpenRouter"
    assert r["usage"]["total_tokens"] == 7
    assert [(t["provider"], t["status"]) for t in r["tried"]] == [("gemini", 500)] * 3 + [("openrouter", 200)]
    assert all("fake says 500" in t["error"] for t in r["tried"][:3])
    # jittered backoff between the retries: 0.5 s and 1 s x [0.8, 1.2]
    times = [q["time"] for q in fake.requests["gemini"]]
    assert times[1] - times[0] >= 0.4 and times[2] - times[1] >= 0.8
    req = fake.requests["openrouter"][0]
    assert req["path"] == "/openrouter/chat/completions"
    assert req["headers"]["authorization"] == "Bearer " + KEYS["OPENROUTER_API_KEY"]
    assert req["body"]["model"] == "openai/gpt-4o-mini" and req["body"]["messages"] == MESSAGES
    assert one(db, "SELECT attempt FROM jobwheel.jobs WHERE id = %s", job) == 1


def test_unauthorized_falls_through_without_retrying(db, workers, fake):
    fake.script("gemini", status(401))
    fake.script("openrouter", openai_ok())
    workers.start(env=KEYS, **fake.settings())
    job = enqueue(db, {"messages": MESSAGES})
    wait_state(db, job, "succeeded")
    assert fake.count("gemini") == 1
    assert [(t["provider"], t["status"]) for t in result(db, job)["tried"]] == [("gemini", 401), ("openrouter", 200)]


def test_missing_key_and_payload_chain(db, workers, fake):
    fake.script("groq", openai_ok("groq here"))
    workers.start(env=dict(KEYS, OPENROUTER_API_KEY=""), **fake.settings())
    job = enqueue(db, {"messages": MESSAGES, "chain": ["openrouter", "groq"]})
    wait_state(db, job, "succeeded")
    r = result(db, job)
    assert r["provider"] == "groq" and r["text"] == "groq here"
    assert [(t["provider"], t["error"]) for t in r["tried"]] == [("openrouter", "no API key"), ("groq", None)]
    assert fake.count("gemini") == 0 and fake.count("openrouter") == 0


def test_bad_request_is_dead_at_once(db, workers, fake):
    fake.script("gemini", status(400))
    fake.script("openrouter", openai_ok())
    workers.start(env=KEYS, **fake.settings())
    job = enqueue(db, {"messages": MESSAGES})
    wait_state(db, job, "dead")
    assert one(db, "SELECT attempt FROM jobwheel.jobs WHERE id = %s", job) == 1
    [err] = errors(db, job)
    assert "gemini" in err and "HTTP 400" in err
    assert fake.count("gemini") == 1 and fake.count("openrouter") == 0


def test_bad_payload_is_dead_at_once(db, workers, fake):
    workers.start(env=KEYS, **fake.settings())
    job = enqueue(db, {"messages": [{"role": "robot", "content": "x"}]})
    wait_state(db, job, "dead")
    assert errors(db, job)[0].startswith("payload: messages[0]")
    job = enqueue(db, {"messages": MESSAGES, "chain": ["openai"]})
    wait_state(db, job, "dead")
    assert "chain" in errors(db, job)[0]
    assert fake.count("gemini") == 0


def test_all_down_retries_the_job_then_dead_with_every_error(db, workers, fake):
    fake.script("gemini", status(500))
    fake.script("openrouter", status(503))
    fake.script("groq", status(429, {"Retry-After": "3600"}))
    w = workers.start(env=KEYS, **fake.settings(llm__provider__gemini__retries=0,
                                                 llm__provider__openrouter__retries=0))
    job = enqueue(db, {"messages": MESSAGES}, max_attempts=2, backoff_base_ms=10)
    wait_state(db, job, "dead")
    errs = errors(db, job)
    assert len(errs) == 2
    for e in errs:
        assert "gemini: HTTP 500" in e and "openrouter: HTTP 503" in e and "groq: HTTP 429" in e
    # Retry-After beyond llm.max_retry_after_ms: no retry of groq
    assert fake.count("gemini") == 2 and fake.count("openrouter") == 2 and fake.count("groq") == 2
    no_keys(*errs, w.output())


def test_retry_after_is_honoured(db, workers, fake):
    fake.script("gemini", status(429, {"Retry-After": "1"}), gemini_ok())
    workers.start(env=KEYS, **fake.settings())
    job = enqueue(db, {"messages": MESSAGES})
    wait_state(db, job, "succeeded")
    times = [q["time"] for q in fake.requests["gemini"]]
    assert len(times) == 2 and times[1] - times[0] >= 0.95
    assert [t["status"] for t in result(db, job)["tried"]] == [429, 200]


def test_ok_with_error_object_is_a_failure(db, workers, fake):
    fake.script("gemini", (200, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "model overloaded"}}, {}))
    fake.script("openrouter", (200, {"choices": []}, {}), openai_ok("second time lucky"))
    workers.start(env=KEYS, **fake.settings(llm__provider__gemini__retries=1))
    job = enqueue(db, {"messages": MESSAGES})
    wait_state(db, job, "succeeded")
    r = result(db, job)
    assert r["provider"] == "openrouter" and r["text"] == "second time lucky"
    tried = [(t["provider"], t["status"]) for t in r["tried"]]
    assert tried == [("gemini", 200), ("gemini", 200), ("openrouter", 200), ("openrouter", 200)]
    assert "model overloaded" in r["tried"][0]["error"]
    assert "no text" in r["tried"][2]["error"]


def test_circuit_breaker_opens_then_probe_closes_it(db, workers, fake):
    fake.script("gemini", status(500))
    fake.script("openrouter", openai_ok())
    w = workers.start(env=KEYS, **fake.settings(llm__provider__gemini__retries=0, llm__breaker_open_ms=1500))
    jobs = [enqueue(db, {"messages": MESSAGES}) for _ in range(5)]
    for job in jobs:
        wait_state(db, job, "succeeded")
    opened = time.monotonic()
    assert fake.count("gemini") == 5
    wait_for(lambda: "llm provider gemini: circuit open" in w.output(), what="the breaker to open")

    # open: gemini is skipped at once
    job = enqueue(db, {"messages": MESSAGES})
    wait_state(db, job, "succeeded")
    assert time.monotonic() - opened < 1.5, "too slow to see the open breaker"
    r = result(db, job)
    assert r["provider"] == "openrouter"
    assert r["tried"][0]["provider"] == "gemini" and r["tried"][0]["error"] == "circuit open"
    assert fake.count("gemini") == 5

    # after the open period, one probe goes through; its success closes the breaker
    fake.script("gemini", gemini_ok("back again"))
    time.sleep(max(0.0, opened + 1.6 - time.monotonic()))  # the open period has to pass; nothing to wait on
    job = enqueue(db, {"messages": MESSAGES})
    wait_state(db, job, "succeeded")
    assert result(db, job)["provider"] == "gemini" and fake.count("gemini") == 6
    wait_for(lambda: "llm provider gemini: circuit closed" in w.output(), what="the breaker to close")
    job = enqueue(db, {"messages": MESSAGES})
    wait_state(db, job, "succeeded")
    assert result(db, job)["provider"] == "gemini"
