"""What makes an operator's username and password acceptable (pure: no database)."""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

# Lowercase letters, digits and . _ - ; 3 to 32 characters, starting with a letter or digit.
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
# zxcvbn's scale: 0 too guessable ... 4 very unguessable; 3 resists an offline attack on a
# slow hash. Its dictionaries include the common-password lists.
MIN_PASSWORD_SCORE = 3
_ZXCVBN_MAX_LENGTH = 72  # zxcvbn refuses longer input; the prefix decides for longer ones


def username_problem(username: str) -> str | None:
    if not USERNAME_PATTERN.fullmatch(username):
        return (
            "username must be 3 to 32 characters: lowercase letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return None


def password_problem(password: str, username: str) -> str | None:
    """Why ``password`` is not acceptable for ``username``, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    if username and username.casefold() in password.casefold():
        return "password must not contain the username"
    estimate = zxcvbn(password[:_ZXCVBN_MAX_LENGTH], user_inputs=[username])
    if estimate["score"] < MIN_PASSWORD_SCORE:
        warning = estimate["feedback"].get("warning") or "it is too easy to guess"
        return f"password is too weak: {warning}"
    return None
