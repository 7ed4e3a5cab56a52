"""Credentials: JWT claims, caching and re-signing, precedence, the 0600 file, and no secret ever shown."""
import logging
import os
import stat
import traceback

import jwt
import pytest

from kling_api.remote.auth import (TOKEN_LIFETIME_S, Credentials, Secret, load_credentials, read_credentials_file,
                            write_credentials_file)
from kling_api.errors import KlingCredentialsError

AK, SK, API_KEY = "ak-test-access", "sk-very-secret-value-of-32-bytes-x", "api-key-secret-value"


def jwt_creds() -> Credentials:
    return Credentials(access_key=Secret(AK), secret_key=Secret(SK), source="test")


def test_jwt_claims_and_header():
    header = jwt_creds().authorization_header(now=1_000_000.0)
    assert header.startswith("Bearer ")
    token = header.split(" ", 1)[1]
    claims = jwt.decode(token, SK, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
    assert claims == {"iss": AK, "exp": 1_000_000 + 1800, "nbf": 1_000_000 - 5}
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_token_is_cached_then_resigned_before_expiry_and_after_invalidate():
    creds = jwt_creds()
    first = creds.authorization_header(now=1000.0)
    assert creds.authorization_header(now=1000.0 + 60) == first
    later = creds.authorization_header(now=1000.0 + TOKEN_LIFETIME_S - 60)
    assert later != first
    assert creds.invalidate_token() is True
    assert creds.authorization_header(now=1000.0 + TOKEN_LIFETIME_S - 59) != later


def test_api_key_is_sent_as_is_and_has_nothing_to_resign():
    creds = Credentials(api_key=Secret(API_KEY), source="test")
    assert creds.authorization_header() == f"Bearer {API_KEY}"
    assert creds.invalidate_token() is False


def test_environment_wins_over_file_and_api_key_over_pair(tmp_path):
    path = tmp_path / "c.json"
    write_credentials_file(path, access_key=AK, secret_key=SK)
    env = {"KLING_API_KEY": API_KEY, "KLING_ACCESS_KEY": "other", "KLING_SECRET_KEY": "other"}
    creds = load_credentials(path, environ=env)
    assert creds.kind == "api_key" and creds.source == "environment"
    from_file = load_credentials(path, environ={})
    assert from_file.kind == "jwt" and from_file.source == "file"


def test_missing_and_half_credentials_say_how_to_set_them(tmp_path):
    with pytest.raises(KlingCredentialsError, match="KLING_API_KEY"):
        load_credentials(tmp_path / "none.json", environ={})
    with pytest.raises(KlingCredentialsError, match="missing KLING_SECRET_KEY"):
        load_credentials(None, environ={"KLING_ACCESS_KEY": AK})


def test_credentials_file_is_0600(tmp_path):
    path = tmp_path / "sub" / "credentials.json"
    write_credentials_file(path, api_key=API_KEY)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_credentials_file(path).kind == "api_key"


def test_secrets_never_in_repr_logs_or_exceptions(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    creds = jwt_creds()
    token = creds.authorization_header().split()[1]
    texts = [repr(creds), str(creds), repr(creds.secret_key), f"{creds}"]
    broken = tmp_path / "broken.json"
    broken.write_text("{" + SK)
    try:
        read_credentials_file(broken)
    except KlingCredentialsError:
        texts.append(traceback.format_exc())
    write_credentials_file(tmp_path / "ok.json", access_key=AK, secret_key=SK)
    texts.append(caplog.text)
    joined = "\n".join(texts)
    for secret in (SK, AK, token):
        assert secret not in joined
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(creds.secret_key)
