#!/usr/bin/env python3
"""Seeds a migrated Latch database with N identities, each with an email address (code
credential identifier, verified address) and one active session, by direct SQL.

    bench/seed.py --dsn sqlite:///tmp/x/latch.sqlite --identities 1000000
    bench/seed.py --dsn postgres://postgres@127.0.0.1:5432/latch_bench --identities 1000000

With --password-hash every identity also gets a password credential (identifier: its address)
with that stored hash. Identity i has the address s<i>@seed.test and the session token ory_st_seed<i>
(stored as its SHA-256 hex, as Latch does), valid for 30 days. With --tokens FILE the plain
tokens are written there, one a line, for a whoami load. Only for benchmark databases: it
writes rows directly, without Latch's checks. Uses python3's sqlite3 module, or psql.
"""
import argparse
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

BATCH = 20000


def ts(t):
    # Latch's SQLite timestamps: RFC 3339 text in UTC with microseconds (sorts as text).
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def uid(kind, i):
    # Latch (sqlx) keeps UUIDs in SQLite as 16-byte blobs.
    return uuid.UUID(int=(kind << 120) | i).bytes


def rows(start, n, now, expires):
    for i in range(start, start + n):
        iid = uid(1, i)
        cid = uid(2, i)
        email = f"s{i}@seed.test"
        token = f"ory_st_seed{i}"
        yield i, iid, cid, email, hashlib.sha256(token.encode()).hexdigest(), \
            hashlib.sha256(f"ory_lo_seed{i}".encode()).hexdigest()


def password_config(password_hash):
    return '{"hashed_password":"%s"}' % password_hash


def seed_sqlite(path, n, tokens, password_hash):
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = datetime.now(timezone.utc)
    t, exp = ts(now), ts(now + timedelta(days=30))
    done = 0
    while done < n:
        k = min(BATCH, n - done)
        batch = list(rows(done, k, now, exp))
        with db:
            db.executemany(
                "INSERT INTO identities (id, schema_id, traits, state, state_changed_at, metadata_public, "
                "metadata_admin, external_id, organization_id, created_at, updated_at) "
                "VALUES (?, 'default', ?, 'active', ?, NULL, NULL, NULL, NULL, ?, ?)",
                [(r[1], '{"email":"%s"}' % r[3], t, t, t) for r in batch])
            db.executemany(
                "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at) "
                "VALUES (?, ?, 'code', '{\"addresses\":[{\"channel\":\"email\",\"address\":\"' || ? || '\"}]}', 1, ?, ?)",
                [(r[2], r[1], r[3], t, t) for r in batch])
            if password_hash:
                cfg = password_config(password_hash)
                db.executemany(
                    "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at) "
                    "VALUES (?, ?, 'password', ?, 0, ?, ?)",
                    [(uid(6, r[0]), r[1], cfg, t, t) for r in batch])
                db.executemany(
                    "INSERT INTO identity_credential_identifiers (id, identity_id, credential_id, type, identifier, created_at) "
                    "VALUES (?, ?, ?, 'password', ?, ?)",
                    [(uid(7, r[0]), r[1], uid(6, r[0]), r[3], t) for r in batch])
            db.executemany(
                "INSERT INTO identity_credential_identifiers (id, identity_id, credential_id, type, identifier, created_at) "
                "VALUES (?, ?, ?, 'code', ?, ?)",
                [(uid(3, r[0]), r[1], r[2], r[3], t) for r in batch])
            db.executemany(
                "INSERT INTO identity_verifiable_addresses (id, identity_id, via, value, verified, verified_at, status, created_at, updated_at) "
                "VALUES (?, ?, 'email', ?, 1, ?, 'completed', ?, ?)",
                [(uid(4, r[0]), r[1], r[3], t, t, t) for r in batch])
            db.executemany(
                "INSERT INTO sessions (id, identity_id, token_hash, logout_token_hash, active, aal, authentication_methods, "
                "authenticated_at, issued_at, expires_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 1, 'aal1', '[{\"method\":\"code\",\"aal\":\"aal1\",\"completed_at\":\"' || ? || '\"}]', ?, ?, ?, ?, ?)",
                [(uid(5, r[0]), r[1], r[4], r[5], t, t, t, exp, t, t) for r in batch])
        done += k
        if tokens:
            tokens.writelines(f"ory_st_seed{r[0]}\n" for r in batch)
        print(f"\r{done}/{n}", end="", file=sys.stderr, flush=True)
    db.execute("ANALYZE")
    db.close()


def seed_postgres(dsn, n, tokens, password_hash):
    # One INSERT … SELECT per table over generate_series, hashing with sha256() in SQL.
    sql = f"""
\\set ON_ERROR_STOP 1
SET synchronous_commit = off;
BEGIN;
CREATE TEMP TABLE seed AS SELECT g AS i,
  ('01' || lpad(to_hex(g), 30, '0'))::uuid AS iid,
  ('02' || lpad(to_hex(g), 30, '0'))::uuid AS cid,
  's' || g || '@seed.test' AS email
  FROM generate_series(0, {n - 1}) g;
INSERT INTO identities (id, schema_id, traits, state, state_changed_at, created_at, updated_at)
  SELECT iid, 'default', jsonb_build_object('email', email), 'active', now(), now(), now() FROM seed;
INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at)
  SELECT cid, iid, 'code', jsonb_build_object('addresses', jsonb_build_array(jsonb_build_object('channel', 'email', 'address', email))), 1, now(), now() FROM seed;
INSERT INTO identity_credential_identifiers (id, identity_id, credential_id, type, identifier, created_at)
  SELECT ('03' || lpad(to_hex(i), 30, '0'))::uuid, iid, cid, 'code', email, now() FROM seed;
{password_sql(password_hash)}INSERT INTO identity_verifiable_addresses (id, identity_id, via, value, verified, verified_at, status, created_at, updated_at)
  SELECT ('04' || lpad(to_hex(i), 30, '0'))::uuid, iid, 'email', email, true, now(), 'completed', now(), now() FROM seed;
INSERT INTO sessions (id, identity_id, token_hash, logout_token_hash, active, aal, authentication_methods, authenticated_at, issued_at, expires_at, created_at, updated_at)
  SELECT ('05' || lpad(to_hex(i), 30, '0'))::uuid, iid, encode(sha256(convert_to('ory_st_seed' || i, 'UTF8')), 'hex'),
    encode(sha256(convert_to('ory_lo_seed' || i, 'UTF8')), 'hex'), true, 'aal1',
    jsonb_build_array(jsonb_build_object('method', 'code', 'aal', 'aal1', 'completed_at', now())),
    now(), now(), now() + interval '30 days', now(), now() FROM seed;
COMMIT;
ANALYZE;
"""
    subprocess.run(["psql", dsn, "-q", "-X"], input=sql, text=True, check=True)
    if tokens:
        tokens.writelines(f"ory_st_seed{i}\n" for i in range(n))


def password_sql(password_hash):
    if not password_hash:
        return ""
    cfg = password_config(password_hash).replace("'", "''")
    return f"""INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at)
  SELECT ('06' || lpad(to_hex(i), 30, '0'))::uuid, iid, 'password', '{cfg}'::jsonb, 0, now(), now() FROM seed;
INSERT INTO identity_credential_identifiers (id, identity_id, credential_id, type, identifier, created_at)
  SELECT ('07' || lpad(to_hex(i), 30, '0'))::uuid, iid, ('06' || lpad(to_hex(i), 30, '0'))::uuid, 'password', email, now() FROM seed;
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--identities", type=int, default=1_000_000)
    ap.add_argument("--tokens", help="write the plain session tokens here")
    ap.add_argument("--password-hash", help="also give every identity a password credential with this hash "
                    "(a hashed_password as Latch stores it, e.g. read from an identity made through the admin API)")
    a = ap.parse_args()
    tokens = open(a.tokens, "w") if a.tokens else None
    t0 = time.time()
    if a.dsn.startswith("sqlite://"):
        path = a.dsn[len("sqlite://"):].split("?")[0]
        if not os.path.exists(path):
            sys.exit(f"{path}: no such database (run latch migrate sql first)")
        seed_sqlite(path, a.identities, tokens, a.password_hash)
    elif a.dsn.startswith(("postgres://", "postgresql://")):
        seed_postgres(a.dsn.split("?")[0], a.identities, tokens, a.password_hash)
    else:
        sys.exit("--dsn must be sqlite://… or postgres://…")
    print(f"\nseeded {a.identities} identities with sessions in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
