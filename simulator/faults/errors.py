"""The exceptions a real API client raises, shaped like the OpenAI/Anthropic SDK errors
that LangChain integrations surface: a status code, a response with headers (so
`retry-after` can be honoured), an error code. Retry code written for real
providers therefore runs its real paths here.
"""
from __future__ import annotations


class Response:
    def __init__(self, status_code: int | None, headers: dict[str, str] | None = None):
        self.status_code = status_code
        self.headers = dict(headers or {})


class FaultError(Exception):
    """Base of every injected failure; `fault_id` names the fault that raised it."""
    status_code: int | None = None
    code = "fault"
    transient = True

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, fault_id: str = ""):
        super().__init__(message)
        self.message = message
        self.response = Response(self.status_code, headers)
        self.headers = self.response.headers
        self.fault_id = fault_id
        self.body = {"error": {"message": message, "code": self.code}}

    @property
    def retry_after(self) -> float | None:
        v = self.headers.get("retry-after")
        return float(v) if v is not None else None


class APIStatusError(FaultError):
    pass


class RateLimitError(APIStatusError):
    status_code, code = 429, "rate_limit_exceeded"


class QuotaExceededError(RateLimitError):
    code, transient = "insufficient_quota", False


class InternalServerError(APIStatusError):
    status_code, code = 500, "server_error"


class BadGatewayError(InternalServerError):
    status_code, code = 502, "bad_gateway"


class ServiceUnavailableError(InternalServerError):
    status_code, code = 503, "service_unavailable"


class AuthenticationError(APIStatusError):
    status_code, code, transient = 401, "invalid_api_key", False


class APITimeoutError(FaultError):
    code = "timeout"


class APIConnectionError(FaultError):
    code = "connection_reset"


class ContextLengthExceeded(APIStatusError):
    """What a provider raises when the prompt exceeds the model's context window."""
    status_code, code, transient = 400, "context_length_exceeded", False


SERVER_ERRORS = {500: InternalServerError, 502: BadGatewayError, 503: ServiceUnavailableError}
