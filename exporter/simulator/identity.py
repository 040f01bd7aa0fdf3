"""Managed identity token endpoints: App Service style (/msi/token) and IMDS style."""

from __future__ import annotations

import time
from collections.abc import Mapping

from .access import TOKEN_LIFETIME, TokenIssuer
from .reply import Reply, json_reply

APP_SERVICE_PATH = "/msi/token"
IMDS_PATH = "/metadata/identity/oauth2/token"
CLIENT_ID = "00000000-0000-0000-0000-00000000c11e"


def is_identity_path(path: str) -> bool:
    """True for either token endpoint."""
    return path.lower().rstrip("/") in (APP_SERVICE_PATH, IMDS_PATH)


class IdentityEndpoint:
    """Issues tokens to callers that present the identity secret (App Service) or Metadata: true (IMDS)."""

    def __init__(self, tokens: TokenIssuer, secret: str) -> None:
        self._tokens = tokens
        self._secret = secret

    def handle(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Reply:
        """Answer one token request."""
        if path.lower().rstrip("/") == APP_SERVICE_PATH:
            return self._app_service(method, query, headers)
        return self._imds(method, query, headers)

    def _app_service(self, method: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Reply:
        def problem(status: int, message: str) -> Reply:
            return json_reply(status, {"statusCode": status, "message": message})

        presented = headers.get("X-IDENTITY-HEADER")
        if method != "GET":
            return problem(405, f"{method} is not supported.")
        if presented is None:
            return problem(400, "The X-IDENTITY-HEADER header is missing.")
        if presented != self._secret:
            return problem(401, "The X-IDENTITY-HEADER header does not match.")
        if query.get("api-version") != "2019-08-01":
            return problem(400, "The api-version must be 2019-08-01.")
        resource = query.get("resource")
        if not resource:
            return problem(400, "The resource query parameter is missing.")
        token = self._tokens.issue(resource)
        return json_reply(200, {"access_token": token.access_token, "expires_on": str(token.expires_on),
                                "resource": resource, "token_type": "Bearer", "client_id": CLIENT_ID})

    def _imds(self, method: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Reply:
        def problem(status: int, message: str) -> Reply:
            return json_reply(status, {"error": "invalid_request", "error_description": message})

        if method != "GET":
            return problem(405, f"{method} is not supported.")
        if (headers.get("Metadata") or "").lower() != "true":
            return problem(400, "Required metadata header not specified")
        if not query.get("api-version"):
            return problem(400, "Required parameter api-version not specified")
        resource = query.get("resource")
        if not resource:
            return problem(400, "Required audience parameter not specified")
        token = self._tokens.issue(resource)
        now = int(time.time())
        lifetime = str(int(TOKEN_LIFETIME))
        return json_reply(200, {
            "access_token": token.access_token, "client_id": CLIENT_ID, "expires_in": lifetime,
            "expires_on": str(token.expires_on), "ext_expires_in": lifetime, "not_before": str(now),
            "resource": resource, "token_type": "Bearer",
        })
