# SPDX-License-Identifier: MIT
"""jobwheel token create|list|revoke against a real database: the token is
shown once and stored only as its SHA-256, bad input changes nothing, and
jobwheel.token_scope() follows creation and revocation."""
import hashlib
import json
import re

import pytest

from conftest import cli, one

TOKEN_RE = re.compile(r"jw_[0-9a-f]{64}")


def create(dsn, name, scope):
    """Creates a token with the CLI; returns the token from the last line of stdout."""
    r = cli(dsn, "token", "create", name, "--scope", scope)
    lines = r.stdout.splitlines()
    assert lines and TOKEN_RE.fullmatch(lines[-1]), r.stdout
    return lines[-1]


def tokens_count(db):
    return one(db, "SELECT count(*) FROM jobwheel.tokens")


def test_create_prints_a_fresh_token_alone_on_the_last_line(dsn, db):
    r = cli(dsn, "token", "create", "ci", "--scope", "write")
    lines = r.stdout.splitlines()
    assert TOKEN_RE.fullmatch(lines[-1]), r.stdout
    assert len(lines) == 2 and "ci" in lines[0] and "write" in lines[0]
    assert r.stderr == ""
    other = create(dsn, "deploy", "read")
    assert other != lines[-1]


def test_only_the_sha256_of_the_token_is_stored(dsn, db):
    token = create(dsn, "ci", "admin")
    row = db.execute("SELECT name, scope, hash, revoked_at FROM jobwheel.tokens").fetchone()
    assert row[:2] == ("ci", "admin") and row[3] is None
    assert bytes(row[2]) == hashlib.sha256(token.encode()).digest()
    # The token's text appears nowhere in the table, in any column.
    assert one(db, "SELECT count(*) FROM jobwheel.tokens t WHERE strpos(t::text, %s) > 0", token) == 0
    assert one(db, "SELECT count(*) FROM jobwheel.tokens t WHERE strpos(t::text, %s) > 0", token[3:]) == 0


@pytest.mark.parametrize("scope", ["read", "write", "admin"])
def test_token_scope_gives_the_scope(dsn, db, scope):
    token = create(dsn, "t1", scope)
    assert one(db, "SELECT jobwheel.token_scope(%s)", token) == scope
    assert one(db, "SELECT jobwheel.token_scope(%s)", token[:-1] + ("0" if token[-1] != "0" else "1")) is None


def test_scope_flag_with_equals_and_json_output(dsn, db):
    r = cli(dsn, "--json", "token", "create", "ci", "--scope=read")
    out = json.loads(r.stdout)
    assert out["name"] == "ci" and out["scope"] == "read" and TOKEN_RE.fullmatch(out["token"])
    assert out["id"] == one(db, "SELECT id FROM jobwheel.tokens WHERE name = 'ci'")
    assert one(db, "SELECT jobwheel.token_scope(%s)", out["token"]) == "read"


def test_a_second_active_token_with_the_same_name_is_refused(dsn, db):
    first = create(dsn, "ci", "write")
    r = cli(dsn, "token", "create", "ci", "--scope", "admin", check=False)
    assert r.returncode == 1
    assert "ci" in r.stderr and "exists" in r.stderr
    assert not TOKEN_RE.search(r.stdout)
    assert tokens_count(db) == 1
    assert one(db, "SELECT jobwheel.token_scope(%s)", first) == "write"


def test_the_name_is_free_again_once_revoked(dsn, db):
    old = create(dsn, "ci", "write")
    cli(dsn, "token", "revoke", "ci")
    new = create(dsn, "ci", "read")
    assert one(db, "SELECT jobwheel.token_scope(%s)", old) is None
    assert one(db, "SELECT jobwheel.token_scope(%s)", new) == "read"
    assert tokens_count(db) == 2


@pytest.mark.parametrize("args,message", [
    (["ci", "--scope", "owner"], '--scope must be read, write or admin, not "owner"'),
    (["ci", "--scope", "READ"], '--scope must be read, write or admin, not "READ"'),
    (["ci", "--scope="], '--scope must be read, write or admin, not ""'),
    (["ci"], "create needs --scope"),
    (["ci", "--scope"], 'missing value for "--scope"'),
    (["--scope", "read"], "create needs a NAME"),
    (["ci", "--scope", "read", "--scope", "write"], 'flag given twice: "--scope"'),
    (["ci", "extra", "--scope", "read"], 'unexpected argument "extra"'),
    (["ci", "--scope", "read", "--ttl", "1d"], 'unknown flag "--ttl"'),
])
def test_usage_errors_exit_2_and_insert_nothing(dsn, db, args, message):
    r = cli(dsn, "token", "create", *args, check=False)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert r.stdout == ""
    assert tokens_count(db) == 0


def test_bad_scope_is_refused_before_touching_the_database(tmp_path):
    # Nothing listens on this socket directory: exit 2, not a connection error.
    r = cli(f"postgresql:///nodb?host={tmp_path}", "token", "create", "ci", "--scope", "root", check=False)
    assert r.returncode == 2 and "--scope" in r.stderr and "connect" not in r.stderr


def test_a_bad_name_is_refused_by_the_database(dsn, db):
    r = cli(dsn, "token", "create", "Bad Name", "--scope", "read", check=False)
    assert r.returncode == 1
    assert 'name: "Bad Name" is not a valid name' in r.stderr
    assert not TOKEN_RE.search(r.stdout)
    assert tokens_count(db) == 0


def test_list_shows_names_and_scopes_never_the_token(dsn, db):
    tokens = [create(dsn, "ci", "write"), create(dsn, "grafana", "read")]
    r = cli(dsn, "token", "list")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SCOPE", "CREATED", "AT", "STATUS"]
    assert lines[1].split()[:2] == ["ci", "write"] and lines[1].split()[-1] == "active"
    assert lines[2].split()[:2] == ["grafana", "read"] and lines[2].split()[-1] == "active"
    hashes = [hashlib.sha256(t.encode()).hexdigest() for t in tokens]
    for secret in tokens + [t[3:] for t in tokens] + hashes:
        assert secret not in r.stdout


def test_list_json(dsn, db):
    token = create(dsn, "ci", "admin")
    cli(dsn, "token", "revoke", "ci")
    create(dsn, "ci", "read")
    r = cli(dsn, "--json", "token", "list")
    assert token not in r.stdout and hashlib.sha256(token.encode()).hexdigest() not in r.stdout
    rows = json.loads(r.stdout)
    assert [(t["name"], t["scope"], t["active"]) for t in rows] == [("ci", "admin", False), ("ci", "read", True)]
    assert rows[0]["revoked_at"] is not None and rows[1]["revoked_at"] is None
    assert all(t["created_at"] for t in rows)
    assert set(rows[0]) == {"id", "name", "scope", "created_at", "revoked_at", "active"}


def test_list_when_there_are_no_tokens(dsn, db):
    assert json.loads(cli(dsn, "--json", "token", "list").stdout) == []
    assert "no active token" in cli(dsn, "token", "list").stdout


def test_revoke_disables_the_token(dsn, db):
    token = create(dsn, "ci", "write")
    create(dsn, "other", "read")
    r = cli(dsn, "token", "revoke", "ci")
    assert "ci" in r.stdout and r.stderr == ""
    assert one(db, "SELECT jobwheel.token_scope(%s)", token) is None
    line = next(ln for ln in cli(dsn, "token", "list").stdout.splitlines() if ln.startswith("ci "))
    assert "revoked" in line and "active" not in line
    assert one(db, "SELECT revoked_at IS NOT NULL FROM jobwheel.tokens WHERE name = 'ci'") is True


def test_revoking_the_last_token_warns_that_the_api_is_open(dsn, db):
    create(dsn, "ci", "write")
    r = cli(dsn, "token", "revoke", "ci")
    assert "last active token" in r.stderr
    assert one(db, "SELECT jobwheel.token_scope(NULL)") == "open"


@pytest.mark.parametrize("name", ["nope", "Bad Name"])
def test_revoking_an_unknown_name_exits_1(dsn, db, name):
    create(dsn, "ci", "write")
    r = cli(dsn, "token", "revoke", name, check=False)
    assert r.returncode == 1
    assert f'no active token named "{name}"' in r.stderr
    assert one(db, "SELECT count(*) FROM jobwheel.tokens WHERE revoked_at IS NULL") == 1


def test_revoking_twice_exits_1(dsn, db):
    create(dsn, "ci", "write")
    cli(dsn, "token", "revoke", "ci")
    r = cli(dsn, "token", "revoke", "ci", check=False)
    assert r.returncode == 1 and 'no active token named "ci"' in r.stderr


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["list", "extra"], ["revoke"], ["revoke", "a", "b"],
                                  ["revoke", "--all"]])
def test_subcommand_usage_errors_exit_2(dsn, db, args):
    r = cli(dsn, "token", *args, check=False)
    assert r.returncode == 2 and "usage: jobwheel token" in r.stderr


def test_the_api_is_open_only_while_no_active_token_exists(dsn, db):
    assert one(db, "SELECT jobwheel.token_scope(NULL)") == "open"
    assert one(db, "SELECT jobwheel.token_scope('anything')") == "open"
    token = create(dsn, "ci", "read")
    assert one(db, "SELECT jobwheel.token_scope(NULL)") is None
    assert one(db, "SELECT jobwheel.token_scope('')") is None
    assert one(db, "SELECT jobwheel.token_scope(%s)", token) == "read"


def test_database_errors_exit_1(tmp_path):
    r = cli(f"postgresql:///nodb?host={tmp_path}", "token", "list", check=False)
    assert r.returncode == 1 and "cannot connect" in r.stderr


def test_usage_lists_the_token_command(dsn):
    assert "token create NAME --scope read|write|admin" in cli(dsn, "--help").stdout
