"""Crypto: WeChat's public test vector, strict checks, tokens, keyed hashes, sealing."""

from __future__ import annotations

import base64

import pytest

from wafer_py.crypto import (
    Keyring,
    SecretBox,
    decrypt_data,
    encrypt_data,
    hmac_signature,
    new_session_id,
    new_session_key,
    new_skey,
)
from wafer_py.exceptions import (
    MalformedEncryptedData,
    OpenIdMismatch,
    StaleSessionKey,
    StaleWatermark,
    WrongAppId,
)

# Tencent's public sample (wechat-api.md §2.3).
VECTOR_APPID = "wx4f4bc4dec97d474b"
VECTOR_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
VECTOR_IV = "r7BXXKkLb8qrSNn05n0qiA=="
VECTOR_DATA = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC"
    "+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOF"
    "tnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W"
    "//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaH"
    "qZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVo"
    "KlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
)


def test_public_vector_decrypts() -> None:
    data = decrypt_data(
        VECTOR_KEY,
        VECTOR_DATA,
        VECTOR_IV,
        appid=VECTOR_APPID,
        openid="oGZUI0egBJY1zhBYw2KhdUfwVJJE",
    )
    assert data["openId"] == "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
    assert data["nickName"] == "Band"
    assert data["unionId"] == "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"
    assert data["watermark"] == {"timestamp": 1477314187, "appid": VECTOR_APPID}


def test_encrypt_reproduces_the_public_vector() -> None:
    plain = decrypt_data(VECTOR_KEY, VECTOR_DATA, VECTOR_IV, appid=VECTOR_APPID)
    watermark = plain.pop("watermark")
    # WeChat's field order puts the watermark's timestamp before its appid; ours builds
    # {timestamp, appid} too, so the same payload gives the same bytes.
    data, iv = encrypt_data(
        VECTOR_KEY,
        plain,
        appid=VECTOR_APPID,
        timestamp=watermark["timestamp"],
        iv=base64.b64decode(VECTOR_IV),
    )
    assert iv == VECTOR_IV
    assert data == VECTOR_DATA


def test_public_signature_vector() -> None:
    assert hmac_signature("o0q0otL8aEzpcZL/FT9WsQ==", '{"foo":"bar"}') == (
        "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
    )


def test_wrong_appid() -> None:
    with pytest.raises(WrongAppId):
        decrypt_data(VECTOR_KEY, VECTOR_DATA, VECTOR_IV, appid="wxsomeoneelse")


def test_openid_mismatch() -> None:
    with pytest.raises(OpenIdMismatch):
        decrypt_data(VECTOR_KEY, VECTOR_DATA, VECTOR_IV, appid=VECTOR_APPID, openid="oOther")


def test_stale_watermark() -> None:
    with pytest.raises(StaleWatermark):
        decrypt_data(
            VECTOR_KEY,
            VECTOR_DATA,
            VECTOR_IV,
            appid=VECTOR_APPID,
            max_age=3600,
            now=1477314187 + 3601,
        )


def test_wrong_key_is_a_stale_session_key() -> None:
    for _ in range(20):  # garbage ends in valid padding now and then: still told apart
        with pytest.raises(StaleSessionKey):
            decrypt_data(new_session_key(), VECTOR_DATA, VECTOR_IV, appid=VECTOR_APPID)


@pytest.mark.parametrize(
    ("key", "data", "iv"),
    [
        (VECTOR_KEY, "not base64!!", VECTOR_IV),
        (VECTOR_KEY, VECTOR_DATA, "c2hvcnQ="),  # IV of 5 bytes
        (VECTOR_KEY, base64.b64encode(b"x" * 17).decode(), VECTOR_IV),  # not whole blocks
        (VECTOR_KEY, "", VECTOR_IV),
        ("c2hvcnQ=", VECTOR_DATA, VECTOR_IV),  # key of 5 bytes
    ],
)
def test_malformed_inputs(key: str, data: str, iv: str) -> None:
    with pytest.raises(MalformedEncryptedData):
        decrypt_data(key, data, iv, appid=VECTOR_APPID)


def test_space_for_plus_is_tolerated() -> None:
    mangled = VECTOR_DATA.replace("+", " ")
    assert decrypt_data(VECTOR_KEY, mangled, VECTOR_IV, appid=VECTOR_APPID)["nickName"] == "Band"


def test_legacy_format_iv_is_key() -> None:
    key = new_session_key()
    raw = base64.b64decode(key)
    data, _ = encrypt_data(key, {"openId": "o1", "nickName": "Old"}, appid="wxa", iv=raw)
    assert decrypt_data(key, data, None, appid="wxa")["nickName"] == "Old"


def test_round_trip_non_ascii() -> None:
    key = new_session_key()
    data, iv = encrypt_data(key, {"nickName": "微信用户 ☃"}, appid="wxa")
    assert decrypt_data(key, data, iv, appid="wxa")["nickName"] == "微信用户 ☃"


def test_tokens_are_random_and_header_safe() -> None:
    ids = {new_session_id() for _ in range(1000)}
    skeys = {new_skey() for _ in range(1000)}
    assert len(ids) == len(skeys) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)  # 128 bits
    assert all(len(s) == 48 and int(s, 16) >= 0 for s in skeys)  # 192 bits


def test_secret_box_hash_and_rotation() -> None:
    old = SecretBox(["old-key"])
    skey = new_skey()
    stored = old.hash_skey(skey)
    assert skey not in stored and len(stored) == 64
    assert old.check_skey(skey, stored)
    assert not old.check_skey(new_skey(), stored)
    rotated = SecretBox(["new-key", "old-key"])
    assert rotated.check_skey(skey, stored)
    assert stored in rotated.skey_hashes(skey)
    assert rotated.hash_skey(skey) != stored
    assert not SecretBox(["new-key"]).check_skey(skey, stored)


def test_secret_box_seal_and_rotation() -> None:
    key = new_session_key()
    old = SecretBox(["old-key"])
    sealed = old.seal(key, context="o1")
    assert key not in sealed
    assert old.unseal(sealed, context="o1") == key
    assert SecretBox(["new-key", "old-key"]).unseal(sealed, context="o1") == key
    with pytest.raises(ValueError):
        SecretBox(["new-key"]).unseal(sealed, context="o1")
    with pytest.raises(ValueError):
        old.unseal(sealed, context="o2")  # bound to its user
    with pytest.raises(ValueError):
        old.unseal(sealed[:-4] + "AAAA", context="o1")


def test_secret_box_repr_hides_keys() -> None:
    assert "old-key" not in repr(SecretBox(["old-key"]))


def test_generated_key_warns(caplog: pytest.LogCaptureFixture) -> None:
    box = SecretBox([])
    assert box.generated
    assert "no secret key configured" in caplog.text


NEW_KEY = "n" * 32
OLD_KEY = "o" * 32


def test_keyring_is_newest_first_and_gives_itsdangerous_the_reverse() -> None:
    ring = Keyring([NEW_KEY, "", OLD_KEY])  # an empty key is dropped
    assert list(ring) == [NEW_KEY.encode(), OLD_KEY.encode()]
    assert ring.newest == NEW_KEY.encode() and len(ring) == 2
    assert ring.oldest_first() == [OLD_KEY.encode(), NEW_KEY.encode()]
    assert Keyring.of(ring) is ring
    with pytest.raises(ValueError):
        Keyring(["", b""])


def test_keyring_rotation_keeps_old_secrets_open() -> None:
    old = Keyring([OLD_KEY])
    ring = old.rotated(NEW_KEY)
    assert list(ring) == [NEW_KEY.encode(), OLD_KEY.encode()]
    assert list(ring.rotated("x" * 32, keep=2)) == [b"x" * 32, NEW_KEY.encode()]
    # The derived keys follow the same order: the old key's derivation is still there.
    assert ring.derive(b"p")[1] == old.derive(b"p")[0] != ring.derive(b"p")[0]
    assert ring.derive(b"p") != ring.derive(b"q")
    sealed = SecretBox(old).seal("sk", context="o1")
    assert SecretBox(ring).unseal(sealed, context="o1") == "sk"
    assert SecretBox(ring).check_skey("s", SecretBox(old).hash_skey("s"))
    # The same keys as text or as a keyring make the same box.
    assert SecretBox(ring).hash_skey("s") == SecretBox([NEW_KEY, OLD_KEY]).hash_skey("s")


def test_keyring_repr_hides_keys(caplog: pytest.LogCaptureFixture) -> None:
    ring = Keyring([NEW_KEY, OLD_KEY])
    assert repr(ring) == "Keyring(keys=2, generated=False)"
    assert "n" * 8 not in repr(ring) and "o" * 8 not in str(ring)
    made_up = Keyring.random()
    assert made_up.generated and len(made_up) == 1
    assert made_up.newest.decode() not in repr(made_up)
    assert "using a random one" in caplog.text


def test_the_signers_take_the_keyring_order() -> None:
    from wafer_py.web.state import OAuthStateSigner

    issued = OAuthStateSigner(Keyring([OLD_KEY])).issue("/p")
    # After a rotation the old key still verifies; a signer without it refuses.
    OAuthStateSigner(Keyring([NEW_KEY, OLD_KEY])).verify(issued, "/p")
    OAuthStateSigner([NEW_KEY, OLD_KEY]).verify(issued, "/p")
    from wafer_py.exceptions import InvalidState

    with pytest.raises(InvalidState):
        OAuthStateSigner([NEW_KEY]).verify(issued, "/p")
    newer = OAuthStateSigner([NEW_KEY, OLD_KEY]).issue("/p")
    OAuthStateSigner([NEW_KEY]).verify(newer, "/p")  # the newest signs
