#!/usr/bin/env python3
"""mtla-st serve with real clients (docs/serve.md): `test_serve.py MTLA_ST_BIN GROUP`.

Each GROUP starts its own server on a free loopback port and stops it with SIGTERM, which must
end it with status 0:
  http       curl multipart uploads in every response_format, equal to the CLI's output;
             /health, /v1/models; 400 (not audio, empty, truncated, malformed multipart, bad
             response_format), 401, 404, 405, 411, 413; a client gone mid-upload; slowloris
             trickles of headers and of a body end in a timeout while others are served
  openai     the official openai package with base_url pointed at the server, every
             response_format, a wrong key
  websocket  the live endpoint with the websockets package: partial events before the end
             (golden model, and the bundled model's Spanish), a client gone mid-stream frees
             its worker, 401/404/503 on the upgrade, a bad text message
  load       200 requests 8 at a time: none lost, equal to one-at-a-time results, RSS flat
             (not checked under the sanitizers); a full queue answers 503 with Retry-After
  signals    SIGTERM stops accepting, finishes a live stream and a queued upload, exits 0

A group needing the openai or websockets package exits 77 (skipped) when it is missing,
unless MTLA_SERVE_CLIENTS_REQUIRED=1 or CI is set (as .ci/run does), when that is a failure.
"""
import asyncio
import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(SOURCE, "tests/golden/models/transformer_mtla_s2")
SPEECH = os.path.join(SOURCE, "tests/data/vad/speech_with_pauses.wav")  # 20.8 s, 4 sentences
CONTINUOUS = os.path.join(SOURCE, "tests/data/vad/continuous_speech.wav")
FLAC = os.path.join(SOURCE, "tests/data/frontend/clip_48000_s24_stereo.flac")
CLIP = os.path.join(SOURCE, "samples/audio/sense_and_sensibility_01_austen_64kb-0880.wav")  # 3 s
SANITIZED = os.environ.get("MTLA_ST_SANITIZED", "OFF").upper() in ("1", "ON", "TRUE", "YES")

BIN = None


def fail(message):
    raise AssertionError(message)


def check(condition, message):
    if not condition:
        fail(message)


def require(module):
    """Imports a client package, or skips the group (exit 77) where that is allowed."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("MTLA_SERVE_CLIENTS_REQUIRED") == "1" or os.environ.get("CI"):
            fail(f"the Python package '{module}' is missing (scripts/install-deps.sh installs it)")
        print(f"SKIP: the Python package '{module}' is not installed "
              f"(pip install {module}; scripts/install-deps.sh does)")
        sys.exit(77)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def cli(*args):
    """The CLI's output for the same input: what the server must answer."""
    r = subprocess.run([BIN, "--model", GOLDEN, "--quiet", *args], capture_output=True,
                       check=True)
    return r.stdout.decode()


class Server:
    """mtla-st serve on a free port; stopped with SIGTERM, which must exit 0."""

    def __init__(self, *args, model=GOLDEN, env=None):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        command = [BIN, "serve", "--port", str(self.port)]
        if model:
            command += ["--model", model]
        self.proc = subprocess.Popen(command + list(args), stdout=subprocess.DEVNULL,
                                     stderr=self.log, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, f"the server exited at start: {self.logs()}")
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        fail("the server did not answer /health within 60 s")

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        finally:
            c.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        fail("no VmRSS")

    def logs(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail(f"SIGTERM did not stop the server within {timeout} s:\n{self.logs()}")
        check(status == 0, f"the server exited {status} after SIGTERM:\n{self.logs()}")
        return self.logs()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.stop()
        else:
            self.proc.kill()
            self.proc.wait()
            sys.stderr.write(f"server log:\n{self.logs()}\n")


BOUNDARY = "mtlaTestBoundary4f9a2c"


def form(file_bytes, filename="speech.wav", boundary=BOUNDARY, **fields):
    """A multipart/form-data body as OpenAI clients send it."""
    out = b""
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return out + file_bytes + f"\r\n--{boundary}--\r\n".encode()


def form_headers(boundary=BOUNDARY, **extra):
    return {"Content-Type": f"multipart/form-data; boundary={boundary}", **extra}


def post(server, body, path="/v1/audio/translations", **headers):
    return server.request("POST", path, body, form_headers(**headers))


def curl(server, *args, key=None):
    """curl's status and body for a request to the server."""
    auth = ["-H", f"Authorization: Bearer {key}"] if key else []
    r = subprocess.run(["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code}", *auth, *args],
                       capture_output=True, check=True, timeout=60)
    body, _, status = r.stdout.rpartition(b"\n")
    return int(status), body


def error_of(body):
    e = json.loads(body)["error"]
    check(isinstance(e["message"], str) and e["message"], f"no error message in {body!r}")
    return e["message"]


def expect_error(got, status, words):
    check(got[0] == status, f"expected {status}, got {got[0]}: {got[1][:300]!r}")
    message = error_of(got[1])
    check(words in message, f"expected '{words}' in the error, got '{message}'")


def raw_connection(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return s


def send_quietly(s, data):
    """Sends unless the server has closed the connection (which a trickle test expects)."""
    try:
        s.sendall(data)
    except OSError:
        pass


def read_all(s, timeout):
    """What the server sends until it closes, within `timeout` seconds."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data


# ---------------------------------------------------------------- http

def test_http():
    expected = {
        "text": cli(SPEECH),
        "srt": cli("--segment", "-f", "srt", SPEECH),
        "vtt": cli("--segment", "-f", "vtt", SPEECH),
        "segments": [json.loads(line) for line in
                     cli("--segment", "-f", "jsonl", SPEECH).splitlines()],
    }
    key = "test-key-5c1e"
    with Server("--timeout", "2", "--max-upload-mb", "1",
                env={"MTLA_ST_API_KEY": key}) as server:
        url = server.url("/v1/audio/translations")
        # every response_format, through curl's own multipart encoder
        for fmt in ("json", "text", "srt", "vtt", "verbose_json"):
            status, body = curl(server, url, "-F", f"file=@{SPEECH}", "-F", "model=whisper-1",
                                "-F", f"response_format={fmt}", "-F", "temperature=0.2", key=key)
            check(status == 200, f"{fmt}: status {status}: {body[:300]!r}")
            text = body.decode()
            if fmt == "json":
                check(json.loads(text) == {"text": expected["text"].strip()}, f"json: {text}")
            elif fmt == "text":
                check(text == expected["text"], f"text: {text!r} != {expected['text']!r}")
            elif fmt in ("srt", "vtt"):
                check(text == expected[fmt], f"{fmt}:\n{text}\n!=\n{expected[fmt]}")
            else:
                v = json.loads(text)
                segs = expected["segments"]
                check(v["task"] == "translate" and v["language"] == "es", f"verbose: {v}")
                check(abs(v["duration"] - 20.83) < 0.01, f"duration {v['duration']}")
                check([s["text"] for s in v["segments"]] == [s["text"] for s in segs],
                      f"segments {v['segments']} != {segs}")
                check(all(abs(a["start"] - b["start"]) < 1e-3 and abs(a["end"] - b["end"]) < 1e-3
                          for a, b in zip(v["segments"], segs)), "segment times differ")
                check(v["text"] == " ".join(s["text"] for s in segs if s["text"]), "verbose text")
        # the transcriptions endpoint translates too; any audio libsndfile reads
        status, body = curl(server, server.url("/v1/audio/transcriptions"), "-F",
                            f"file=@{FLAC}", "-F", "model=whisper-1", key=key)
        check(status == 200 and json.loads(body)["text"] == cli(FLAC).strip(),
              f"transcriptions of a 48 kHz stereo FLAC: {status} {body!r}")
        status, body, _ = server.get("/v1/models", {"Authorization": f"Bearer {key}"})
        model = json.loads(body)["data"][0]
        check(status == 200 and model["id"] == "mtla-st-en-es", f"models: {body!r}")
        status, body, _ = server.get("/health")  # no key needed
        check(status == 200 and json.loads(body)["status"] == "ok", f"health: {body!r}")

        auth = {"Authorization": f"Bearer {key}"}
        speech = read(SPEECH)
        # keys
        expect_error(post(server, form(speech)), 401, "API key")
        got = post(server, form(speech), Authorization="Bearer wrong")
        expect_error(got, 401, "API key")
        check(got[2].get("www-authenticate") == "Bearer", f"401 headers: {got[2]}")
        expect_error(server.get("/v1/models"), 401, "API key")
        # paths and methods
        expect_error(server.get("/v1/nothing", auth), 404, "/v1/nothing")
        expect_error(server.get("/v1/audio/translations", auth), 405, "POST")
        # bad uploads: each answered with what is wrong, the server still up
        expect_error(post(server, form(read(os.path.join(SOURCE, "README.md")), "notes.txt"),
                          **auth), 400, "cannot read 'notes.txt' as audio")
        expect_error(post(server, form(b"", "empty.wav"), **auth), 400, "'empty.wav' is empty")
        expect_error(post(server, form(speech[:30], "cut.wav"), **auth), 400, "cut.wav")
        expect_error(post(server, form(speech, response_format="mp4"), **auth), 400,
                     "response_format")
        whole = form(speech)
        expect_error(post(server, whole[:len(whole) // 2], **auth), 400, "truncated")
        expect_error(post(server, b"--" + BOUNDARY.encode() + b"\r\nnot a part\r\n", **auth), 400,
                     "no 'file' part")
        expect_error(server.request("POST", "/v1/audio/translations", b"x" * 100,
                                    {"Content-Type": "application/octet-stream", **auth}), 400,
                     "multipart/form-data")
        expect_error(server.request("POST", "/v1/audio/translations", iter([whole]),
                                    form_headers(**auth, **{"Transfer-Encoding": "chunked"})),
                     411, "Content-Length")
        # over --max-upload-mb: refused from the headers, the body read and dropped, so that
        # a client that sends it all before reading still gets the answer (as httpx does)
        big = form(speech * 2)
        expect_error(post(server, big, **auth), 413, "limit of 1 MB")
        status, body = curl(server, url, "-F", f"file=@{CONTINUOUS}", "-F", "file2=@" + SPEECH,
                            key=key)
        expect_error((status, body, {}), 413, "limit")
        check(server.get("/health")[0] == 200, "the server is down after bad uploads")

        # a client gone mid-upload: logged as 499, nothing left behind
        s = raw_connection(server)
        s.sendall((f"POST /v1/audio/translations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                   f"{key}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                   f"Content-Length: {len(whole)}\r\n\r\n").encode() + whole[:20000])
        s.close()
        # slowloris: a body trickled a byte at a time gets 408 after --timeout 2 ...
        trickle = raw_connection(server)
        trickle.sendall((f"POST /v1/audio/translations HTTP/1.1\r\nHost: x\r\nAuthorization: "
                         f"Bearer {key}\r\nContent-Type: multipart/form-data; boundary="
                         f"{BOUNDARY}\r\nContent-Length: {len(whole)}\r\n\r\n").encode())
        headers_trickle = raw_connection(server)
        started = time.monotonic()
        answered = None
        # ... while the trickles go on, others are answered at once: no worker is held
        for i in range(30):
            send_quietly(trickle, whole[i:i + 1])
            send_quietly(headers_trickle, b"GET /health HTTP/1.1\r\n"[i:i + 1] if i < 22 else b"X")
            if i == 5:
                t0 = time.monotonic()
                status, body = curl(server, url, "-F", f"file=@{SPEECH}", key=key)
                check(status == 200 and time.monotonic() - t0 < 5,
                      f"a request during the trickle: {status} after {time.monotonic() - t0} s")
            time.sleep(0.1)
            trickle.settimeout(0.01)
            try:
                answered = trickle.recv(65536)
                break
            except (socket.timeout, BlockingIOError):
                pass
        answered = (answered or b"") + read_all(trickle, 5)
        took = time.monotonic() - started
        check(answered.startswith(b"HTTP/1.1 408"), f"a trickled body: {answered[:200]!r}")
        check(b"within 2 s" in answered, f"408 body: {answered!r}")
        check(1.5 < took < 8, f"the trickled body was answered after {took:.1f} s")
        closed = read_all(headers_trickle, 5)
        took = time.monotonic() - started
        check(closed == b"" and took < 10, f"trickled headers: {closed!r} after {took:.1f} s")
        trickle.close()
        headers_trickle.close()
        check(server.get("/health")[0] == 200, "the server is down after the trickles")
    log = server.stop() if server.proc.poll() is None else server.logs()
    check(" 499 " in log, f"no 499 line for the client gone mid-upload:\n{log}")
    lines = [l for l in log.splitlines() if '"POST /v1/audio/translations" 200' in l]
    check(lines and lines[0].endswith(" ms") and " 20.83 s audio " in lines[0],
          f"log lines: {lines[:2]}")


# ---------------------------------------------------------------- openai

def test_openai():
    openai = require("openai")
    key = "sk-test-9d2"
    text = cli(SPEECH)
    with Server("--api-key", key) as server:
        client = openai.OpenAI(base_url=server.url("/v1"), api_key=key, max_retries=0)
        with open(SPEECH, "rb") as f:
            r = client.audio.translations.create(model="whisper-1", file=f)
        check(r.text == text.strip(), f"json: {r.text!r}")
        with open(SPEECH, "rb") as f:
            r = client.audio.translations.create(model="whisper-1", file=f, temperature=0.0,
                                                 response_format="verbose_json")
        check(r.text and len(r.segments) == 4 and r.segments[0].end > r.segments[0].start,
              f"verbose_json: {r}")
        for fmt, args in (("text", ()), ("srt", ("--segment", "-f", "srt")),
                          ("vtt", ("--segment", "-f", "vtt"))):
            with open(SPEECH, "rb") as f:
                r = client.audio.translations.create(model="whisper-1", file=f,
                                                     response_format=fmt)
            want = cli(*args, SPEECH)
            check(isinstance(r, str) and r.strip() == want.strip(), f"{fmt}: {r!r} != {want!r}")
        with open(FLAC, "rb") as f:
            r = client.audio.transcriptions.create(model="whisper-1", file=f)
        check(r.text == cli(FLAC).strip(), f"transcriptions: {r.text!r}")
        check([m.id for m in client.models.list()] == ["mtla-st-en-es"], "models.list")
        bad = openai.OpenAI(base_url=server.url("/v1"), api_key="wrong", max_retries=0)
        try:
            with open(SPEECH, "rb") as f:
                bad.audio.translations.create(model="whisper-1", file=f)
            fail("a wrong key was accepted")
        except openai.AuthenticationError:
            pass
        try:
            client.audio.translations.create(model="whisper-1",
                                             file=("notes.txt", b"not audio at all"))
            fail("text was translated")
        except openai.BadRequestError as e:
            check("notes.txt" in str(e), f"BadRequestError: {e}")


# ---------------------------------------------------------------- websocket

def pcm16(path):
    """The samples of a 16 kHz mono s16 WAV, as the live endpoint takes them."""
    import wave
    with wave.open(path) as w:
        check(w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2,
              f"{path} is not 16 kHz mono s16")
        return w.readframes(w.getnframes())


async def stream(websockets, url, pcm, speed, headers=None, chunk=3200):
    """Sends `pcm` at `speed` times real time, then 'end'; returns the messages with the
    time each arrived relative to the end of sending, and the close code."""
    connect = websockets.connect
    kwargs = {"additional_headers": headers} if headers else {}
    async with connect(url, **kwargs) as ws:
        got = []

        async def reader():
            async for message in ws:
                got.append((time.monotonic(), json.loads(message)))

        task = asyncio.create_task(reader())
        for i in range(0, len(pcm), chunk):
            await ws.send(pcm[i:i + chunk])
            await asyncio.sleep(chunk / 32000 / speed)
        sent = time.monotonic()
        await ws.send("end")
        await task
        return [(t - sent, m) for t, m in got], ws.close_code


def upgrade_status(websockets, url, headers=None):
    async def go():
        try:
            kwargs = {"additional_headers": headers} if headers else {}
            async with websockets.connect(url, **kwargs):
                return 101
        except websockets.exceptions.InvalidStatus as e:
            return e.response.status_code
    return asyncio.run(go())


def test_websocket():
    websockets = require("websockets")
    import websockets.exceptions  # noqa: F401 - InvalidStatus
    speech = pcm16(SPEECH)
    key = "ws-key"
    with Server("--workers", "1", "--queue", "0", "--api-key", key) as server:
        base = f"ws://127.0.0.1:{server.port}/v1/audio/stream"
        auth = {"Authorization": f"Bearer {key}"}
        # the golden model's hypotheses are refused by the log-prob guard, which is turned off
        events, code = asyncio.run(stream(websockets, base + "?logprob_threshold=-1000",
                                          speech, 8, auth))
        kinds = [m["type"] for _, m in events]
        check(code == 1000, f"close code {code}")
        check(kinds[-1] == "done" and abs(events[-1][1]["audio_seconds"] - 20.83) < 0.01,
              f"last message: {events[-1:]}")
        early = [m for t, m in events if m["type"] == "partial" and t < 0]
        check(early, f"no partial event before the end of the stream: {kinds}")
        finals = [m for _, m in events if m["type"] == "final"]
        check(finals and all(m["end"] > m["start"] for m in finals), f"finals: {finals}")
        for m in events:
            e = m[1]
            if e["type"] == "partial":
                check(set(e) == {"type", "utterance", "start", "audio_end", "committed",
                                 "tentative"}, f"partial event {e}")
        # the key may come in the query (browsers cannot set headers)
        events, code = asyncio.run(stream(websockets, f"{base}?api_key={key}", speech[:64000],
                                          20))
        check(code == 1000 and events[-1][1]["type"] == "done", f"?api_key: {events}")
        check(upgrade_status(websockets, base) == 401, "no key")
        check(upgrade_status(websockets, f"ws://127.0.0.1:{server.port}/v1/other", auth) == 404,
              "another path")
        check(upgrade_status(websockets, base + "?policy=fast", auth) == 400, "a bad policy")

        async def busy_then_gone():
            # a stream holds the one worker: uploads and other streams get 503 meanwhile
            async with websockets.connect(base, additional_headers=auth) as ws:
                await ws.send(speech[:32000])
                await asyncio.sleep(0.2)
                got = await asyncio.to_thread(post, server, form(read(SPEECH)), **auth)
                expect_error(got, 503, "busy")
                check(got[2].get("retry-after") == "1", f"503 headers {got[2]}")
                refused = await asyncio.to_thread(upgrade_status, websockets, base, auth)
                check(refused == 503, f"a second stream: {refused}")
                await ws.send("a question")  # text messages are 'end' only
                try:
                    while True:
                        await ws.recv()
                except websockets.exceptions.ConnectionClosed as e:
                    check(e.rcvd.code == 1003, f"close code {e.rcvd.code}")
            # a client gone mid-stream, the TCP connection dropped: its worker comes back
            # (the closed stream's worker may take a moment to let go: 503 until then)
            for attempt in range(50):
                try:
                    ws = await websockets.connect(base, additional_headers=auth)
                    break
                except websockets.exceptions.InvalidStatus as e:
                    check(e.response.status_code == 503, f"status {e.response.status_code}")
                    await asyncio.sleep(0.1)
            await ws.send(speech[:32000])
            ws.transport.abort()
        asyncio.run(busy_then_gone())
        deadline = time.monotonic() + 10
        while True:
            got = post(server, form(read(SPEECH)), **auth)
            if got[0] == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(got[0] == 200, f"the worker of a dropped stream did not come back: {got[0]}")

    # the bundled model: Spanish text while the speaker is still talking, sent in real time
    with Server("--workers", "1", model=None) as server:
        events, code = asyncio.run(stream(websockets, f"ws://127.0.0.1:{server.port}"
                                          "/v1/audio/stream?partial_step=500", pcm16(CLIP), 1))
        # (whether they come before the end of sending depends on the machine's load: the
        # golden model above shows that they do)
        kinds = [m["type"] for _, m in events]
        early = [m for _, m in events if m["type"] == "partial" and
                 (m["committed"] or m["tentative"])]
        check(early and kinds.index("partial") < kinds.index("final"),
              f"no partial text before the final: {events}")
        finals = [m["text"] for _, m in events if m["type"] == "final"]
        check(finals and all(finals), f"finals: {finals}")
        print("bundled model, first partial:", early[0], "final:", finals[-1],
              f"({sum(t < 0 for t, m in events if m['type'] == 'partial')} partials before the end)")


# ---------------------------------------------------------------- load

def test_load():
    files = [SPEECH, CONTINUOUS, os.path.join(SOURCE, "tests/data/frontend/clip_16000_s16.wav")]
    bodies = [form(read(f), os.path.basename(f)) for f in files]
    with Server("--workers", "2", "--queue", "16") as server:
        sequential = []
        for body in bodies:
            status, text, _ = post(server, body)
            check(status == 200, f"sequential: {status} {text[:200]!r}")
            sequential.append(json.loads(text)["text"])
        check(sequential[0] == cli(SPEECH).strip(), "the server differs from the CLI")
        for i in range(16):  # warm-up: allocators and buffers reach their working size
            post(server, bodies[i % len(bodies)])
        rss_before = server.rss_kb()

        def one(i):
            c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            c.request("POST", "/v1/audio/translations", bodies[i % len(bodies)], form_headers())
            r = c.getresponse()
            out = (i, r.status, r.read())
            c.close()
            return out

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(200)))
        elapsed = time.monotonic() - t0
        lost = [(i, s, b[:100]) for i, s, b in results if s != 200]
        check(not lost, f"{len(lost)} of 200 requests failed: {lost[:5]}")
        differ = [i for i, _, b in results if json.loads(b)["text"] != sequential[i % 3]]
        check(not differ, f"concurrent results differ from one-at-a-time ones: {differ[:10]}")
        rss_after = server.rss_kb()
        print(f"200 requests, 8 concurrent, 2 workers: {elapsed:.2f} s, {200 / elapsed:.1f} "
              f"requests/s; RSS {rss_before / 1024:.1f} MB before, {rss_after / 1024:.1f} MB "
              "after")
        if not SANITIZED:  # ASan's quarantine keeps freed memory
            check(rss_after - rss_before < 8 * 1024,
                  f"RSS grew from {rss_before} kB to {rss_after} kB over 200 requests")
    # a full queue: 1 worker and 1 place, 8 at once: the rest get 503 with Retry-After
    long = form(read(SPEECH) * 1, "speech.wav")
    with Server("--workers", "1", "--queue", "1") as server:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: post(server, long), range(8)))
        statuses = sorted(s for s, _, _ in results)
        check(statuses.count(200) >= 2 and 503 in statuses, f"statuses {statuses}")
        check(set(statuses) <= {200, 503}, f"statuses {statuses}")
        for status, body, headers in results:
            if status == 503:
                check(headers.get("retry-after") == "1", f"503 without Retry-After: {headers}")
                check("busy" in error_of(body), f"503 body {body!r}")
            else:
                check(json.loads(body)["text"] == sequential[0], "a result under a full queue")


# ---------------------------------------------------------------- signals

def test_signals():
    websockets = require("websockets")
    speech = pcm16(SPEECH)
    server = Server("--workers", "1", "--queue", "4")
    result = {}

    async def scenario():
        # the golden model's hypotheses pass only with both guards off
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/v1/audio/stream"
                                      "?logprob_threshold=-1000&repeat_limit=0") as ws:
            await ws.send(speech[:16000 * 2 * 6])  # 6 s, no 'end': the stream is running
            # an upload queued behind the stream, which holds the only worker
            upload = asyncio.create_task(asyncio.to_thread(post, server, form(read(SPEECH))))
            await asyncio.sleep(0.5)
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            # no new work is taken: requests are answered 503 (or refused, once it has exited)
            try:
                result["refused"] = await asyncio.to_thread(server.get, "/health")
            except OSError as e:
                result["refused"] = (None, str(e), {})
            messages = [json.loads(m) async for m in ws]
            result["messages"] = messages
            result["close"] = ws.close_code
            result["upload"] = await upload

    asyncio.run(scenario())
    status = server.proc.wait(30)
    log = server.logs()
    check(status == 0, f"exit status {status} after SIGTERM:\n{log}")
    check(result["refused"][0] in (None, 503), f"a request after SIGTERM: {result['refused']}")
    kinds = [m["type"] for m in result["messages"]]
    check(kinds and kinds[-1] == "done" and "final" in kinds and result["close"] == 1000,
          f"the live stream was not finished: {kinds}, close {result['close']}")
    check(abs(result["messages"][-1]["audio_seconds"] - 6.0) < 0.01, "not all audio was heard")
    status, body, _ = result["upload"]
    check(status == 200 and json.loads(body)["text"] == cli(SPEECH).strip(),
          f"the queued upload: {status} {body[:200]!r}")
    check("stopping" in log and "stopped" in log, f"log:\n{log}")


def main():
    global BIN
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    BIN = sys.argv[1]
    group = {"http": test_http, "openai": test_openai, "websocket": test_websocket,
             "load": test_load, "signals": test_signals}[sys.argv[2]]
    t0 = time.monotonic()
    group()
    print(f"test_serve {sys.argv[2]}: passed in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
