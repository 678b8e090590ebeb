"""Each organisation's secrets, kept in the run store encrypted, and given to its runs.

``pardag secret set ORG NAME`` and ``PUT /api/secrets/{name}`` seal a value, bound to its
organisation and name, with the service's key (Fernet: AES-128-CBC and HMAC-SHA256) before
the store sees it; nothing reads a value back but a worker running one of that
organisation's runs, through ``StoredSecrets``, a ``pardag.secrets.SecretSource``: the run
then masks the value everywhere, as any secret.

The key: the file ``--secret-key-file`` names, else ``PARDAG_SECRET_KEY`` (a Fernet key;
several, comma-separated, while rotating: the first seals, each opens), else the file
``.pardag/secret.key``; a key file is made, mode 0600, the first time a value is sealed. Only
sealing makes a key: a worker with no key cannot open what was sealed, and says which setting
to give. ``cryptography`` is imported when a value is sealed or opened, so a worker of a store
that holds no secret needs neither it nor a key.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pardag.errors import ArgumentError, SecretMissing
from pardag.secrets import KEY_ENV, MIN_LENGTH, SecretSource, check_name, refuse_shared
from pardag.store.base import SecretInfo, Store

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

__all__ = [
    "DEFAULT_KEY_FILE",
    "KEY_ENV",
    "Keyring",
    "SecretKeyError",
    "StoredSecrets",
    "delete_secret",
    "list_secrets",
    "reseal_secrets",
    "run_sources",
    "set_secret",
]

DEFAULT_KEY_FILE = Path(".pardag") / "secret.key"
"""The key file when neither ``--secret-key-file`` nor ``PARDAG_SECRET_KEY`` gives a key."""
_MAKE_KEY = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class SecretKeyError(SecretMissing):
    """The secret key is missing, malformed, readable by others, or not the one the
    organisation's secrets were sealed with; the message names the setting to fix."""


class Keyring:
    """Where the key comes from: ``key_file`` if given, else ``PARDAG_SECRET_KEY``, else the
    default key file. Read on first use, then kept."""

    def __init__(
        self,
        key_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._explicit = key_file is not None
        self.path = Path(key_file) if key_file is not None else DEFAULT_KEY_FILE
        self._fernet: MultiFernet | None = None

    @property
    def where(self) -> str:
        """The setting the key comes from, as an error names it."""
        if not self._explicit and self._environ.get(KEY_ENV):
            return KEY_ENV
        return f"the key file {self.path} (--secret-key-file)"

    def seal(self, value: str) -> str:
        """``value`` encrypted with the key (made now, in the key file, if there is none)."""
        return self._keys(create=True).encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, ciphertext: str, what: str) -> str:
        """The value ``ciphertext`` seals; ``SecretKeyError`` naming ``what`` and the setting
        when this key did not seal it."""
        from cryptography.fernet import InvalidToken

        try:
            return self._keys(create=False).decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                f"cannot open {what}: sealed with another key than the one from "
                f"{self.where}; give the key they were stored with ({KEY_ENV} or "
                "--secret-key-file), or set them again"
            ) from None

    def reseal(self, ciphertext: str, what: str) -> str:
        """``ciphertext`` sealed again with the first key (rotation: it may have been sealed
        with any of them); ``SecretKeyError`` naming ``what`` when none sealed it."""
        self.open(ciphertext, what)  # the error names the setting when no key opens it
        return self._keys(create=False).rotate(ciphertext.encode("ascii")).decode("ascii")

    def _keys(self, *, create: bool) -> MultiFernet:
        if self._fernet is None:
            self._fernet = self._load(create)
        return self._fernet

    def _load(self, create: bool) -> MultiFernet:
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError:
            raise SecretKeyError(
                "organisations' secrets need the cryptography package; install it: "
                "pip install 'pardag[server]'"
            ) from None
        text = self._environ.get(KEY_ENV, "") if not self._explicit else ""
        if not text:
            text = self._read_file(create)
        keys = [k.strip() for k in text.split(",") if k.strip()]
        try:
            if not keys:
                raise ValueError("empty")
            return MultiFernet([Fernet(k) for k in keys])
        except ValueError:
            raise SecretKeyError(
                f"the secret key from {self.where} is not a Fernet key (32 url-safe base64 "
                f"bytes); make one with: {_MAKE_KEY}"
            ) from None

    def _read_file(self, create: bool) -> str:
        if create and not self.path.exists():
            _make_key_file(self.path)
        try:
            with self.path.open(encoding="ascii") as stream:
                refuse_shared(stream, f"the key file {self.path}", self.path, SecretKeyError)
                return stream.read().strip()
        except FileNotFoundError:
            if self._explicit:
                raise SecretKeyError(
                    f"the key file {self.path} given with --secret-key-file does not exist; "
                    f"give the key file the secrets were stored with (or leave the flag out to "
                    f"use {KEY_ENV})"
                ) from None
            raise SecretKeyError(
                f"there is no secret key: set {KEY_ENV} to the key the secrets were stored "
                f"with, or give its file with --secret-key-file (looked for {self.path})"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretKeyError(
                f"cannot read the key file {self.path}: {exc}; give a readable key file "
                f"(--secret-key-file) or set {KEY_ENV}"
            ) from None


def _make_key_file(path: Path) -> None:
    """A new key in ``path``, mode 0600 from its creation (its folder 0700 if made here);
    written aside, then linked in whole, so that no reader meets a half-written key and two
    processes making one at once end up with the same key (the first linked)."""
    from cryptography.fernet import Fernet

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(Fernet.generate_key().decode("ascii") + "\n")
        os.link(aside, path)
    except FileExistsError:
        pass  # another process made it first: use that one
    finally:
        aside.unlink(missing_ok=True)


def _checked(name: str, value: str) -> None:
    check_name(name)
    if not isinstance(value, str) or len(value) < MIN_LENGTH:
        raise ArgumentError(
            f"the secret {name!r} must be a string of at least {MIN_LENGTH} characters (a "
            "shorter one cannot be masked without hiding ordinary text)"
        )


def _bound(org: str, name: str, value: str) -> str:
    """What is sealed: the value with whose it is, so that a ciphertext copied to another
    organisation's or name's row (by whoever may write the store) opens to nothing there."""
    return json.dumps([org, name, value])


def _unbound(text: str, org: str, name: str) -> str:
    try:
        sealed_org, sealed_name, value = json.loads(text)
    except (ValueError, TypeError):
        sealed_org = sealed_name = value = None
    if (sealed_org, sealed_name) != (org, name) or not isinstance(value, str):
        raise SecretKeyError(
            f"organisation {org!r}'s secret {name!r} holds a value sealed for another secret "
            f"(copied in the store); set it again: pardag secret set {org} {name}"
        )
    return value


def set_secret(store: Store, keyring: Keyring, org: str, name: str, value: str, now: float) -> bool:
    """Seal ``value`` as ``org``'s secret ``name`` (replacing its value); True if new.

    Refused when ``org`` has secrets this key cannot open: sealing with another key would
    leave the organisation with secrets no single key opens."""
    _checked(name, value)
    other = store.secret_ciphertext(org, None)
    if other is not None:
        keyring.open(other, f"organisation {org!r}'s other secrets")
    return store.put_secret(org, name, keyring.seal(_bound(org, name, value)), now)


def reseal_secrets(store: Store, keyring: Keyring, org: str, now: float) -> list[str]:
    """Seal each of ``org``'s secrets again with ``keyring``'s first key (after a new key
    was put first in ``PARDAG_SECRET_KEY``); their names. Their values do not change."""
    names = []
    for info in store.list_secrets(org):
        sealed = store.secret_ciphertext(org, info.name)
        if sealed is not None:  # deleted meanwhile: nothing to reseal
            what = f"organisation {org!r}'s secret {info.name!r}"
            store.put_secret(org, info.name, keyring.reseal(sealed, what), now)
            names.append(info.name)
    return names


def list_secrets(store: Store, org: str) -> list[SecretInfo]:
    """``org``'s secrets: names and times, never values."""
    return store.list_secrets(org)


def delete_secret(store: Store, org: str, name: str) -> bool:
    """Forget ``org``'s secret ``name``; False if it had none."""
    return store.delete_secret(org, check_name(name))


class StoredSecrets:
    """The secrets ``org`` keeps in ``store``: the ``SecretSource`` of its runs."""

    def __init__(self, store: Store, org: str, keyring: Keyring) -> None:
        self.store, self.org, self.keyring = store, org, keyring

    def get(self, name: str) -> str | None:
        sealed = self.store.secret_ciphertext(self.org, name)
        if sealed is None:
            return None
        text = self.keyring.open(sealed, f"organisation {self.org!r}'s secret {name!r}")
        return _unbound(text, self.org, name)

    def describe(self, name: str) -> str:
        return f"store it for the organisation: pardag secret set {self.org} {name}"


def run_sources(
    store: Store, org: str, keyring: Keyring, own: Sequence[SecretSource]
) -> list[SecretSource]:
    """Where a worker's run of ``org`` finds its secrets: ``org``'s stored ones first, then
    the worker's ``own`` (its secrets file, ``PARDAG_SECRET_<NAME>``), which serve every
    organisation's runs."""
    return [StoredSecrets(store, org, keyring), *own]
