"""Credential files of package managers and tools, as documents (issue 21, "Coverage at scanner scale").

One realistic file per kind -- ``.npmrc``, ``.pypirc``, ``.netrc``, ``.pgpass``,
``.git-credentials``, docker ``config.json``, kubeconfig, ``.env``, ``~/.aws/credentials``,
``gh`` ``hosts.yml``, cargo ``credentials.toml``, ``~/.gem/credentials``, maven
``settings.xml``, ``gradle.properties``, composer ``auth.json``, ``.boto``, ``rclone.conf``,
terraform ``credentials.tfrc.json``, ``.s3cfg`` -- as an agent would ``cat`` it into a
session: every secret value is gone, and every line without one comes out unchanged (host
names, user names, regions, credential helpers, certificate authorities).  Files that are
JSON or YAML are also stored as trees and checked the same way.  All values are made up.
"""

from __future__ import annotations

import json
from typing import NamedTuple, cast

import pytest
import yaml

from sessionseal._sanitize import JSONValue, Sanitizer


class AuthFile(NamedTuple):
    text: str
    secrets: tuple[str, ...]
    tree: str | None = None  # "json" or "yaml": the file is also stored as a tree


NPM = "npm_Qm7dK2vLx9TfR4bN8cW1pZ6sJ3hY0gE5aU2i"
GL_UUID = "4f1c2b9e-77aa-4d0e-9b1f-2c6e8a9d3f10"
HEROKU_UUID = "0d5c1f8e-3b2a-4c7e-9f6d-1a2b3c4d5e6f"
PYPI = (
    "pypi-AgEIcHlwaS5vcmcCJGI4ZTc5YjQyLTk4MWQtNGQ0Yy1hNmE1LWYzYzc0ZGE1ZTk0NQACKlszLCJhNDJm"
    "Mzc4Ny1hZjQ1LTRkMTctYjZlNi1lMmFjMDdlMTg0ZmEiXQAABiDlq0M1e"
)
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0"
    ".c2lnbmF0dXJlX3ZhbHVlX2Zvcl90ZXN0aW5nX29ubHlfMTIzNDU2"
)
CA_DATA = (
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkekNDQVIyZ0F3SUJBZ0lCQURBS0JnZ3Foa2pPUFFRREFq"
    "QWpNU0V3SHdZRFZRUUREQmhyTTNNdApjMlZ5ZG1WeUxXTmhRREUyT0RBd01EQXdNREF3SGhjTk1qTXdNVEF4TURB"
    "LS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
)
CLIENT_KEY_DATA = (
    "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSU9ZOUt4Z1BYbTRyMmtXN3RxOVpMbTNOcDhS"
    "djVUdzJZeDdBYjRDZDZFZmdvQW9HQ0NxR1NNNDkKQXdFSG9VUURRZ0FFbk1kN3FSdDJZdjlYejRLbTZQcTFTdzhU"
    "eDNWYTVCYjdDYzJEZDRFZTZGZjhHZzBIaDFJaQotLS0tLUVORCBFQyBQUklWQVRFIEtFWS0tLS0tCg=="
)

FILES: dict[str, AuthFile] = {
    ".npmrc": AuthFile(
        f"""registry=https://registry.npmjs.org/
//registry.npmjs.org/:_authToken={NPM}
//npm.corp.internal/:_auth=ZGVwbG95OlRyMHViNGRvcitTYWx0
//npm.corp.internal/:_password=UzNjcjN0UGFzc3cwcmQh
//npm.corp.internal/:username=deploy
//npm.corp.internal/:email=deploy@corp.internal
always-auth=true
//gitlab.corp.internal/api/v4/packages/npm/:_authToken={GL_UUID}
""",
        (NPM, "ZGVwbG95OlRyMHViNGRvcitTYWx0", "UzNjcjN0UGFzc3cwcmQh", GL_UUID),
    ),
    ".pypirc": AuthFile(
        f"""[distutils]
index-servers =
    pypi
    private

[pypi]
username = __token__
password = {PYPI}

[private]
repository = https://pypi.corp.internal/simple/
username = uploader
password = Vq8#mT2!zR5wLp
""",
        (PYPI, "Vq8#mT2!zR5wLp"),
    ),
    ".netrc": AuthFile(
        f"""machine api.heroku.com
  login ops@corp.internal
  password {HEROKU_UUID}
machine git.corp.internal login builder password hX7kP2mQ9vR4tW
""",
        (HEROKU_UUID, "hX7kP2mQ9vR4tW"),
    ),
    ".pgpass": AuthFile(
        """# hostname:port:database:username:password
db.corp.internal:5432:orders:app_rw:Kp3$vX9mQz2!Lr
replica.corp.internal:6432:orders:reporting:Fh8wQ2zLm5Rt
*:*:*:postgres:N0tTh3D3fault#2024
""",
        ("Kp3$vX9mQz2!Lr", "Fh8wQ2zLm5Rt", "N0tTh3D3fault#2024"),
    ),
    ".git-credentials": AuthFile(
        """https://deploy-bot:ghp_R4nd0mT0k3nV4lu3Abc123Xyz789Def456Ghi0@github.com
https://builder:glpat-Yq8Lm3Nz7Pw2Rx5Tv9Ks@gitlab.com
https://jenkins:Pa55w0rd-Z9q@bitbucket.corp.internal
""",
        ("ghp_R4nd0mT0k3nV4lu3Abc123Xyz789Def456Ghi0", "glpat-Yq8Lm3Nz7Pw2Rx5Tv9Ks", "Pa55w0rd-Z9q"),
    ),
    "docker config.json": AuthFile(
        """{
  "auths": {
    "https://index.docker.io/v1/": {
      "auth": "ZGV2b3BzOmRja3JfcGF0X1F4N2tMbTJOcDlScjR2VHc2WXoxQWIzQ2Q="
    },
    "registry.corp.internal": {
      "auth": "Y2k6SzlxIVJ0NyR2WG0yUHo=",
      "identitytoken": "JWT_HERE"
    },
    "ghcr.io": {
      "registrytoken": "gho_9xKq2LmR7vTz4NbW1pYc8sHd3fJg6AeU5iOo"
    }
  },
  "credHelpers": {
    "123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login",
    "gcr.io": "gcloud"
  },
  "credsStore": "desktop"
}
""".replace("JWT_HERE", JWT),
        (
            "ZGV2b3BzOmRja3JfcGF0X1F4N2tMbTJOcDlScjR2VHc2WXoxQWIzQ2Q=",
            "Y2k6SzlxIVJ0NyR2WG0yUHo=",
            JWT,
            "gho_9xKq2LmR7vTz4NbW1pYc8sHd3fJg6AeU5iOo",
        ),
        "json",
    ),
    "kubeconfig": AuthFile(
        f"""apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {CA_DATA}
    server: https://k8s.corp.internal:6443
  name: prod
users:
- name: admin
  user:
    token: {JWT}
- name: legacy
  user:
    username: admin
    password: Wq9!xR4mZ7pL2v
- name: certuser
  user:
    client-key-data: {CLIENT_KEY_DATA}
contexts:
- context:
    cluster: prod
    user: admin
  name: prod
current-context: prod
""",
        (JWT, "Wq9!xR4mZ7pL2v", CLIENT_KEY_DATA),
        "yaml",
    ),
    ".env": AuthFile(
        """# app settings
NODE_ENV=production
PORT=8080
DATABASE_URL=postgres://app:Zx8!qLm2Rt@db.corp.internal:5432/app
REDIS_PASSWORD=Rd7#kQ2vXp9m
SESSION_SECRET=9f8e7d6c5b4a39281706f5e4d3c2b1a0
OPENAI_API_KEY=sk-proj-Tq7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3Zr6Wt8Xv1Yp5Ks2Lc7Nh4Dg9Fj0Tb
LANGFUSE_PUBLIC_KEY=pk-lf-6b1e0c2a-9d4f-4e7a-8c3b-5f2d1a0e9c7b
LANGFUSE_SECRET_KEY=sk-lf-2c9e4a7b-1d3f-4b6e-a8c0-7e5d3b1f9a2c
LOG_LEVEL=info
""",
        (
            "Zx8!qLm2Rt",
            "Rd7#kQ2vXp9m",
            "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "sk-proj-Tq7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3Zr6Wt8Xv1Yp5Ks2Lc7Nh4Dg9Fj0Tb",
            "sk-lf-2c9e4a7b-1d3f-4b6e-a8c0-7e5d3b1f9a2c",
        ),
    ),
    "~/.aws/credentials": AuthFile(
        """[default]
aws_access_key_id = AKIA4Q7LM2NZ9PW4RX8V
aws_secret_access_key = kT9mX2pQ7vR4wL8zN3bY6cF1hJ5dG0sA2eU7iO4n
region = eu-west-1

[ci]
aws_access_key_id=ASIA2R7KD9QW3MN5TL8P
aws_secret_access_key=Zq4Lm8Nt2Pw6Rx9Vk3Ys7Ub1Hd5Jf0Gc2Ae7Io4M
aws_session_token=IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQDx7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3
""",
        (
            "AKIA4Q7LM2NZ9PW4RX8V",
            "kT9mX2pQ7vR4wL8zN3bY6cF1hJ5dG0sA2eU7iO4n",
            "ASIA2R7KD9QW3MN5TL8P",
            "Zq4Lm8Nt2Pw6Rx9Vk3Ys7Ub1Hd5Jf0Gc2Ae7Io4M",
            "IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQDx7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3",
        ),
    ),
    "gh hosts.yml": AuthFile(
        """github.com:
    user: octo-dev
    oauth_token: gho_Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4M
    git_protocol: ssh
github.corp.internal:
    user: builder
    oauth_token: 7c1e9a3b5d2f8e4a6c0b9d1f3e5a7c9b2d4f6e8a
    git_protocol: https
""",
        ("gho_Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4M", "7c1e9a3b5d2f8e4a6c0b9d1f3e5a7c9b2d4f6e8a"),
        "yaml",
    ),
    "cargo credentials.toml": AuthFile(
        """[registry]
token = "cio3Xq8Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc"

[registries.corp]
token = "Bearer kx7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae"
""",
        ("cio3Xq8Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc", "kx7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae"),
    ),
    "~/.gem/credentials": AuthFile(
        """---
:rubygems_api_key: rubygems_5f2a9c7e1b3d8f4a6c0e2b9d7f1a3c5e8b0d2f4a6c8e1b3d
:github: Bearer ghp_Tq7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7
""",
        ("rubygems_5f2a9c7e1b3d8f4a6c0e2b9d7f1a3c5e8b0d2f4a6c8e1b3d", "ghp_Tq7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7"),
    ),
    "~/.m2/settings.xml": AuthFile(
        """<settings>
  <servers>
    <server>
      <id>corp-releases</id>
      <username>deployer</username>
      <password>Mv8!rT2qLx9#pZ</password>
    </server>
    <server>
      <id>github</id>
      <username>octo-dev</username>
      <password>ghp_Yx3Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7</password>
    </server>
  </servers>
  <mirrors><mirror><id>central</id><url>https://repo.corp.internal/maven2</url></mirror></mirrors>
</settings>
""",
        ("Mv8!rT2qLx9#pZ", "ghp_Yx3Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7"),
    ),
    "gradle.properties": AuthFile(
        """org.gradle.jvmargs=-Xmx2g
org.gradle.parallel=true
mavenCentralUsername=releasebot
mavenCentralPassword=Gr4dl3!Pw_x9Lq
signing.keyId=24875D73
signing.password=S1gn!ngPa55-q7
signing.secretKeyRingFile=/home/ci/.gnupg/secring.gpg
artifactoryPassword=AKCp8kq7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3Zr6
""",
        ("Gr4dl3!Pw_x9Lq", "S1gn!ngPa55-q7", "AKCp8kq7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3Zr6"),
    ),
    "composer auth.json": AuthFile(
        """{
    "http-basic": {
        "repo.packagist.com": {
            "username": "token",
            "password": "c8e2f7a1b4d9e3f6a0c5b8d2e7f1a4c9b3d6e0f2"
        }
    },
    "github-oauth": {
        "github.com": "5e1a9c3f7b2d8e4a0c6f1b9d3e7a5c2f8b4d0e6a"
    },
    "gitlab-token": {
        "gitlab.com": "glpat-Rk4Lm2Nz9Pw4Rx8Vk3Ys"
    },
    "bearer": {
        "packages.corp.internal": "Tq9Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5J"
    }
}
""",
        (
            "c8e2f7a1b4d9e3f6a0c5b8d2e7f1a4c9b3d6e0f2",
            "5e1a9c3f7b2d8e4a0c6f1b9d3e7a5c2f8b4d0e6a",
            "glpat-Rk4Lm2Nz9Pw4Rx8Vk3Ys",
            "Tq9Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5J",
        ),
    ),
    ".boto": AuthFile(
        """[Credentials]
aws_access_key_id = AKIA7R2LM9NZ4PW8RX3V
aws_secret_access_key = Hq2Lm8Nt4Pw6Rx9Vk3Ys7Ub1Hd5Jf0Gc2Ae7Io4

[Boto]
debug = 0
num_retries = 10
""",
        ("AKIA7R2LM9NZ4PW8RX3V", "Hq2Lm8Nt4Pw6Rx9Vk3Ys7Ub1Hd5Jf0Gc2Ae7Io4"),
    ),
    "rclone.conf": AuthFile(
        """[gdrive]
type = drive
client_id = 123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com
client_secret = GOCSPX-Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0
token = {"access_token":"ya29.a0AfH6SMBx7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3","token_type":"Bearer","refresh_token":"1//0gLm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn","expiry":"2024-05-01T10:00:00Z"}

[sftp-backup]
type = sftp
host = backup.corp.internal
user = backup
pass = 8Hq2ZtW1xL-9vR_mKp3Nc7Yb0Jd5Fg
""",
        (
            "GOCSPX-Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0",
            "ya29.a0AfH6SMBx7Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3",
            "1//0gLm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn",
            "8Hq2ZtW1xL-9vR_mKp3Nc7Yb0Jd5Fg",
        ),
    ),
    "terraform credentials.tfrc.json": AuthFile(
        """{
  "credentials": {
    "app.terraform.io": {
      "token": "Xq7Lm2Nz9Pw4Rx.atlasv1.Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3Zr6Wt8Xv1Yp5Ks2Lc7Nh4Dg9Fj0TbQm8Rp3Sx6Uy"
    },
    "tfe.corp.internal": {
      "token": "Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9"
    }
  }
}
""",
        (
            "Xq7Lm2Nz9Pw4Rx.atlasv1.Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9Bq3Zr6Wt8Xv1Yp5Ks2Lc7Nh4Dg9Fj0TbQm8Rp3Sx6Uy",
            "Lm2Nz9Pw4Rx8Vk3Ys6Ub1Hd5Jf0Gc2Ae7Io4Mn9",
        ),
        "json",
    ),
    ".s3cfg": AuthFile(
        """[default]
access_key = AKIA9Q2LM7NZ4PW8RX3V
secret_key = Jw3Lm8Nt4Pw6Rx9Vk3Ys7Ub1Hd5Jf0Gc2Ae7Io4
host_base = s3.amazonaws.com
host_bucket = %(bucket)s.s3.amazonaws.com
use_https = True
gpg_passphrase = Pz7!kQ2vXm9rLt
""",
        ("AKIA9Q2LM7NZ4PW8RX3V", "Jw3Lm8Nt4Pw6Rx9Vk3Ys7Ub1Hd5Jf0Gc2Ae7Io4", "Pz7!kQ2vXm9rLt"),
    ),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_an_auth_file_loses_its_secrets_and_keeps_its_other_lines(san: Sanitizer, name: str) -> None:
    file = FILES[name]
    out = san.sanitize_text(file.text).text
    for secret in file.secrets:
        assert secret not in out, f"{name}: {secret[:6]}... survived"
    before, after = file.text.split("\n"), out.split("\n")
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        if not any(secret in old for secret in file.secrets):
            assert new == old, f"{name}: a line without a secret changed"


def _leaves(value: JSONValue, path: str = "") -> dict[str, JSONValue]:
    if isinstance(value, dict):
        return {p: v for k, sub in value.items() for p, v in _leaves(sub, f"{path}/{k}").items()}
    if isinstance(value, list):
        return {p: v for i, sub in enumerate(value) for p, v in _leaves(sub, f"{path}[{i}]").items()}
    return {path: value}


@pytest.mark.parametrize("name", sorted(n for n, f in FILES.items() if f.tree))
def test_an_auth_file_stored_as_a_tree_loses_its_secrets_and_keeps_its_shape(san: Sanitizer, name: str) -> None:
    file = FILES[name]
    doc = cast("JSONValue", json.loads(file.text) if file.tree == "json" else yaml.safe_load(file.text))
    clean, counts = san.sanitize_tree(doc)
    stored = json.dumps(clean)
    for secret in file.secrets:
        assert secret not in stored, f"{name}: {secret[:6]}... survived"
    assert sum(counts.values()) >= len(file.secrets)
    before, after = _leaves(doc), _leaves(clean)
    assert list(after) == list(before)  # same keys in the same order, same list lengths
    for path, old in before.items():
        if not (isinstance(old, str) and any(secret in old for secret in file.secrets)):
            assert after[path] == old, f"{name}: {path} changed"
