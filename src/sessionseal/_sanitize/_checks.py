"""Value checks shared by the rules: names that say secret, placeholders, entropy, base64.

A rule's regular expression finds a candidate; the functions here decide whether the
candidate is really a secret.  They are pure functions of the candidate text (and, for
assignments, the name it is assigned to), so the rule catalogue can refer to them by
name (``check = "assignment"`` in the TOML) and the tests can exercise them directly.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Final

__all__ = [
    "blob_around",
    "decode_base64_text",
    "is_placeholder",
    "is_secret_name",
    "looks_like_password",
    "looks_like_path",
    "looks_like_secret_value",
    "shannon_entropy",
    "split_name",
    "strip_trailing",
]

# --------------------------------------------------------------------------- names

#: Words that make a name secret on their own (after splitting ``DB_PASSWORD`` into words).
# fmt: off
_SECRET_WORDS: Final = frozenset(
    {
        "password", "passwd", "passphrase", "passwort", "secret", "token", "apikey", "credential", "credentials",
        "creds", "authtoken", "accesstoken", "refreshtoken", "bearer", "pat", "privatekey", "secretkey", "apisecret",
        "clientsecret", "authorization", "cookie", "sessionid", "passcode",
    }
)
# fmt: on
#: Words that make a name secret only after another word (``DB_PASS``, ``MYSQL_PWD``).
_SECRET_LAST_WORDS: Final = frozenset({"pass", "pwd", "pw", "auth", "sig", "signature", "salt", "dsn"})
#: Endings that make one word a password's name (``PGPASSWORD``).
_PASSWORD_SUFFIXES: Final = ("password", "passwd", "passphrase")
#: Qualifiers that make ``<qualifier>_key`` a secret name (``API_KEY``, ``signing_key``).
# fmt: off
_KEY_QUALIFIERS: Final = frozenset(
    {
        "api", "access", "secret", "private", "signing", "sign", "encryption", "encrypt", "crypto", "master",
        "client", "app", "application", "account", "auth", "session", "license", "licence", "admin", "service",
        "deploy", "shared", "storage", "consumer", "webhook", "hmac", "jwt", "cipher", "aes", "decryption",
        "subscription", "write", "read", "ingest", "ingestion", "server", "integration", "personal", "live", "prod",
        "production", "root", "cookie", "csrf", "xsrf", "rsa", "ssh", "gpg", "pgp", "mac", "otp", "totp", "recovery",
        "restricted", "publishable", "sdk", "bot", "user", "management", "mgmt", "sas", "primary", "secondary", "x",
    }
)
# fmt: on
#: Vendors whose ``<VENDOR>_KEY`` is an API key (used only together with an entropy floor).
# fmt: off
_KEY_VENDORS: Final = frozenset(
    {
        "openai", "anthropic", "claude", "gemini", "google", "gcp", "azure", "aws", "stripe", "twilio", "sendgrid",
        "mailgun", "mailchimp", "slack", "discord", "github", "gitlab", "huggingface", "hf", "cohere", "mistral",
        "groq", "replicate", "together", "openrouter", "perplexity", "pplx", "deepseek", "xai", "fireworks",
        "pinecone", "algolia", "datadog", "dd", "newrelic", "sentry", "segment", "mapbox", "maps", "firebase",
        "supabase", "vercel", "netlify", "heroku", "cloudflare", "cf", "do", "digitalocean", "linode", "vultr",
        "shopify", "square", "paypal", "braintree", "plaid", "postmark", "resend", "brevo", "sendinblue", "pusher",
        "ably", "tavily", "serper", "serpapi", "brave", "exa", "elevenlabs", "deepgram", "assemblyai", "voyage",
        "jina", "langsmith", "langchain", "wandb", "comet", "neptune", "browserbase", "firecrawl", "apify",
        "airtable", "notion", "linear", "jira", "atlassian", "asana", "clickup", "monday", "hubspot", "intercom",
        "zendesk", "freshdesk", "okta", "auth0", "clerk", "stytch", "workos", "twitch", "twitter", "facebook",
        "meta", "instagram", "telegram", "whatsapp", "vonage", "nexmo", "messagebird", "sinch", "plivo", "tomtom",
        "here", "bing", "weather", "openweather", "nasa", "etherscan", "infura", "alchemy", "moralis", "coinbase",
        "binance", "kraken",
    }
)
# fmt: on
#: A last word that says the value is *about* a secret, not the secret (``TOKEN_COUNT``).
# fmt: off
_NEGATIVE_LAST_WORDS: Final = frozenset(
    {
        "count", "counts", "length", "len", "min", "max", "mode", "modes", "type", "types", "kind", "url", "urls",
        "uri", "endpoint", "file", "files", "path", "paths", "dir", "directory", "env", "name", "names", "id", "ids",
        "expiry", "expires", "expiration", "exp", "ttl", "timeout", "header", "headers", "field", "fields", "prefix",
        "suffix", "hint", "format", "version", "algorithm", "alg", "algo", "size", "limit", "limits", "policy",
        "rotation", "enabled", "enable", "disabled", "required", "provider", "providers", "method", "methods",
        "strategy", "scope", "scopes", "source", "store", "manager", "label", "description", "desc", "placeholder",
        "pattern", "regex", "validation", "validator", "reset", "changed", "updated", "created", "at", "location",
        "ref", "arn", "use", "used", "usage", "budget", "budgets", "estimate", "index", "position", "pos", "class",
        "schema", "table", "column", "param", "parameter", "var", "variable", "input", "visible", "shown",
        "strength", "rules", "rule", "complexity", "encoding", "cache", "bucket", "region", "host", "hostname",
        "port", "user", "username", "email", "stdin", "prompt", "generator", "type_", "key_id", "keyid", "level",
        "status", "state", "len_", "check", "checks", "flow", "grant", "issuer", "audience", "aud", "iss", "sub",
        "lifetime", "duration", "age", "window", "interval", "seconds", "secs", "ms", "minutes", "hours", "days",
        "per", "rate", "quota", "usd", "price", "cost", "total", "remaining", "left", "used_", "hash_algorithm",
        "label_", "list", "map", "dict", "set", "sets", "option", "options", "opts", "config", "settings", "spec",
        "specs", "help", "text", "message", "msg", "error", "errors", "exception", "handler", "callback", "class_",
        "factory", "builder", "loader", "reader", "writer", "parser", "service", "client", "helper", "util", "utils",
        "module", "package", "test", "tests", "spec_", "mock", "fixture", "example", "sample", "doc", "docs",
        "template", "tmpl", "length_", "bytes", "bits", "entropy", "chars", "characters", "digits", "symbols",
        "uppercase", "lowercase", "numbers", "attempts", "retries", "tries", "lockout", "history", "age_", "expired",
        "valid", "invalid", "ok", "set_", "present", "exists", "missing", "given", "provided", "supplied", "mask",
        "masked", "redacted", "filter", "filters",
    }
)
# fmt: on
_NAME_SPLIT: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def split_name(name: str) -> list[str]:
    """Split ``DB_PASSWORD``, ``dbPassword``, ``db-password`` and ``db.password`` into lowercase words."""
    return [w.lower() for w in _NAME_SPLIT.findall(name)]


def _compound(words: list[str]) -> list[str]:
    """Join adjacent words so ``api``+``key`` and ``client``+``secret`` are seen as one word too."""
    joined = [a + b for a, b in itertools.pairwise(words)]
    return words + joined


@lru_cache(maxsize=8192)
def is_secret_name(name: str, *, allow_key: bool = True) -> bool:  # noqa: PLR0911 - a decision list
    """True when a variable, field or flag name says its value is a secret.

    ``GITHUB_TOKEN``, ``password``, ``client_secret``, ``apiKey`` and ``DB_PASS`` are secret
    names; ``token_count``, ``max_tokens``, ``auth_mode``, ``password_min_length``,
    ``PWD`` and ``primary_key`` are not.
    """
    words = split_name(name)
    if not words:
        return False
    last = words[-1]
    if last in _NEGATIVE_LAST_WORDS:
        return False
    if len(words) >= 2 and words[-2] + "_" + last in _NEGATIVE_LAST_WORDS:
        return False
    all_words = _compound(words)
    if any(w in _SECRET_WORDS for w in all_words):
        # "token" must be the noun, not "tokens" (token counts) or "tokenizer".
        return True
    if last.endswith(_PASSWORD_SUFFIXES):
        # One word that ends in "password": PGPASSWORD, ROOTPASSWORD, dbpasswd.
        return True
    if name.strip("\"'") in {"pwd", "Pwd"}:
        # A config's or a connection string's ``pwd``; ``PWD`` is the shell's working directory.
        return True
    if len(words) >= 2 and last in _SECRET_LAST_WORDS:
        return True
    if name.strip("\"'").lower() in {"auth", "sig", "signature", "pass"}:
        return True
    if allow_key and last in {"key", "keys"} and len(words) >= 2:
        qualifier = words[-2]
        return qualifier in _KEY_QUALIFIERS or qualifier in _KEY_VENDORS
    return False


#: ``<qualifier>_key`` names that are not secrets.
# fmt: off
_NOT_SECRET_KEY_QUALIFIERS: Final = frozenset(
    {
        "primary", "foreign", "sort", "partition", "public", "publishable", "pub", "cache", "idempotency", "dedup",
        "dedupe", "lookup", "unique", "composite", "natural", "surrogate", "row", "range", "hash", "object", "s3",
        "blob", "file", "map", "dict", "group", "index", "field", "column", "i18n", "translation", "label",
        "routing", "shard", "cluster", "distribution", "ssh_public", "host",
    }
)
# fmt: on


@lru_cache(maxsize=4096)
def is_key_name(name: str) -> bool:
    """True for ``<anything>_KEY`` names; the caller adds an entropy floor."""
    words = split_name(name)
    return len(words) >= 2 and words[-1] == "key" and words[-2] not in _NOT_SECRET_KEY_QUALIFIERS


# --------------------------------------------------------------------------- values

#: Words that make up documentation placeholders ("sk-your-key-here", "xoxb-your-bot-token").
# fmt: off
_PLACEHOLDER_WORD_LIST: Final = (
    "your", "my", "our", "the", "example", "examples", "sample", "dummy", "fake", "placeholder", "redacted",
    "changeme", "change", "replace", "insert", "here", "todo", "tbd", "fixme", "foo", "bar", "baz", "none", "null",
    "nil", "undefined", "secret", "password", "passwd", "pass", "token", "key", "api", "value", "string", "test",
    "testing", "demo", "real", "actual", "own", "new", "goes", "put", "paste", "access", "auth", "bot", "app", "user",
    "personal", "generated",
)
# fmt: on


def _trie_regex(words: Iterable[str]) -> str:
    """One alternation of *words* shaped as a prefix tree (``pass(?:w(?:d|ord))?``), longest
    first: Python's ``re`` then tries one branch per character instead of every word.
    """
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            return (body if len(branches) > 1 or len(branches[0]) == 1 else "(?:" + body + ")") + "?"
        return body

    return emit(trie)


#: Words that make up documentation placeholders ("sk-your-key-here", "xoxb-your-bot-token").
_PLACEHOLDER_WORDS: Final = re.compile(_trie_regex(_PLACEHOLDER_WORD_LIST) + "|xxx+|yyy+|zzz+")
#: Eight characters that no placeholder word contains (digits, "j", "q"): after the words are
#: removed, at least eight letters and digits are left, so the value is not made of them.
_UNCOVERED: Final = "".join(
    sorted(set("0123456789abcdefghijklmnopqrstuvwxyz") - set("".join(_PLACEHOLDER_WORD_LIST) + "xyz"))
)
_EIGHT_UNCOVERED: Final = re.compile(f"(?:[^{_UNCOVERED}]*+[{_UNCOVERED}]){{8}}" if _UNCOVERED else "(?!)")
_TEMPLATE: Final = re.compile(
    r"^(?:\$\{[^}]*\}?|\$\(.*\)?|\$[A-Za-z_][A-Za-z0-9_]*|\{\{.*\}\}|\{%.*%\}|<%.*%>|%\(?[A-Za-z_][\w.]*\)?s?"
    r"|%[A-Za-z_][A-Za-z0-9_]*%|\{[A-Za-z_][\w.]*\}|<[^<>]{1,80}>|\[[^\[\]]{1,80}\]|`[^`]*`|@[A-Za-z_][\w.]*@?)$"
)
# fmt: off
_WORDS_ONLY: Final = frozenset(
    {
        "true", "false", "yes", "no", "on", "off", "null", "none", "nil", "undefined", "required", "optional",
        "string", "str", "bool", "boolean", "int", "integer", "number", "bytes", "env", "secret", "password",
        "token", "changeme", "default", "disabled", "enabled", "empty", "hidden", "masked", "redacted", "unset",
        "missing", "invalid", "valid", "basic", "bearer", "oauth", "oauth2", "jwt", "hmac", "plain", "plaintext",
    }
)
# fmt: on
_MASK_CHARS: Final = frozenset("xX*.•…#·_-0●○")
_MASK_RUN: Final = re.compile(r"([xX*.\u2022\u2026#\u00b7_0\u25cf\u25cb-])\1{3}")
#: The first characters of the templates above.
_TEMPLATE_FIRST: Final = frozenset("$%{<[`@")


_NOT_ALNUM: Final = re.compile(r"[^0-9a-z]+")
#: Two separate runs of separators ("sk-your-key", "my_secret_password"), in one linear pass.
_TWO_SEPARATOR_RUNS: Final = re.compile(r"[0-9a-z]*+[^0-9a-z]++[0-9a-z]++[^0-9a-z]")
_VENDOR_PREFIX: Final = re.compile(r"^[A-Za-z0-9]{1,12}[_\-.](?:(?:live|test|proj|v1|pat|api\d\d)[_\-])?")


def is_placeholder(value: str) -> bool:  # noqa: PLR0911 - cheapest tests first
    """True for documentation placeholders and masked values: ``<YOUR_API_KEY>``, ``sk-...``,
    ``${TOKEN}``, ``xxxx``, ``****``, ``changeme``, ``ghp_xxxxxxxx``, ``your-token-here``.
    """
    v = value.strip()
    if not v:
        return True
    low = v.lower()
    if len(v) > 256:  # a key block or a long blob: only explicit markers make it a placeholder
        return "example" in low[:64] or "redacted" in low[:64]
    if low in _WORDS_ONLY or (v[0] in _TEMPLATE_FIRST and _TEMPLATE.match(v)):
        return True
    if "placeholder" in low or "redacted" in low or "\u2026" in v:
        return True
    if "example" in low or "..." in v:
        # Documented fakes (AKIAIOSFODNN7EXAMPLE, your-api-key-example, sk-...) unless what
        # is around the word has a real password's structure (Prod-Example-9xQ!).
        return not _real_around(v)
    # Made of placeholder words: "sk-your-key-here", "xoxb-your-bot-token", "my_secret_password".
    if (len(low) < 20 or (len(low) <= 96 and _TWO_SEPARATOR_RUNS.match(low))) and not _EIGHT_UNCOVERED.match(low):
        rest = _PLACEHOLDER_WORDS.sub("", low)
        if len(rest) < len(low) and len(_NOT_ALNUM.sub("", rest)) < 8:
            return True
    # One character over and over, after any vendor prefix: "aaaaaaaaaaaaaaaa",
    # "e2b_1111111111111111", "sk_V2_aaaaaaaa..." (a fill, not a value).
    if len(v) >= 8 and v.count(v[-1]) * 2 > len(v):
        tail = v[max(v.rfind("_"), v.rfind("-"), v.rfind(".")) + 1 :]
        if len(tail) >= 8 and tail.count(tail[-1]) == len(tail):
            return True
    # Mostly mask characters after any short vendor prefix: "ghp_xxxxxxxx", "sk-****".
    if len(v) < 8 or _MASK_RUN.search(v):
        body = _VENDOR_PREFIX.sub("", v)
        if body:
            masked = sum(1 for c in body if c in _MASK_CHARS)
            if masked * 2 >= len(body):
                return True
    return False


_EXAMPLE_MARKS: Final = re.compile(r"example|\.\.\.", re.I)
#: Symbols that a chosen password has and a documented fake or a truncated token has not
#: (separators, ``@``, ``?`` and ``=`` are in e-mail addresses, URLs and names too).
_PASSWORD_SYMBOL: Final = re.compile(r"[!#$%^&*~]")


def _real_around(value: str) -> bool:
    """Whether a value has a real password's structure once ``example`` and ``...`` are taken
    out: 8+ characters with a digit, a letter and a symbol such as ``!``, and mixed case or 12+
    characters (``Prod-Example-9xQ!``, ``Summer...2024!x``)."""
    rest = _EXAMPLE_MARKS.sub("", value)
    if len(rest) < 8 or not _PASSWORD_SYMBOL.search(rest) or not _HAS_DIGIT.search(rest):
        return False
    upper = _HAS_UPPER.search(rest) is not None
    lower = any(c.islower() for c in rest)
    return (upper or lower) and ((upper and lower) or len(rest) >= 12)


_XLOGX: Final = [0.0] + [c * math.log2(c) for c in range(1, 4097)]


def shannon_entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    if n == 0:
        return 0.0
    if n > 4096:
        return -sum(c / n * math.log2(c / n) for c in Counter(value).values())
    # H = log2(n) - sum(c * log2(c)) / n
    return math.log2(n) - sum(map(_XLOGX.__getitem__, Counter(value).values())) / n


_ALL_BYTES: Final = bytes(range(256))
#: log2 of each possible count of distinct byte values (estimated_bits: no call per placeholder).
_LOG2: Final = [0.0, 0.0, *(math.log2(n) for n in range(2, 257))]


def estimated_bits(value: str) -> float:
    """A value's entropy, estimated roughly and cheaply from its first 32 characters (it runs
    for every token placeholder): each character is worth log2 of the number of distinct
    characters, and the value counts as at most twice as long as that number, so repeats add
    nothing.  35 for ``Summer2024!``, 57 for it written three times, about 80 for an AWS key
    id and 150 for a ``ghp_`` token.  Non-ASCII characters all count as one."""
    head = value[:32]
    # The distinct characters, counted in C: the byte values that deleting them removes.
    distinct = 256 - len(_ALL_BYTES.translate(None, head.encode("ascii", "replace")))
    if distinct < 2:
        return 0.0
    n = len(head)
    return (n if n < 2 * distinct else 2 * distinct) * _LOG2[distinct]


_REFERENCE: Final = re.compile(
    r"^(?:[A-Za-z_$][\w$]*(?:(?:\.|::|->|\?\.)[A-Za-z_$][\w$]*)+(?:[(\[].*)?[;,]?"  # a.b.c, a.b(), a.b[
    r"|[A-Za-z_$][\w$]*[(\[].*"  # call(...), x[...]
    r"|(?:new|await|function|lambda|async|require|import|typeof)\b.*)$"
)
# fmt: off
_REF_OBJECTS: Final = frozenset(
    {
        "self", "this", "os", "process", "config", "settings", "env", "req", "request", "ctx", "context", "args",
        "opts", "options", "params", "secrets", "vars", "values", "data", "cfg", "conf", "app", "window", "document",
        "props", "state", "creds", "credentials", "auth", "user", "client", "session", "module", "exports", "import",
        "inputs", "steps", "github", "needs", "matrix", "var", "local", "locals", "cls",
    }
)
# fmt: on
_PATH: Final = re.compile(r"^(?:~|\.{1,2}|[A-Za-z]:)?[/\\](?:[\w.@+\-]+[/\\])*[\w.@+\-]*$")
_URL: Final = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.I)
_IDENT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMERIC: Final = re.compile(r"^[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?$", re.I)


def looks_like_path(v: str) -> bool:
    """A file path (``/home/me``, ``~/x``, ``C:\\x``), not a base64 secret that starts with ``/``."""
    if not _PATH.match(v):
        return False
    segments = [s for s in re.split(r"[/\\]", v) if s]
    # A base64 secret can start with "/", but its segments are long, mixed-case runs.
    return all(len(s) <= 24 or not (re.search(r"[A-Z]", s) and re.search(r"[a-z]", s)) for s in segments)


def looks_like_secret_value(value: str, *, quoted: bool, min_length: int = 4) -> bool:  # noqa: PLR0911
    """Whether the value of a secret-named assignment is a literal secret (not a reference,
    a type, a path, a URL without credentials, a number, a boolean or a placeholder).
    """
    v = value
    if len(v) < min_length:
        return False
    first = v[0]
    if first.isdigit() and len(v) < 8 and _NUMERIC.match(v):
        return False
    if (first in "/~.\\" or (len(v) > 2 and v[1] == ":")) and looks_like_path(v):
        return False
    if "://" in v and _URL.match(v):
        return False
    if not quoted:
        if first == "(" and _REFERENCE.match(v[1:]):
            return False  # an expression in code: ``pwd = (self.password.encode() if …``
        if _REFERENCE.match(v) and (
            not _DOTTED_START.match(v)
            or "(" in v
            or "[" in v
            or _REF_SPLIT.split(v, maxsplit=1)[0].lower() in _REF_OBJECTS
            or not (_HAS_DIGIT.search(v) and _HAS_UPPER.search(v))
        ):
            return False
        if len(v) < 24 and _IDENT.match(v) and not _HAS_DIGIT.search(v):
            # a variable, type or word: ``password = password``, ``token: str``, ``auth: basic``
            return False
        if "<" in v and _GENERIC.match(v) and (">" in v or not _HAS_DIGIT.search(v)):
            # a generic call or type: ``useState<string | null>``, ``Vec<u8>``, ``Map<String,``
            return False
    elif len(v) <= 8 and v.isalpha() and v.islower():
        return False
    if len(v) <= 2 and first in "-|>":
        return False
    return not is_placeholder(v)


#: A generic type or call: ``useState<string``, ``Option<Vec<u8>>``, ``List<String>()``.
_GENERIC: Final = re.compile(r"^[A-Za-z_$][\w$.:]*<[A-Za-z_$][\w$.:<,|\[\]]*(?:>[>\[\]()?;,]*)?$")
_DOTTED_START: Final = re.compile(r"[\w$]+(?:\.|::|->|\?\.)")
_REF_SPLIT: Final = re.compile(r"\.|::|->|\?\.")
_HAS_DIGIT: Final = re.compile(r"\d")
_HAS_UPPER: Final = re.compile(r"[A-Z]")
_SYMBOL: Final = re.compile(r"[^A-Za-z0-9\s]")
#: Where a password is read from, not a password (openssl's ``-pass file:PATH``, ``env:VAR``).
_PASSWORD_SOURCES: Final = ("file:", "env:", "fd:")


def looks_like_password(value: str, *, min_length: int = 6) -> bool:
    """A password written in prose: long enough and not a plain word.

    ``silver-cobalt-copper-banjo46`` and ``7Gjdh!#6ppb*eQuq9@`` are passwords; ``required``,
    ``stored`` and ``manager`` are words.
    """
    v = value
    # A word (``hashing``, ``database``), the commonest candidate, is rejected first.
    if (v.isalpha() and v.isascii() and v.islower()) or len(v) < min_length or len(v) > 128 or is_placeholder(v):
        return False
    if _URL.match(v) or looks_like_path(v) or _REFERENCE.match(v) or v.startswith(_PASSWORD_SOURCES):
        return False
    has_digit = any(c.isdigit() for c in v)
    has_symbol = bool(_SYMBOL.search(v))
    has_upper = any(c.isupper() for c in v)
    has_lower = any(c.islower() for c in v)
    if v.isdigit():
        return len(v) >= 6
    if has_digit and (has_lower or has_upper):
        return True
    if has_symbol and (has_lower or has_upper) and (has_upper or has_digit or len(v) >= 12):
        return not re.fullmatch(r"[a-z]+(?:[-'][a-z]+)?[.,:;!?]?", v)
    return has_upper and has_lower and len(v) >= 10 and not re.fullmatch(r"[A-Z][a-z]+", v)


def strip_trailing(value: str) -> str:
    """Drop punctuation that closes the surrounding code or sentence: ``abc123),`` -> ``abc123``."""
    v = value
    while v:
        c = v[-1]
        closes = c in ")]}>" and v.count({")": "(", "]": "[", "}": "{", ">": "<"}[c]) < v.count(c)
        if c in ",;" or closes or (c == "." and len(v) > 1 and not v[-2].isalnum() and v[-2] not in "=."):
            v = v[:-1]
        else:
            break
    return v


# --------------------------------------------------------------------------- base64

_NON_PRINTABLE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_UNPRINTABLE_ASCII: Final = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def decode_base64_text(blob: str) -> str | None:
    """Decode standard or URL-safe base64 to text; None when it is not base64 of mostly printable text."""
    b = blob.strip()
    if len(b) < 8:
        return None
    b = b.rstrip("=")
    b += "=" * (-len(b) % 4)
    try:
        # validate=True refuses every character outside the alphabet (and non-ASCII text).
        raw = base64.b64decode(b.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    if raw.isascii():  # the same count as the regex below, on bytes
        unprintable = len(raw) - len(raw.translate(None, _UNPRINTABLE_ASCII))
    else:
        unprintable = len(_NON_PRINTABLE.findall(text))
    if unprintable > len(text) * 0.05:
        return None
    return text


_USER_PASS: Final = re.compile(r"^[^\s:]{1,128}:(\S.{0,255})$", re.S)


def decoded_user_password(blob: str) -> bool:
    """True when a base64 blob decodes to ``user:password`` (Basic auth, docker ``auth``)."""
    text = decode_base64_text(blob)
    if text is None:
        return False
    m = _USER_PASS.match(text.strip())
    return m is not None and not is_placeholder(m.group(1))


_B64_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")
_B64_RUN: Final = re.compile(r"[A-Za-z0-9+/=_-]*")
_MAX_BLOB: Final = 1 << 16


def blob_around(text: str, pos: int) -> tuple[int, int]:
    """The run of base64 characters around *pos* (without a JSON escape letter before it)."""
    a = pos
    lo = max(0, pos - _MAX_BLOB)
    while a > lo and text[a - 1] in _B64_CHARS:
        a -= 1
    if a > 0 and text[a - 1] == "\\" and text[a] in "nrt":
        a += 1
    m = _B64_RUN.match(text, pos, pos + _MAX_BLOB)
    return a, m.end() if m else pos
