from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiToken
from partners import tokens


@dataclass(frozen=True)
class TokenPrincipal:
    """request.user for an API call: the organisation behind a token, never a person."""

    token: ApiToken

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False

    @property
    def organisation_id(self) -> int:
        return self.token.organisation_id

    def get_username(self) -> str:
        return f"token:{self.token.prefix}"

    def __str__(self) -> str:
        return self.get_username()


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[TokenPrincipal, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword.lower() != self.keyword.lower() or not raw.strip():
            raise exceptions.AuthenticationFailed("Send the token as: Authorization: Bearer <token>.")
        token = tokens.authenticate_token(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("The token is unknown, revoked or expired.")
        return TokenPrincipal(token), token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "partners.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An organisation's API token."}
