import json
import logging
import os
import stat

import nacl.signing
import pytest

from node.keys import KeyFileError, KeyPair, generate_key, key_from_seed, load_key_file, write_key_file


def test_write_and_load_round_trip(tmp_path):
    key = generate_key()
    path = write_key_file(tmp_path / "keys" / "node.key", key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key_file(path)
    assert loaded.public_key == key.public_key
    assert loaded.seed == key.seed
    data = json.loads(path.read_text())
    assert data == {"public_key": key.public_key, "seed": key.seed.hex()}


def test_write_refuses_existing_file(tmp_path):
    path = write_key_file(tmp_path / "a.key", generate_key())
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, generate_key())


def test_overwrite_resets_mode(tmp_path):
    path = tmp_path / "a.key"
    path.write_text("old")
    os.chmod(path, 0o644)
    key = generate_key()
    write_key_file(path, key, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_file(path).public_key == key.public_key


def test_signature_verifies():
    key = key_from_seed(bytes(32))
    signature = key.sign(b"data")
    nacl.signing.VerifyKey(bytes.fromhex(key.public_key)).verify(b"data", signature)


def test_repr_hides_seed():
    key = key_from_seed(bytes([7]) * 32)
    assert "0707" not in repr(key)


def test_load_missing_file(tmp_path):
    with pytest.raises(KeyFileError, match="not found"):
        load_key_file(tmp_path / "missing.key")


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not valid JSON"),
        ("[]", "seed"),
        ('{"seed": "zz"}', "not hex"),
        ('{"seed": "00"}', "32 bytes"),
        ('{"seed": "' + "00" * 32 + '", "public_key": "' + "ab" * 32 + '"}', "does not match"),
    ],
)
def test_load_invalid_file(tmp_path, content, message):
    path = tmp_path / "bad.key"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=message):
        load_key_file(path)


def test_load_warns_on_group_readable(tmp_path, caplog):
    path = write_key_file(tmp_path / "a.key", generate_key())
    os.chmod(path, 0o640)
    with caplog.at_level(logging.WARNING, logger="xinlian.keys"):
        load_key_file(path)
    assert "chmod 600" in caplog.text


def test_load_silent_on_private_file(tmp_path, caplog):
    path = write_key_file(tmp_path / "a.key", generate_key())
    with caplog.at_level(logging.WARNING, logger="xinlian.keys"):
        load_key_file(path)
    assert caplog.text == ""


def test_keypair_rejects_short_seed():
    with pytest.raises(KeyFileError):
        KeyPair(seed=b"123")
