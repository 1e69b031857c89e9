"""Text shapes that used to slip (issue 21, "Structure": "Text shapes that slip").

Each shape is redacted as text, as a JSON-escaped line (a transcript's raw JSON), and as a
stored document: the same text as a JSON string value, and a command line also as its argv
array.  Benign look-alikes come out unchanged.  Every test runs on every prefilter engine.
All values are made up for these tests.
"""

from __future__ import annotations

import json

import pytest

from sessionseal._sanitize import Sanitizer
from sessionseal._sanitize._checks import is_placeholder, is_secret_name
from sessionseal._sanitize._rules import RuleError

PW = "Tq7!vR2mXz9#Lp"
PW2 = "Hq3vZ8m2Kd0pL"
TOK = "qW3rT9yZp2Lk7Vn4Bx8M"
AKID = "AKIAZ7Q3M5XK2LPW4RTN"
AWS_SECRET = "Hq3vZ8m2Kd0pLx7Yt5Rn1Wc9Bf4Gj6Se2Ua8Ti0O"
WP_SALT = "Q#4x!v]9Lk)2p@Zr<7m%Wn}3b^Yt8&Jc"
PEM_BODY = (
    "MIIEowIBAAKCAQEAx7Kp2mQ9vL3nR8tY5wZ1bF4hJ6cD0sE2gA7iU9oP3qW8eX5r",
    "T1yV4uN6mB2kL9jH0fG3dS7aZ8xC5vQ1wE4rT6yU9iO2pA3sD5fG7hJ8kL0zX1cV",
)
OPENSSH_BODY = (
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "QyNTUxOQAAACBx7Kp2mQ9vL3nR8tY5wZ1bF4hJ6cD0sE2gA7iU9oP3qwAAAJgx7Kp2mQ",
)


def _pem(prefix: str, kind: str = "RSA PRIVATE KEY", body: tuple[str, ...] = PEM_BODY) -> str:
    lines = [f"-----BEGIN {kind}-----", *body, f"-----END {kind}-----"]
    return "".join(f"{prefix}{line}\n" for line in lines)


#: name -> (text, the secrets it holds).  Command lines are also stored as argv arrays.
SHAPES: dict[str, tuple[str, tuple[str, ...]]] = {
    # PGPASSWORD, as an assignment and as a command's environment prefix
    "pgpassword-export": (f"export PGPASSWORD={PW}", (PW,)),
    "pgpassword-env": (f"env PGPASSWORD={PW} psql -h db -U app", (PW,)),
    "pgpassword-prefix": (f"PGPASSWORD={PW} psql -h db", (PW,)),
    "pgpassword-prefix-quoted": (f"PGPASSWORD='{PW}' pg_dump -h db app", (PW,)),
    # a lowercase pwd key
    "pwd-json": (f'{{"uid": "sa", "pwd": "{PW}"}}', (PW,)),
    "Pwd-json": (f'{{"Uid": "sa", "Pwd": "{PW}"}}', (PW,)),
    "pwd-connection-string": (f"Driver={{ODBC Driver 18}};Server=db;uid=sa;pwd={PW};", (PW,)),
    "pwd-config": (f"[db]\nuser = app\npwd = {PW2}\n", (PW2,)),
    # htpasswd -b
    "htpasswd-b": (f"htpasswd -b /etc/nginx/.htpasswd admin {PW}", (PW,)),
    "htpasswd-bc": (f"htpasswd -bc .htpasswd alice '{PW}'", (PW,)),
    "htpasswd-nbB": (f"htpasswd -nbB -C 10 alice {PW}", (PW,)),
    # openssl passwords
    "openssl-k": (f"openssl enc -aes-256-cbc -salt -in a.txt -out a.enc -k {PW}", (PW,)),
    "openssl-pass": (f"openssl enc -d -aes-256-cbc -in a.enc -pass pass:{PW}", (PW,)),
    "openssl-passin": (f"openssl rsa -in key.pem -passin pass:{PW} -out plain.pem", (PW,)),
    # sudo -S
    "sudo-S": (f"echo '{PW}' | sudo -S apt-get update", (PW,)),
    "sudo-S-k": (f'echo "{PW}" | sudo -S -k systemctl restart nginx', (PW,)),
    "sudo-stdin-printf": (f"printf '%s\\n' '{PW}' | sudo --stdin ls /root", (PW,)),
    # az login
    "az-login-p": (f"az login -u ops@corp.example.org -p {PW}", (PW,)),
    "az-login-password": (f"az login --username ops@corp.example.org --password '{PW}'", (PW,)),
    # vault login
    "vault-login-token": (f"vault login s.{TOK}", (f"s.{TOK}",)),
    "vault-login-userpass": (f"vault login -method=userpass username=ops password={PW}", (PW,)),
    # an AWS key id joined to its secret
    "aws-key-pair": (f"{AKID}:{AWS_SECRET}", (AKID, AWS_SECRET)),
    "aws-key-pair-csv": (f"ops,{AKID},{AWS_SECRET}", (AKID, AWS_SECRET)),
    # a percent-encoded access_token, and a fragment
    "redirect-uri-encoded": (
        f"https://idp.example.org/authorize?redirect_uri=https%3A%2F%2Fx.example.org%2Fcb%3Faccess_token%3D{TOK}&state=1",
        (TOK,),
    ),
    "redirect-uri-encoded-twice": (
        f"/login?next=https%253A%252F%252Fx.example.org%252Fcb%253Faccess_token%253D{TOK}",
        (TOK,),
    ),
    "fragment-encoded": (f"next=https%3A%2F%2Fapp.example.org%2Fcb%23access_token%3D{TOK}", (TOK,)),
    "fragment": (f"https://app.example.org/cb#access_token={TOK}&token_type=bearer", (TOK,)),
    # Kubernetes env entries in YAML, the value on the next line
    "k8s-env": (f"      env:\n        - name: DB_PASSWORD\n          value: {PW2}\n", (PW2,)),
    "k8s-env-quoted": (f'  - name: "API_TOKEN"\n    value: "{TOK}"\n', (TOK,)),
    # WordPress define()
    "wp-db-password": (f"define('DB_PASSWORD', '{PW}');", (PW,)),
    "wp-auth-key": (f'define( "AUTH_KEY", "{WP_SALT}" );', (WP_SALT,)),
    "wp-nonce-key": (f"define('NONCE_KEY',        '{WP_SALT}');", (WP_SALT,)),
    "wp-nonce-salt": (f"define('NONCE_SALT', '{WP_SALT}');", (WP_SALT,)),
    # .pgpass lines, with and without the file's name
    "pgpass-cat": (f"$ cat ~/.pgpass\ndb.internal:5432:app:appuser:{PW2}\n", (PW2,)),
    "pgpass-line": (f"db.internal:5432:app:appuser:{PW2}", (PW2,)),
    "pgpass-wildcards": (f"*:*:*:postgres:{PW2}", (PW2,)),
    # PEM private keys quoted, commented or indented
    "pem-mail-quoted": (_pem("> "), PEM_BODY),
    "pem-double-quoted": (_pem(">> ", "OPENSSH PRIVATE KEY", OPENSSH_BODY), OPENSSH_BODY),
    "pem-hash-commented": (_pem("# ", "PRIVATE KEY"), PEM_BODY),
    "pem-indented": (_pem("    ", "EC PRIVATE KEY"), PEM_BODY),
    "pem-c-comment": ("/*\n" + _pem(" * ") + " */\n", PEM_BODY),
    # passwords in prose, in other languages
    "de-ist": (f"Das Passwort für die Datenbank ist {PW2}", (PW2,)),
    "de-kennwort": (f"Kennwort: {PW2}", (PW2,)),
    "de-lautet": (f"Das neue Passwort lautet {PW2}", (PW2,)),
    "fr-est": (f"Le mot de passe est {PW2}", (PW2,)),
    "fr-colon": (f"mot de passe : {PW2}", (PW2,)),
    "es-es": (f"La contraseña es {PW2}", (PW2,)),
    "es-clave": (f"clave: {PW2}", (PW2,)),
    "pt-e": (f"A senha é {PW2}", (PW2,)),
    "pt-colon": (f"senha: {PW2}", (PW2,)),
    "it-e": (f"La password è {PW2}", (PW2,)),
    "it-parola": (f"parola d'ordine: {PW2}", (PW2,)),
    "nl-is": (f"Het wachtwoord is {PW2}", (PW2,)),
    "pl-colon": (f"Hasło: {PW2}", (PW2,)),
    "pl-to": (f"hasło to {PW2}", (PW2,)),
    "ru-colon": (f"Пароль: {PW2}", (PW2,)),
    "ru-dash": (f"пароль — {PW2}", (PW2,)),
    "zh-fullwidth-colon": (f"密码\uff1a{PW2}", (PW2,)),  # a full-width colon
    "zh-shi": (f"数据库的密码是 {PW2}", (PW2,)),
    "ja-colon": (f"パスワード\uff1a{PW2}", (PW2,)),
    "ja-wa": (f"パスワードは {PW2} です", (PW2,)),
    "ko-colon": (f"비밀번호: {PW2}", (PW2,)),
    "ko-neun": (f"비밀번호는 {PW2} 입니다", (PW2,)),
    "tr-colon": (f"Şifre: {PW2}", (PW2,)),
    "tr-equals": (f"şifre={PW2}", (PW2,)),
    "zh-after-latin": (f"WiFi密码是{PW2}", (PW2,)),
    "cs-je": (f"Heslo je {PW2}", (PW2,)),
    "sv-ar": (f"Lösenordet är {PW2}", (PW2,)),
    "fi-on": (f"Salasana on {PW2}", (PW2,)),
    "id-adalah": (f"Kata sandi adalah {PW2}", (PW2,)),
    "vi-la": (f"Mật khẩu là {PW2}", (PW2,)),
    "ar-colon": (f"كلمة المرور: {PW2}", (PW2,)),
    # real values with "example" or "..." in them
    "example-in-password": ("DB_PASSWORD=Prod-Example-9xQ!", ("Prod-Example-9xQ!",)),
    "dots-in-password": ('password: "Summer...2024!x"', ("Summer...2024!x",)),
}

#: Shapes whose JSON-escaped form (a raw transcript line) is not handled: a .pgpass line is
#: recognised at the start of a line only.
NOT_ESCAPED = {"pgpass-line", "pgpass-wildcards"}

#: Documents that hold the shapes: (document, secrets).
DOCS: dict[str, tuple[object, tuple[str, ...]]] = {
    "pgpassword-argv": (["env", f"PGPASSWORD={PW}", "psql", "-h", "db"], (PW,)),
    "pgpassword-k8s-env": ({"env": [{"name": "PGPASSWORD", "value": PW}]}, (PW,)),
    "pgpassword-env-dict": ({"env": {"PGPASSWORD": PW, "PGHOST": "db"}}, (PW,)),
    "pwd-dict": ({"server": "db", "uid": "sa", "pwd": PW}, (PW,)),
    "htpasswd-argv": (["htpasswd", "-bc", "/etc/nginx/.htpasswd", "admin", PW], (PW,)),
    "openssl-argv": (["openssl", "enc", "-d", "-in", "a.enc", "-k", PW], (PW,)),
    "sudo-sh-c": (["bash", "-c", f"echo '{PW}' | sudo -S whoami"], (PW,)),
    "az-argv": (["az", "login", "-u", "ops@corp.example.org", "-p", PW], (PW,)),
    "vault-argv": (["vault", "login", f"s.{TOK}"], (f"s.{TOK}",)),
    "k8s-env-list": ({"env": [{"name": "DB_PASSWORD", "value": PW2}]}, (PW2,)),
    "k8s-yaml-in-tool-result": ({"output": f"spec:\n  env:\n  - name: DB_PASSWORD\n    value: {PW2}\n"}, (PW2,)),
    "wp-config-file": (
        {
            "path": "wp-config.php",
            "content": f"<?php\ndefine('DB_PASSWORD', '{PW}');\ndefine('AUTH_KEY', '{WP_SALT}');\n",
        },
        (PW, WP_SALT),
    ),
    "intl-chat": ({"role": "user", "content": [{"type": "text", "text": f"Das Passwort ist {PW2}"}]}, (PW2,)),
}

#: Look-alikes that must come out unchanged, as text and in a document.
BENIGN: dict[str, str] = {
    "PWD-path": "PWD=/home/me/project",
    "PWD-var": "cd $PWD/build && make",
    "pwd-command": "$ pwd\n/home/me/project",
    "pwd-path-json": '{"pwd": "/home/me/project"}',
    "PWD-json": '{"PWD": "/home/me/project", "HOME": "/home/me"}',
    "pwd-expression": "pwd = (self.password.encode('utf-8') if self.password else b'')",
    "Pwd-path": '{"Pwd": "/srv/app"}',
    "passwort-field-list": "pw_name:pw_Passwort:pw_uid:pw_gid:pw_gecos:pw_Verz:pw_shell",
    "mot-de-passe-url": "Choisir un mot de passe robuste sur https://fr.wikipedia.org/wiki/Mot_de_passe",
    "pgpassword-ref": 'PGPASSWORD="$DB_PASSWORD" psql -h db',
    "aws-documented-pair": "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "your-api-key-example": "API_KEY=your-api-key-example",
    "sk-dots": "OPENAI_API_KEY=sk-...",
    "angle-example": "token: <example>",
    "example-token": "TOKEN=example-token",
    "EXAMPLE_KEY": "SECRET=EXAMPLE_KEY",
    "k8s-secret-ref": "        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: db\n",
    "k8s-plain-env": "        - name: LOG_LEVEL\n          value: debug\n",
    "wp-db-name": "define('WP_DEBUG', true);\ndefine('DB_NAME', 'wordpress');",
    "wp-sample-key": "define('AUTH_KEY', 'put your unique phrase here');",
    "timestamp-fields": "12:30:45:00:Hq3vZ8m2Kd0pL",
    "compose-ports": "ports:\n  - 5432:5432\n",
    "de-rule": "Das Passwort muss mindestens zwölf Zeichen haben.",
    "fr-wrong": "Le mot de passe est incorrect.",
    "es-short": "La contraseña es demasiado corta",
    "zh-prompt": "请输入密码",
    "ja-prompt": "パスワードを入力してください",
    "ko-forgot": "비밀번호를 잊으셨나요?",
    "ru-forgot": "Забыли пароль?",
    "conclave": "The conclave: 2024 summary",
    "htpasswd-prompted": "htpasswd -c /etc/nginx/.htpasswd alice",
    "openssl-env-source": "openssl enc -aes-256-cbc -in a -out b -pass env:BACKUP_PASS",
    "openssl-file-source": "openssl enc -d -in a.enc -pass file:/run/secrets/pw.txt",
    "vault-oidc": "vault login -method=oidc",
    "sudo-tee": "echo 'hello' | sudo tee /etc/motd",
    "az-device-code": "az login --use-device-code",
    "public-key-quoted": "> -----BEGIN PUBLIC KEY-----\n> MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx7Kp2mQ9vL3nR8tY5wZ1bF4h\n> -----END PUBLIC KEY-----\n",
    "encoded-token-type": "redirect_uri=https%3A%2F%2Fapp.example.org%2Fcb%3Ftoken_type%3Dbearer",
}


def _leaks(result: object, secrets: tuple[str, ...]) -> list[str]:
    dumped = json.dumps(result, ensure_ascii=False)
    return [s for s in secrets if s in dumped]


@pytest.mark.parametrize("name", SHAPES)
def test_shape_is_redacted_as_text(san: Sanitizer, name: str) -> None:
    text, secrets = SHAPES[name]
    out = san.sanitize_text(text)
    assert not [s for s in secrets if s in out.text], out.text
    assert san.sanitize_text(out.text).text == out.text  # idempotent


@pytest.mark.parametrize("name", [n for n in SHAPES if n not in NOT_ESCAPED])
def test_shape_is_redacted_in_a_json_escaped_line(san: Sanitizer, name: str) -> None:
    text, secrets = SHAPES[name]
    line = json.dumps({"type": "tool_result", "content": text}, ensure_ascii=False)
    out = san.sanitize_text(line).text
    assert not _leaks(json.loads(out), secrets), out
    assert json.loads(out).keys() == {"type", "content"}


@pytest.mark.parametrize("name", SHAPES)
def test_shape_is_redacted_in_a_document(san: Sanitizer, name: str) -> None:
    text, secrets = SHAPES[name]
    doc: dict[str, object] = {"type": "message", "content": [{"type": "text", "text": text}]}
    out, counts = san.sanitize_tree(doc)  # type: ignore[arg-type]
    assert counts
    assert not _leaks(out, secrets)
    if "\n" not in text and " " in text:
        argv = text.split(" ")
        out_argv, _ = san.sanitize_tree(argv)  # type: ignore[arg-type]
        assert isinstance(out_argv, list) and len(out_argv) == len(argv)
        assert not _leaks(out_argv, secrets), out_argv


@pytest.mark.parametrize("name", DOCS)
def test_document_shape_is_redacted(san: Sanitizer, name: str) -> None:
    doc, secrets = DOCS[name]
    out, counts = san.sanitize_tree(doc)  # type: ignore[arg-type]
    assert counts
    assert not _leaks(out, secrets), out


@pytest.mark.parametrize("name", BENIGN)
def test_look_alike_is_kept(san: Sanitizer, name: str) -> None:
    text = BENIGN[name]
    assert san.sanitize_text(text).text == text
    doc = {"content": text}
    assert san.sanitize_tree(doc) == (doc, {})  # type: ignore[arg-type]


def test_benign_documents_are_kept(san: Sanitizer) -> None:
    for doc in (
        {"PWD": "/home/me/project", "OLDPWD": "/home/me"},
        {"pwd": "/home/me/project"},
        {"db_password": "/run/secrets/db_password", "api_token": "~/.config/acme/token"},
        ["env", "PWD=/srv/app", "make"],
        {"env": [{"name": "PGHOST", "value": "db.internal"}, {"name": "PGPASSWORD", "valueFrom": {"x": 1}}]},
    ):
        assert san.sanitize_tree(doc) == (doc, {})  # type: ignore[arg-type]


def test_names_that_say_password() -> None:
    for name in ("PGPASSWORD", "ROOTPASSWORD", "dbpasswd", "pwd", "MYSQL_PWD", "db_pwd"):
        assert is_secret_name(name), name
    for name in ("PWD", "OLDPWD", "PGPASSWORD_FILE", "password_min_length", "showpassword_toggle"):
        assert not is_secret_name(name), name


def test_placeholder_heuristic_keeps_documented_fakes_only() -> None:
    for fake in (
        "AKIAIOSFODNN7EXAMPLE",
        "your-api-key-example",
        "sk-...",
        "<example>",
        "example-token",
        "EXAMPLE_KEY",
        "eyJhbGciOiJIUzI1NiJ9...",
        "ops@example.com",
        "ghp_Ab3...Xy9",
    ):
        assert is_placeholder(fake), fake
    for real in ("Prod-Example-9xQ!", "Summer...2024!x", "Example#2024Prod"):
        assert not is_placeholder(real), real


def test_non_ascii_keywords_cost_nothing_on_ascii_text(san: Sanitizer) -> None:
    # The non-ASCII cue words are looked for only in texts with a non-ASCII character, by one
    # regex: an ASCII text that spells them some other way is never matched by them.
    assert san.sanitize_text(f"haslo: {PW2}").text == f"haslo: {PW2}"
    assert san.sanitize_text(f"hasło: {PW2}").text != f"hasło: {PW2}"


def test_non_ascii_keywords_work_in_user_rules_and_need_anchor_mode(make: object) -> None:
    rule = {"id": "acme-kennung", "regex": r"Kennung\u00a7(?P<v>\d{6})", "keywords": ["kennung\u00a7"]}
    san = make(extra_rules=[rule])  # type: ignore[operator]
    assert san.sanitize_text("Kennung\u00a7482913").counts == {"acme-kennung": 1}
    with pytest.raises(RuleError, match="non-ASCII keywords need mode 'anchor'"):
        make(extra_rules=[{**rule, "mode": "window"}])  # type: ignore[operator]
