"""Where a node keeps its state: :class:`Storage` from flags, the environment and a TOML
config file (in that order), every refusal with its message, the command line's use of
it (``serve``, ``token``), and the embedded default importing no database or S3 driver."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from inferproof.engine import CONFIG_FILE, Storage
from inferproof.errors import InputError
from tests._cli import inferproof

FLAG, ENV, FILE = ("postgresql://flag@127.0.0.1/a", "postgresql://env@127.0.0.1/b",
                   "postgresql://file@127.0.0.1/c")  # fmt: skip
_VARS = ("INFERPROOF_DATABASE", "INFERPROOF_BLOBS", "INFERPROOF_S3_ENDPOINT")


@pytest.fixture(autouse=True)
def _no_storage_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)


def _config(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def test_a_flag_wins_over_the_environment_which_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path / CONFIG_FILE, f'[storage]\ndatabase = "{FILE}"\n'
            'blobs = "s3://file-bucket/p"\ns3_endpoint = "http://file:9000"\n')  # fmt: skip
    env = {"INFERPROOF_DATABASE": ENV, "INFERPROOF_BLOBS": "s3://env-bucket/p"}
    assert Storage.resolve(tmp_path, environ=env, database=FLAG) == Storage(
        database=FLAG, blobs="s3://env-bucket/p", s3_endpoint="http://file:9000"
    )
    assert Storage.resolve(tmp_path, environ=env).database == ENV
    assert Storage.resolve(tmp_path, environ={}) == Storage(
        database=FILE, blobs="s3://file-bucket/p", s3_endpoint="http://file:9000"
    )
    # An unset (None) flag falls through; the real process environment is read by default.
    monkeypatch.setenv("INFERPROOF_DATABASE", ENV)
    assert Storage.resolve(tmp_path, database=None).database == ENV


def test_the_homes_config_file_and_an_explicit_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert Storage.resolve(home, environ={}) == Storage()  # no file: the embedded default
    assert Storage.resolve(home, environ={}).embedded
    _config(home / CONFIG_FILE, f'[storage]\ndatabase = "{FILE}"\n')
    assert Storage.resolve(home, environ={}).database == FILE
    other = _config(tmp_path / "elsewhere.toml", f'[storage]\ndatabase = "{FLAG}"\n')
    # --config replaces the home's file (it is not merged with it).
    assert Storage.resolve(home, config=other, environ={}) == Storage(database=FLAG)
    empty = _config(tmp_path / "empty.toml", "")
    assert Storage.resolve(home, config=empty, environ={}) == Storage()


def test_environ_round_trips(tmp_path: Path) -> None:
    full = Storage(database=FLAG, blobs="s3://bucket/prefix", s3_endpoint="https://s3:9000")
    assert set(full.environ()) == set(_VARS)
    assert Storage.resolve(tmp_path, environ=full.environ()) == full
    only = Storage(database=FLAG)
    assert only.environ() == {"INFERPROOF_DATABASE": FLAG}
    assert Storage.resolve(tmp_path, environ=only.environ()) == only
    assert Storage().environ() == {}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"database": "sqlite:///x.db"}, "the database must be a postgresql:// URL, not "
                                         "'sqlite:///x.db'"),
        ({"database": "mysql://db/x"}, "the database must be a postgresql:// URL"),
        ({"s3_endpoint": "http://s3:9000"}, "an S3 endpoint needs blobs in S3"),
        ({"blobs": "s3://bucket/p", "s3_endpoint": "ftp://s3"},
         "the S3 endpoint is an http:// or https:// URL"),
        ({"blobs": "s3://No_Such"}, "is not an S3 bucket name"),
        ({"blobs": "https://bucket/p"}, "s3://"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused(values: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        Storage(**values)
    # The same value from the environment is refused the same way.
    env = {f"INFERPROOF_{k.upper()}": v for k, v in values.items()}
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        Storage.resolve(tmp_path, environ=env)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[storage]\ndatabase = "x"\n[other]\nk = "v"\n', r"unknown section\(s\) \['other'\]"),
        ('[storage]\ndatabse = "postgresql://h/d"\n',
         r"unknown storage key\(s\) \['databse'\]; known: \['database', 'blobs'"),
        ("[storage]\ndatabase = 5\n", "storage.database must be a non-empty string"),
        ('[storage]\nblobs = ""\n', "storage.blobs must be a non-empty string"),
        ('storage = "postgresql://h/d"\n', "storage must be a table"),
        ("[storage\n", "is not a TOML config file"),
        (b"[storage]\n# \xff\n", "is not a TOML config file"),
        ('[storage]\ndatabase = "sqlite:///x"\n', "the database must be a postgresql:// URL"),
        ('[storage]\nblobs = "s3://No_Such"\n', "is not an S3 bucket name"),
    ],
)  # fmt: skip
def test_bad_config_files_are_refused(body: str | bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    with pytest.raises(InputError, match=message):
        Storage.resolve(tmp_path, environ={})  # the home's file
    with pytest.raises(InputError, match=message):
        Storage.resolve(tmp_path / "elsewhere", config=path, environ={})


def test_an_oversized_or_missing_config_file_is_refused(tmp_path: Path) -> None:
    big = _config(tmp_path / "big.toml", "[storage]\n" + "# padding\n" * 7000)
    with pytest.raises(InputError, match=r"big\.toml: a config file is at most 65536 bytes"):
        Storage.resolve(tmp_path, config=big, environ={})
    with pytest.raises(InputError, match=r"cannot read the config file .*nowhere\.toml"):
        Storage.resolve(tmp_path, config=tmp_path / "nowhere.toml", environ={})


def test_serve_refuses_a_bad_database_before_binding(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"), COLUMNS="300")
    done = inferproof(env, "serve", "--port", "0", "--database", "sqlite:///x")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: the database must be a postgresql:// URL, not 'sqlite:///x' "
        "(leave it unset for the embedded SQLite files)"
    )
    assert "listening" not in done.stdout
    bad_file = _config(tmp_path / "bad.toml", "[storage]\nport = 1\n")
    done = inferproof(env, "serve", "--port", "0", "--config", str(bad_file))
    assert done.returncode == 2 and "unknown storage key(s) ['port']" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_tokens_in_the_database_from_the_command_line(postgres: Any, tmp_path: Path) -> None:
    import psycopg

    from inferproof.stores import SQLTokenStore, hash_token

    name = "cfg_" + uuid.uuid4().hex[:16]
    base = postgres.url.replace("+psycopg", "")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = base.rsplit("/", 1)[0] + "/" + name
    home = tmp_path / "home"
    env = dict(os.environ, INFERPROOF_HOME=str(home), COLUMNS="300")
    made = inferproof(env, "token", "create", "--label", "ops", "--database", url)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    listed = inferproof(env, "token", "list", "--database", url)
    assert listed.returncode == 0, listed.stderr
    assert hash_token(token)[:16] in listed.stdout and "ops" in listed.stdout
    assert SQLTokenStore(url).check(token) == hash_token(token)
    assert not (home / "node" / "tokens").exists()  # not in the home's file
    # The same through the home's config file, and the file store knows nothing of it.
    _config(home / CONFIG_FILE, f'[storage]\ndatabase = "{url}"\n')
    again = inferproof(env, "token", "list")
    assert again.returncode == 0 and hash_token(token)[:16] in again.stdout
    local = inferproof(dict(env, INFERPROOF_HOME=str(tmp_path / "other")), "token", "list")
    assert local.returncode == 0 and local.stdout.strip() == ""


_PROBE = """
import sys
from pathlib import Path
from inferproof import LocalNode
with LocalNode(Path(sys.argv[1])) as node:
    node.log.size  # the log's store is chosen and opened
print("psycopg" in sys.modules, "boto3" in sys.modules, "sqlalchemy" in sys.modules)
"""


def test_the_embedded_default_imports_no_driver(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _VARS}
    done = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path / "home")], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    psycopg, boto3, _ = done.stdout.split()
    assert (psycopg, boto3) == ("False", "False")
    assert (tmp_path / "home" / "log" / "log.sqlite").is_file()


def test_a_misspelt_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown storage setting\(s\) \['databse'\]"):
        Storage.resolve(tmp_path, databse=FLAG)


@pytest.mark.parametrize("value", ["ray", "ray://head:10001", "10.0.0.5:6379"])
def test_zk_backend_values(value: str) -> None:
    from inferproof.cli._node import _zk_backend

    assert _zk_backend(value) == value
    assert _zk_backend("local") is None


def test_a_bad_zk_backend_is_refused_before_serving(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"), COLUMNS="300")
    done = inferproof(env, "serve", "--port", "0", "--zk-backend", "grpc://x:1:2")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --zk-backend is local, ray, ray://HOST:PORT or HOST:PORT"
    )
    assert "listening" not in done.stdout


def test_log_commands_read_the_log_in_the_database(postgres: Any, tmp_path: Path) -> None:
    """`inferproof log verify` and `log info` on a node serving from PostgreSQL read its
    log there, not an (empty) SQLite file in the home."""
    import psycopg

    from inferproof.log import open_default_log
    from inferproof.stores import PostgresLogStore

    name = "cfg_" + uuid.uuid4().hex[:16]
    base = postgres.url.replace("+psycopg", "")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = base.rsplit("/", 1)[0] + "/" + name
    home = tmp_path / "home"
    with open_default_log(home, store=PostgresLogStore(url)) as log:
        log.append_many([b"one", b"two", b"three"])
        root = base64.b64encode(log.root()).decode()
    env = dict(os.environ, INFERPROOF_HOME=str(home), INFERPROOF_DATABASE=url, COLUMNS="300")
    done = inferproof(env, "log", "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: 3 entries, 2 checkpoints verified")
    done = inferproof(env, "log", "info")
    assert done.returncode == 0, done.stderr
    assert "size: 3" in done.stdout and f"root: {root}" in done.stdout
    assert not (home / "log" / "log.sqlite").exists()
