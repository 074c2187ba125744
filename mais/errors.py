"""Domain errors whose message can be shown to the person who caused them."""


class DomainError(Exception):
    """A refusal with a message fit for a couple or a tenant owner."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class FormErrors(DomainError):
    """Several fields are wrong at once: ``errors`` maps each field to its message, so a form
    can mark them all in one go. Behaves as a ``DomainError`` about the first one."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(message, field=field)
        self.errors = dict(errors)


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class DateUnavailable(Conflict):
    """The date cannot be held: taken, blacked out, past or beyond the horizon."""


class ConfigurationError(RuntimeError):
    """The application cannot start with the configuration it was given."""
