from django.core.exceptions import ValidationError
from django.core.management.base import CommandError


def command_error(error: ValidationError) -> CommandError:
    """Turn a service's field errors into one readable CommandError."""
    lines = [f"{field}: {message}" for field, messages in error.message_dict.items() for message in messages]
    return CommandError("\n".join(lines))
