import re

import pytest

from mais.extensions import db
from mais.keys import decrypt_secret, encrypt_secret, slug_from_key
from mais.tenant_registry import (
    find_tenant_by_public_key,
    find_tenant_by_secret_key,
    rotate_public_key,
    rotate_secret_key,
)
from tests.factories import make_tenant


def test_key_formats(app_ctx):
    tenant = make_tenant("bluebird-test")
    keys = tenant.issued_keys
    assert re.fullmatch(r"pk_live_bluebird-test_[A-Za-z0-9]{32}", keys.public_key)
    assert re.fullmatch(r"sk_live_bluebird-test_[A-Za-z0-9]{32}", keys.secret_key)
    assert slug_from_key(keys.secret_key) == "bluebird-test"


def test_secret_is_stored_only_encrypted_with_fresh_nonces(app_ctx):
    tenant = make_tenant()
    secret = tenant.issued_keys.secret_key
    assert secret.encode() not in tenant.secret_key_ciphertext
    assert decrypt_secret(tenant.secret_key_ciphertext) == secret
    assert encrypt_secret(secret) != encrypt_secret(secret)


def test_keys_find_their_tenant_and_nothing_else(app_ctx):
    a, b = make_tenant(), make_tenant()
    assert find_tenant_by_public_key(a.issued_keys.public_key) == a
    assert find_tenant_by_secret_key(b.issued_keys.secret_key) == b
    forged = b.issued_keys.secret_key[:-1] + ("A" if b.issued_keys.secret_key[-1] != "A" else "B")
    assert find_tenant_by_secret_key(forged) is None
    # a's random part under b's slug
    mixed = f"sk_live_{b.slug}_" + a.issued_keys.secret_key[-32:]
    assert find_tenant_by_secret_key(mixed) is None
    for junk in ["", "pk_live_", "pk_test_x_" + "a" * 32, a.issued_keys.secret_key, None]:
        assert find_tenant_by_public_key(junk) is None


def test_rotation_revokes_the_old_keys(app_ctx):
    tenant = make_tenant()
    old_secret, old_public = tenant.issued_keys.secret_key, tenant.issued_keys.public_key
    new_secret = rotate_secret_key(tenant)
    new_public = rotate_public_key(tenant)
    db.session.flush()
    assert find_tenant_by_secret_key(old_secret) is None
    assert find_tenant_by_public_key(old_public) is None
    assert find_tenant_by_secret_key(new_secret) == tenant
    assert find_tenant_by_public_key(new_public) == tenant
    assert tenant.secret_key_hint == new_secret[-4:]


def test_wrong_master_key_cannot_decrypt(app, app_ctx):
    tenant = make_tenant()
    original = app.config["MAIS_SECRETS_KEY"]
    app.config["MAIS_SECRETS_KEY"] = "ab" * 32
    try:
        with pytest.raises(Exception):  # noqa: B017 - AESGCM raises InvalidTag
            decrypt_secret(tenant.secret_key_ciphertext)
    finally:
        app.config["MAIS_SECRETS_KEY"] = original
