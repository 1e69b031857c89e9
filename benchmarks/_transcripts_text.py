"""Realistic agent-transcript text for the sanitizer benchmarks.

What people actually feed ``sessionseal sanitize``: Claude Code and Codex session files,
one JSON record per line, as those tools write them (the shapes of
``tests/fixtures/transcripts``):

* user prompts (prose, sometimes with a pasted error or command);
* assistant records with text and code blocks, and **usage fields on every one**
  (``input_tokens``, ``cache_creation_input_tokens``, ``cache_read_input_tokens``,
  ``output_tokens``...), Codex ``token_count`` events with ``total_token_usage``;
* tool calls: Bash commands, Read / Edit / Write of source files, Codex ``shell`` calls with
  JSON-encoded arguments;
* tool results: source files with line numbers (real Python code: the interpreter's own
  standard library, so the words token / key / password / secret / auth occur at the rate
  real code has them, e.g. ``http``, ``email``, ``ssl``-adjacent modules are included),
  command output (pytest, git, pip, npm, ls), JSON documents, application logs;
* ids everywhere (uuids, ``toolu_``/``msg_``/``req_`` ids, git hashes, timestamps).

Secrets are planted from the rule catalogue's own examples at a realistic density (default:
one per 256 KiB), inside prompts, command lines, file contents and outputs.  Nothing here is
made easy for the sanitizer: every assistant record carries the usage keys, code is
JSON-escaped as in the real files, and the stdlib sources are read unfiltered.
"""

from __future__ import annotations

import json
import random
import sysconfig
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["transcript_text"]

# Standard-library modules read as "files the agent opened": real code, with real naming.
_STDLIB_FILES = (
    "json/decoder.py",
    "json/encoder.py",
    "http/client.py",
    "http/cookies.py",
    "http/server.py",
    "urllib/request.py",
    "urllib/parse.py",
    "email/utils.py",
    "email/_header_value_parser.py",
    "smtplib.py",
    "imaplib.py",
    "ftplib.py",
    "netrc.py",
    "getpass.py",
    "hmac.py",
    "secrets.py",
    "hashlib.py",
    "tokenize.py",
    "logging/__init__.py",
    "logging/handlers.py",
    "argparse.py",
    "configparser.py",
    "subprocess.py",
    "shutil.py",
    "tempfile.py",
    "pathlib.py",
    "dataclasses.py",
    "functools.py",
    "csv.py",
    "sqlite3/__init__.py",
    "asyncio/base_events.py",
    "asyncio/streams.py",
    "unittest/mock.py",
    "zipfile.py",
    "tarfile.py",
    "base64.py",
    "uuid.py",
    "ssl.py",
    "xmlrpc/client.py",
    "string.py",
)

_PROMPTS = (
    "The login endpoint returns 500 when the session cookie has expired. Can you find out why and fix it?",
    "Add retry with exponential backoff to the API client; keep the existing timeout settings.",
    "Why does the token refresh run twice on startup? The logs show two calls to /oauth/token.",
    "Please write tests for the password reset flow, including the expired-link case.",
    "Rename the config key `cache_ttl` to `cache_ttl_seconds` everywhere and update the docs.",
    "The CI job fails on the migration step, can you look at the output below?",
    "Refactor the key rotation script so it can run without the admin secret in the environment.",
    "Make the CSV export stream rows instead of building the whole list in memory.",
    "Can you explain what this function does and whether the lock is needed?",
    "Bump the dependencies and run the test suite; fix what breaks.",
    "Add a --dry-run flag to the deploy command.",
    "The search index is stale after a rename; add a test that reproduces it first.",
    "Use the API key from the environment instead of reading it from the settings file.",
    "How many input tokens does a typical request use? Add a metric for it.",
)

_ASSISTANT = (
    "I'll start by reading the relevant files to understand the current implementation.",
    "Let me run the tests first to see the failure.",
    "The problem is in how the session is refreshed: the token is read before the lock is taken, so two requests can both see an expired token and both refresh it.",
    "I found the issue. The config loader falls back to the default key when the environment variable is empty, not only when it is missing.",
    "All tests pass now. Here's a summary of the changes:",
    "Now let me update the documentation to match.",
    "The secret is only read from the environment now; the settings file keeps a placeholder.",
    "This needs a migration for the new column; I'll add it and a test for the down step.",
    "I'll check whether anything else depends on the old key name before renaming it.",
    "The password hashing uses a constant-time comparison already, so no change is needed there.",
)

_SNIPPETS = (
    "def refresh_token(session: Session) -> str:\n    with session.lock:\n        if session.token_expired():\n            session.token = client.fetch_token(session.refresh_token)\n    return session.token\n",
    'const apiKey = process.env.API_KEY;\nif (!apiKey) {\n  throw new Error("API_KEY is not set");\n}\nconst client = new Client({ apiKey, timeout: 30_000 });\n',
    "func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {\n\tv, ok := s.items[key]\n\tif !ok {\n\t\treturn nil, ErrNotFound\n\t}\n\treturn v, nil\n}\n",
    'password = getpass.getpass("Password: ")\nif not verify(password, user.password_hash):\n    raise AuthError("bad credentials")\n',
    "SELECT id, user_id, created_at FROM sessions WHERE expires_at < now() ORDER BY created_at LIMIT 100;\n",
    'export function useAuth() {\n  const [token, setToken] = useState<string | null>(null);\n  useEffect(() => { setToken(localStorage.getItem("token")); }, []);\n  return { token, setToken };\n}\n',
    'let secret = std::env::var("APP_SECRET").context("APP_SECRET missing")?;\nlet key = derive_key(&secret, &salt)?;\n',
)

_COMMANDS = (
    "git status --short",
    "git diff --stat",
    "python -m pytest -q tests/test_auth.py",
    "npm test -- --watch=false",
    "rg -n 'api_key|token' src/",
    "ls -la config/",
    "pip install -e '.[dev]'",
    "docker compose logs --tail 50 web",
    "git log --oneline -10",
    "cat .env.example",
    "kubectl get pods -n staging",
    "make lint",
)

# Application log lines (a few mention tokens and keys, as real logs do); {n} is a number,
# {h} a hex id.
_LOG_LINES = (
    "INFO  auth.session: token refreshed for user_id={n} expires_in=3600",
    "DEBUG cache: miss key=user:{n}:profile ttl=300",
    "WARN  http.client: retrying POST /v1/orders/{n} (attempt 2/5) after 502",
    "INFO  worker: processed batch size={n} duration_ms={n}",
    "ERROR api: request failed status=401 reason=invalid_token request_id={h}",
    "INFO  db: pool stats active={n} idle=6 waiting=0",
    "DEBUG config: loaded {n} keys from settings.toml",
    "INFO  scheduler: job nightly-export next_run=2026-03-15T02:00:00Z",
    'INFO  uvicorn.access: 172.18.0.{n}:51234 - "GET /api/v1/items?page={n} HTTP/1.1" 200',
    'INFO  uvicorn.access: 172.18.0.{n}:51240 - "POST /api/v1/orders HTTP/1.1" 201',
    "DEBUG sqlalchemy.engine: SELECT orders.id, orders.total FROM orders WHERE orders.user_id = {n}",
    "INFO  celery.worker: Task app.tasks.send_invoice[{h}] succeeded in 0.{n}s: None",
    "WARN  app.views: slow request path=/dashboard duration_ms={n}",
    "INFO  gunicorn.error: Booting worker with pid: {n}",
    "ERROR app.payments: charge failed order_id={n} code=card_declined",
    'DEBUG httpx: HTTP Request: GET https://api.example.com/v2/status "HTTP/1.1 200 OK"',
    "INFO  migrations: applying 00{n}_add_index_orders_created_at",
    "WARN  redis: connection reset, reconnecting in 1s",
    "INFO  app.auth: login ok user_id={n} method=password mfa=totp",
    "DEBUG app.cache: set key=report:{n} size={n}B",
)

_HEX = "0123456789abcdef"
_B62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _stdlib_sources() -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for rel in _STDLIB_FILES:
        p = root / rel
        if p.is_file():
            out.append(p.read_text(encoding="utf-8", errors="replace"))
    if not out:  # pragma: no cover - a Python without its sources: use our own
        here = Path(__file__).resolve().parent.parent / "src" / "sessionseal"
        out = [p.read_text(encoding="utf-8") for p in sorted(here.rglob("*.py"))]
    return out


class _Gen:
    def __init__(self, rng: random.Random, sources: list[str], secrets: Sequence[str]) -> None:
        self.rng = rng
        self.sources = sources
        self.secrets = list(secrets)
        self.session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.parent: str | None = None
        self.clock = 1_773_300_000.0
        self.cwd = rng.choice(("/home/dev/webapp", "/home/dev/ledger", "/Users/sam/src/api-gateway"))

    # ------------------------------------------------------------ small values
    def _id(self, prefix: str, n: int = 24) -> str:
        return prefix + "".join(self.rng.choice(_B62) for _ in range(n))

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _ts(self) -> str:
        import time

        self.clock += self.rng.uniform(0.2, 40)
        ms = int(self.clock * 1000) % 1000
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.clock)) + f".{ms:03d}Z"

    def _usage(self) -> dict[str, object]:
        r = self.rng
        created = r.choice((0, r.randint(100, 20000)))
        return {
            "input_tokens": r.randint(1, 12),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": r.randint(5000, 180000),
            "cache_creation": {"ephemeral_5m_input_tokens": created, "ephemeral_1h_input_tokens": 0},
            "output_tokens": r.randint(1, 2500),
            "service_tier": "standard",
        }

    # ------------------------------------------------------------ content
    def file_excerpt(self) -> tuple[str, str]:
        src = self.rng.choice(self.sources)
        lines = src.splitlines()
        a = self.rng.randrange(max(1, len(lines) - 40))
        b = min(len(lines), a + self.rng.randint(30, 400))
        return "\n".join(lines[a:b]), f"{self.cwd}/src/{self.rng.choice(('app', 'core', 'lib'))}/mod{a % 97}.py"

    def numbered(self, code: str, first: int) -> str:
        return "\n".join(f"{first + i:6d}\u2192{line}" for i, line in enumerate(code.split("\n")))

    def command_output(self, cmd: str) -> str:  # noqa: PLR0911 - one kind of output per command
        r = self.rng
        if "pytest" in cmd:
            dots = "".join(r.choice("....................F.s") for _ in range(r.randint(20, 200)))
            return f"{dots}\n=========== short test summary info ===========\nFAILED tests/test_auth.py::test_refresh_token_expired - AssertionError: assert 2 == 1\n1 failed, {len(dots) - 1} passed in {r.uniform(0.5, 30):.2f}s"
        if cmd.startswith("git log"):
            return "\n".join(
                f"{''.join(r.choice(_HEX) for _ in range(7))} {r.choice(_ASSISTANT)[:60]}" for _ in range(10)
            )
        if cmd.startswith("ls"):
            names = ("settings.toml", "logging.yaml", "secrets.example.env", "keys/", "tokens.json.example", "db.ini")
            return "total 48\n" + "\n".join(
                f"-rw-r--r--  1 dev dev {r.randint(100, 9000):5d} Mar {r.randint(1, 28):2d} 10:{r.randint(10, 59)} {n}"
                for n in names
            )
        if "docker" in cmd or "logs" in cmd:
            return "\n".join(
                f"web-1  | 2026-03-14 10:{r.randint(10, 59)}:{r.randint(10, 59)} {self.log_line()}" for _ in range(50)
            )
        if cmd.startswith("pip"):
            return "\n".join(
                f"Requirement already satisfied: {p} in ./.venv/lib/python3.11/site-packages ({v})"
                for p, v in (
                    ("requests", "2.32.3"),
                    ("cryptography", "44.0.1"),
                    ("keyring", "25.6.0"),
                    ("pyjwt", "2.10.1"),
                )
            )
        if cmd.startswith("cat .env"):
            return "DATABASE_URL=postgres://app:${DB_PASSWORD}@localhost:5432/app\nAPI_KEY=your-api-key-here\nSECRET_KEY=changeme\nREDIS_URL=redis://localhost:6379/0\nLOG_LEVEL=info"
        if cmd.startswith("kubectl"):
            return "NAME                     READY   STATUS    RESTARTS   AGE\n" + "\n".join(
                f"web-{''.join(r.choice(_HEX) for _ in range(10))}-{''.join(r.choice('bcdfghjklmnpqrstvwxz') for _ in range(5))}   1/1     Running   0          {r.randint(1, 90)}m"
                for _ in range(6)
            )
        return "\n".join(self.log_line() for _ in range(r.randint(3, 30)))

    def log_line(self) -> str:
        r = self.rng
        line = r.choice(_LOG_LINES)
        while "{n}" in line:
            line = line.replace("{n}", str(r.randint(1, 99999)), 1)
        return line.replace("{h}", "".join(r.choice(_HEX) for _ in range(12)))

    def json_doc(self) -> str:
        r = self.rng
        doc = {
            "id": self._uuid(),
            "object": "list",
            "data": [
                {
                    "id": self._id("ord_", 14),
                    "amount": r.randint(100, 99999),
                    "currency": "usd",
                    "customer": self._id("cus_", 14),
                    "metadata": {"source": "api", "idempotency_key": self._uuid()},
                    "created": r.randint(1_700_000_000, 1_780_000_000),
                }
                for _ in range(r.randint(2, 12))
            ],
            "has_more": r.random() < 0.5,
        }
        return json.dumps(doc, indent=2)

    def prose(self) -> str:
        return " ".join(self.rng.choice(_ASSISTANT) for _ in range(self.rng.randint(1, 4)))

    # ------------------------------------------------------------ records
    def _claude(self, kind: str, message: Mapping[str, object], **extra: object) -> str:
        me = self._uuid()
        rec: dict[str, object] = {
            "parentUuid": self.parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session,
            "version": "2.0.76",
            "gitBranch": "main",
            "type": kind,
            "message": message,
            **extra,
            "uuid": me,
            "timestamp": self._ts(),
        }
        self.parent = me
        return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))

    def _assistant(self, content: list[dict[str, object]]) -> str:
        msg: dict[str, object] = {
            "model": "claude-sonnet-4-5-20250929",
            "id": self._id("msg_01"),
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(),
        }
        return self._claude("assistant", msg, requestId=self._id("req_011C"))

    def _tool_result(self, tool_id: str, content: str) -> str:
        msg = {"role": "user", "content": [{"tool_use_id": tool_id, "type": "tool_result", "content": content}]}
        return self._claude("user", msg)

    def claude_turn(self, extra: str | None) -> list[str]:
        r = self.rng
        out = []
        prompt = r.choice(_PROMPTS)
        if extra is not None and r.random() < 0.3:
            prompt += "\n" + extra
            extra = None
        out.append(self._claude("user", {"role": "user", "content": prompt}))
        for _ in range(r.randint(2, 8)):
            tool_id = self._id("toolu_01", 22)
            kind = r.random()
            if kind < 0.4:
                code, path = self.file_excerpt()
                out.append(
                    self._assistant([{"type": "tool_use", "id": tool_id, "name": "Read", "input": {"file_path": path}}])
                )
                if extra is not None and r.random() < 0.5:
                    code += "\n" + extra
                    extra = None
                out.append(self._tool_result(tool_id, self.numbered(code, r.randint(1, 300))))
            elif kind < 0.7:
                cmd = r.choice(_COMMANDS)
                if extra is not None and r.random() < 0.3:
                    cmd += f" && echo {extra}"
                    extra = None
                out.append(
                    self._assistant(
                        [
                            {
                                "type": "tool_use",
                                "id": tool_id,
                                "name": "Bash",
                                "input": {"command": cmd, "description": "Run " + cmd.split()[0]},
                            }
                        ]
                    )
                )
                output = self.command_output(cmd)
                if extra is not None and r.random() < 0.5:
                    output += "\n" + extra
                    extra = None
                out.append(self._tool_result(tool_id, output))
            elif kind < 0.85:
                code, path = self.file_excerpt()
                lines = code.split("\n")
                old = "\n".join(lines[:8])
                new = old.replace("self", "self ").replace("return", "return  ")
                out.append(
                    self._assistant(
                        [
                            {
                                "type": "tool_use",
                                "id": tool_id,
                                "name": "Edit",
                                "input": {"file_path": path, "old_string": old, "new_string": new},
                            }
                        ]
                    )
                )
                out.append(
                    self._tool_result(
                        tool_id,
                        f"The file {path} has been updated. Here's the result of running `cat -n` on a snippet of the edited file:\n"
                        + self.numbered("\n".join(lines[:20]), 1),
                    )
                )
            else:
                doc = self.json_doc()
                out.append(
                    self._assistant(
                        [
                            {
                                "type": "tool_use",
                                "id": tool_id,
                                "name": "Bash",
                                "input": {"command": "curl -s localhost:8080/v1/orders | jq ."},
                            }
                        ]
                    )
                )
                out.append(self._tool_result(tool_id, doc))
        text = self.prose() + "\n\n```python\n" + r.choice(_SNIPPETS) + "```\n\n" + self.prose()
        if extra is not None:
            text += "\n" + extra
        out.append(self._assistant([{"type": "text", "text": text}]))
        return out

    # ------------------------------------------------------------ codex
    def _codex(self, kind: str, payload: dict[str, object]) -> str:
        return json.dumps(
            {"timestamp": self._ts(), "type": kind, "payload": payload}, ensure_ascii=False, separators=(",", ":")
        )

    def codex_turn(self, extra: str | None) -> list[str]:
        r = self.rng
        out = []
        prompt = r.choice(_PROMPTS)
        if extra is not None and r.random() < 0.3:
            prompt += "\n" + extra
            extra = None
        out.append(
            self._codex(
                "response_item",
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]},
            )
        )
        out.append(self._codex("event_msg", {"type": "user_message", "message": prompt, "images": []}))
        total = r.randint(10000, 400000)
        for _ in range(r.randint(2, 8)):
            call_id = self._id("call_", 24)
            cmd = (
                r.choice(_COMMANDS)
                if r.random() < 0.6
                else f"sed -n '1,200p' src/{r.choice(('app', 'core'))}/mod{r.randint(1, 90)}.py"
            )
            if extra is not None and r.random() < 0.3:
                cmd += f" && echo {extra}"
                extra = None
            args = json.dumps({"command": ["bash", "-lc", cmd], "workdir": self.cwd, "timeout_ms": 120000})
            out.append(
                self._codex(
                    "response_item", {"type": "function_call", "name": "shell", "arguments": args, "call_id": call_id}
                )
            )
            output = self.file_excerpt()[0] if cmd.startswith("sed") else self.command_output(cmd)
            if extra is not None and r.random() < 0.5:
                output += "\n" + extra
                extra = None
            body = json.dumps(
                {"output": output, "metadata": {"exit_code": 0, "duration_seconds": round(r.uniform(0, 9), 1)}}
            )
            out.append(
                self._codex("response_item", {"type": "function_call_output", "call_id": call_id, "output": body})
            )
            inp, cached, outp = r.randint(2000, 60000), r.randint(0, 50000), r.randint(10, 3000)
            total += inp + outp
            usage = {
                "input_tokens": inp,
                "cached_input_tokens": cached,
                "output_tokens": outp,
                "reasoning_output_tokens": r.randint(0, outp),
                "total_tokens": inp + outp,
            }
            out.append(
                self._codex(
                    "event_msg",
                    {
                        "type": "token_count",
                        "info": {
                            "total_token_usage": {**usage, "total_tokens": total},
                            "last_token_usage": usage,
                            "model_context_window": 272000,
                        },
                        "rate_limits": {
                            "primary": {
                                "used_percent": round(r.uniform(0, 90), 1),
                                "window_minutes": 300,
                                "resets_at": 1773496800,
                            }
                        },
                    },
                )
            )
        text = self.prose() + "\n\n```\n" + r.choice(_SNIPPETS) + "```"
        if extra is not None:
            text += "\n" + extra
        out.append(
            self._codex(
                "response_item",
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]},
            )
        )
        return out


def transcript_text(size: int, secrets: Sequence[str], *, secret_every: int = 256 << 10, seed: int = 21) -> str:
    """About *size* characters of Claude Code / Codex JSONL with one of *secrets* about every
    *secret_every* characters (placed in a prompt, a command, a file or an output)."""
    rng = random.Random(seed)
    gen = _Gen(rng, _stdlib_sources(), secrets)
    lines: list[str] = []
    total = 0
    next_secret = secret_every if secrets else size + 1
    while total < size:
        extra = None
        if total >= next_secret:
            extra = rng.choice(gen.secrets)
            next_secret += secret_every
        turn = gen.claude_turn(extra) if rng.random() < 0.6 else gen.codex_turn(extra)
        for line in turn:
            lines.append(line)
            total += len(line) + 1
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - a quick look: python benchmarks/_transcripts_text.py 0.2
    import sys

    n = int(float(sys.argv[1] if len(sys.argv) > 1 else "0.1") * 1e6)
    sys.stdout.write(transcript_text(n, ["API_KEY=sk-live-0000"], secret_every=max(1, n // 4)))
