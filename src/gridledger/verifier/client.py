"""The operator node's API as a verifier or detector process uses it: signed in with SIWE."""

from __future__ import annotations

import time
from typing import Any

import httpx

from gridledger.eip712 import address_of
from gridledger.errors import DataSourceError, NotFoundError


class OperatorClient:
    """The operator node's API, signed in as this verifier (signs in again when refused)."""

    def __init__(self, base_url: str, key: bytes, timeout_s: float) -> None:
        self.base_url, self.key = base_url.rstrip("/"), key
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        self.token = ""
        self.signed_in_at = 0.0

    def sign_in(self) -> None:
        self.signed_in_at = time.monotonic()
        address = address_of(self.key)
        challenge = self._checked(self.http.get("/v1/auth/nonce", params={"address": address}))
        message = challenge["message"]
        signature = sign_in_message_signature(message, self.key)
        body = {"message": message, "signature": signature}
        self.token = self._checked(self.http.post("/v1/auth/token", json=body))["token"]

    def public(self, path: str) -> Any:
        return self._checked(self.http.get(path))

    def get(self, path: str) -> Any:
        return self._signed("GET", path, None)

    def post(self, path: str, body: Any) -> Any:
        return self._signed("POST", path, body)

    def _signed(self, method: str, path: str, body: Any) -> Any:
        if not self.token:
            self.sign_in()
        response = self._send(method, path, body)
        if response.status_code == 401:
            self.sign_in()
            response = self._send(method, path, body)
        return self._checked(response)

    def _send(self, method: str, path: str, body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.http.request(method, path, json=body, headers=headers)

    @staticmethod
    def _checked(response: httpx.Response) -> Any:
        if response.status_code == 404:
            raise NotFoundError(f"{response.request.url.path}: {response.text[:200]}")
        if response.status_code >= 400:
            raise DataSourceError(
                f"operator node answered {response.status_code} to "
                f"{response.request.url.path}: {response.text[:300]}"
            )
        return response.json()

    def close(self) -> None:
        self.http.close()


def sign_in_message_signature(text: str, private_key: bytes) -> str:
    """An EIP-4361 message signed as a wallet does (personal_sign); the API's own helper
    lives in gridledger.api, whose imports a verifier does not need."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    signed = Account.sign_message(encode_defunct(text=text), private_key=private_key)
    return "0x" + bytes(signed.signature).hex()
