"""Staff members: adding, listing, and passwords hashed with Argon2id."""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callflow.phone import InvalidNumber, normalise
from callflow.roles import Role
from store.models import Staff

# argon2-cffi's defaults (RFC 9106 low-memory: 64 MiB, t=3, p=4) exceed OWASP's minimums.
_hasher = PasswordHasher()
# Verified against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash("callflow-timing-equaliser")
MIN_PASSWORD_LENGTH = 12


class StaffInvalid(ValueError):
    """A staff member that cannot be saved; the message names the field."""


def hash_password(password: str) -> str:
    """An Argon2id hash of the password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffInvalid(f"password: use at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when the password matches; takes as long for an unknown user."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def add_staff(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    now: datetime,
    password: str | None = None,
    client_identity: str | None = None,
    phone_number: str | None = None,
) -> Staff:
    """Add a staff member, refusing bad fields with a message that names them."""
    email = email.strip().lower()
    if "@" not in email or "." not in email.rsplit("@", 1)[-1]:
        raise StaffInvalid(f"email: {email!r} is not an email address")
    if role not in tuple(Role):
        raise StaffInvalid(f"role: {role!r} is not one of {', '.join(Role)}")
    if not name.strip():
        raise StaffInvalid("name: is required")
    if session.scalar(select(Staff).where(Staff.email == email)):
        raise StaffInvalid(f"email: {email} is already a staff member")
    if phone_number:
        try:
            phone_number = normalise(phone_number)
        except InvalidNumber as error:
            raise StaffInvalid(f"phone: {error}") from None
    if client_identity and session.scalar(
        select(Staff).where(Staff.client_identity == client_identity)
    ):
        raise StaffInvalid(f"client identity: {client_identity} is already taken")
    staff = Staff(
        email=email,
        name=name.strip(),
        role=role,
        created_at=now,
        client_identity=client_identity or None,
        phone_number=phone_number or None,
        password_hash=hash_password(password) if password else None,
        active=True,
    )
    session.add(staff)
    session.flush()
    return staff
