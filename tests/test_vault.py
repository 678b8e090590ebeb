"""Organisations' secrets sealed in a real SQLite store (``pardag.vault``): the key's sources,
its file made private, every way a key can be wrong named with its fix, rotation, and the
source a run of an organisation reads. (Both backends keep sealed values alike:
``pardag.testing.sealed`` in the store suite; the API and a worker's run: tests/server.)"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pardag.errors import ArgumentError, SecretMissing
from pardag.secrets import KEY_ENV, EnvironmentSource, Secrets
from pardag.store import Store, open_store
from pardag.vault import (
    Keyring,
    SecretKeyError,
    StoredSecrets,
    reseal_secrets,
    run_sources,
    set_secret,
)

VALUE = "s3cret-value-4cbe19"
T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "runs.db") as opened:
        yield opened


def key() -> str:
    return Fernet.generate_key().decode()


def test_the_first_seal_makes_a_private_key_file_that_opens_it_again(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "keys" / "secret.key"
    assert set_secret(store, Keyring(path), "acme", "TOKEN", VALUE, T0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert StoredSecrets(store, "acme", Keyring(path)).get("TOKEN") == VALUE  # a new reader
    sealed = store.secret_ciphertext("acme", "TOKEN")
    assert sealed is not None and VALUE not in sealed
    assert VALUE.encode() not in (tmp_path / "runs.db").read_bytes()


def test_the_key_file_flag_wins_over_the_variable_and_the_variable_over_the_default(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {KEY_ENV: key()}
    set_secret(store, Keyring(environ=env), "acme", "TOKEN", VALUE, T0)
    assert not Path(".pardag/secret.key").exists()  # the variable's key: no file made
    assert StoredSecrets(store, "acme", Keyring(environ=env)).get("TOKEN") == VALUE
    explicit = Keyring(tmp_path / "own.key", environ=env)
    with pytest.raises(
        SecretKeyError, match=r"own\.key given with --secret-key-file does not exist"
    ):
        StoredSecrets(store, "acme", explicit).get("TOKEN")  # no such file: not the variable


def test_a_key_that_did_not_seal_it_is_named_with_the_fix(store: Store) -> None:
    set_secret(store, Keyring(environ={KEY_ENV: key()}), "acme", "TOKEN", VALUE, T0)
    other = Keyring(environ={KEY_ENV: key()})
    with pytest.raises(SecretKeyError) as caught:
        StoredSecrets(store, "acme", other).get("TOKEN")
    message = str(caught.value)
    assert "cannot open organisation 'acme''s secret 'TOKEN'" in message
    assert f"sealed with another key than the one from {KEY_ENV}" in message
    assert VALUE not in message
    with pytest.raises(SecretKeyError, match="organisation 'acme''s other secrets"):
        set_secret(store, other, "acme", "MORE", "another-value", T0)  # no mixed keys
    assert [i.name for i in store.list_secrets("acme")] == ["TOKEN"]
    assert set_secret(store, other, "beta", "MORE", "another-value", T0)  # its own key


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({KEY_ENV: "not-a-key"}, f"the secret key from {KEY_ENV} is not a Fernet key"),
        ({KEY_ENV: " , "}, f"the secret key from {KEY_ENV} is not a Fernet key"),
    ],
)
def test_a_malformed_key_says_how_to_make_one(store: Store, env: dict[str, str], says: str) -> None:
    with pytest.raises(SecretKeyError) as caught:
        set_secret(store, Keyring(environ=env), "acme", "TOKEN", VALUE, T0)
    assert says in str(caught.value) and "Fernet.generate_key()" in str(caught.value)
    assert store.list_secrets("acme") == []


def test_a_key_file_others_may_read_is_refused_with_the_chmod(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text(key())
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match=r"may be read by other users \(mode 0644\)") as c:
        set_secret(store, Keyring(path), "acme", "TOKEN", VALUE, T0)
    assert f"chmod 600 {path}" in str(c.value)


def test_opening_with_no_key_never_makes_one_and_names_the_settings(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    set_secret(store, Keyring(environ={KEY_ENV: key()}), "acme", "TOKEN", VALUE, T0)
    with pytest.raises(SecretKeyError) as caught:
        StoredSecrets(store, "acme", Keyring(environ={})).get("TOKEN")
    assert f"there is no secret key: set {KEY_ENV}" in str(caught.value)
    assert "--secret-key-file" in str(caught.value)
    assert not (tmp_path / ".pardag" / "secret.key").exists()


def test_while_rotating_the_first_key_seals_each_opens_and_reseal_leaves_the_old(
    store: Store,
) -> None:
    old, new = key(), key()
    set_secret(store, Keyring(environ={KEY_ENV: old}), "acme", "OLD", VALUE, T0)
    set_secret(store, Keyring(environ={KEY_ENV: old}), "beta", "KEPT", VALUE, T0)
    rotating = Keyring(environ={KEY_ENV: f"{new},{old}"})
    set_secret(store, rotating, "acme", "NEW", "newer-value", T0)
    assert StoredSecrets(store, "acme", rotating).get("OLD") == VALUE
    only_new = Keyring(environ={KEY_ENV: new})
    assert StoredSecrets(store, "acme", only_new).get("NEW") == "newer-value"
    with pytest.raises(SecretKeyError):
        StoredSecrets(store, "acme", only_new).get("OLD")  # still sealed with the old key
    assert reseal_secrets(store, rotating, "acme", T0 + 9) == ["NEW", "OLD"]
    assert StoredSecrets(store, "acme", only_new).get("OLD") == VALUE  # the old key is done
    assert StoredSecrets(store, "beta", Keyring(environ={KEY_ENV: old})).get("KEPT") == VALUE
    with pytest.raises(SecretKeyError, match="cannot open organisation 'beta''s secret 'KEPT'"):
        reseal_secrets(store, only_new, "beta", T0 + 9)  # no key given opens it


def test_a_bad_name_or_a_short_value_is_refused(store: Store) -> None:
    keyring = Keyring(environ={KEY_ENV: key()})
    with pytest.raises(ArgumentError, match="'no good' is not a valid secret name"):
        set_secret(store, keyring, "acme", "no good", VALUE, T0)
    with pytest.raises(ArgumentError, match="at least 4 characters"):
        set_secret(store, keyring, "acme", "TOKEN", "abc", T0)
    assert store.list_secrets("acme") == []


def test_a_run_reads_its_organisations_value_before_the_workers_own(store: Store) -> None:
    keyring = Keyring(environ={KEY_ENV: key()})
    set_secret(store, keyring, "acme", "TOKEN", VALUE, T0)
    set_secret(store, keyring, "beta", "TOKEN", "beta-value-77", T0)
    own = [EnvironmentSource({"PARDAG_SECRET_TOKEN": "worker-value", "PARDAG_SECRET_OWN": "mine"})]
    acme = Secrets.resolve(["TOKEN", "OWN"], {}, run_sources(store, "acme", keyring, own))
    assert dict(acme) == {"TOKEN": VALUE, "OWN": "mine"}
    beta = Secrets.resolve(["TOKEN"], {}, run_sources(store, "beta", keyring, own))
    assert dict(beta) == {"TOKEN": "beta-value-77"}
    with pytest.raises(SecretMissing, match="pardag secret set gamma MISSING"):
        Secrets.resolve(["MISSING"], {}, run_sources(store, "gamma", keyring, own))


def test_the_key_variable_is_never_a_runs_secret() -> None:
    source = EnvironmentSource({KEY_ENV: key(), "PARDAG_SECRET_OTHER": "other-value"})
    assert source.get("KEY") is None and source.get("OTHER") == "other-value"
    with pytest.raises(SecretMissing, match=f"not through {KEY_ENV}"):
        Secrets.resolve(["KEY"], {}, [source])


def test_a_value_copied_to_another_organisations_row_opens_to_nothing(store: Store) -> None:
    keyring = Keyring(environ={KEY_ENV: key()})
    set_secret(store, keyring, "acme", "TOKEN", VALUE, T0)
    set_secret(store, keyring, "evil", "TOKEN", "evil-value", T0)
    copied = store.secret_ciphertext("acme", "TOKEN")
    assert copied is not None
    store.put_secret("evil", "TOKEN", copied, T0 + 1)  # whoever may write the store
    with pytest.raises(SecretKeyError, match="sealed for another secret") as caught:
        StoredSecrets(store, "evil", keyring).get("TOKEN")
    assert VALUE not in str(caught.value)


def _seal_in_a_process(store_path: str, key_path: str, org: str) -> bool:
    with open_store(store_path) as opened:
        return set_secret(opened, Keyring(key_path), org, "TOKEN", VALUE, T0)


def test_processes_making_the_key_at_once_all_seal_with_one_key(tmp_path: Path) -> None:
    key_path, store_path = tmp_path / "keys" / "secret.key", tmp_path / "runs.db"
    open_store(store_path).close()
    orgs = [f"org{n}" for n in range(6)]
    with ProcessPoolExecutor(max_workers=6) as pool:
        made = list(pool.map(_seal_in_a_process, [str(store_path)] * 6, [str(key_path)] * 6, orgs))
    assert made == [True] * 6
    with open_store(store_path) as opened:
        opened_values = [StoredSecrets(opened, org, Keyring(key_path)).get("TOKEN") for org in orgs]
    assert opened_values == [VALUE] * 6  # one key sealed them all
    assert [p.name for p in key_path.parent.iterdir()] == ["secret.key"]  # nothing left aside
