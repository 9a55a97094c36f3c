"""Domain errors. The HTTP edge maps each class to Langfuse's status code and error name."""


class FathomError(Exception):
    """Base of every error the core raises on purpose."""

    langfuse_name = "InternalServerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(FathomError):
    langfuse_name = "InvalidRequestError"


class Unauthorized(FathomError):
    langfuse_name = "UnauthorizedError"


class Forbidden(FathomError):
    langfuse_name = "ForbiddenError"


class NotFound(FathomError):
    langfuse_name = "LangfuseNotFoundError"


class Conflict(FathomError):
    langfuse_name = "LangfuseConflictError"


class PayloadTooLarge(FathomError):
    langfuse_name = "PayloadTooLargeError"


class MethodNotAllowed(FathomError):
    langfuse_name = "MethodNotAllowedError"


class Unavailable(FathomError):
    langfuse_name = "ServiceUnavailableError"


class ConfigurationError(FathomError):
    """A setting is missing, misspelt or points at something unusable."""
