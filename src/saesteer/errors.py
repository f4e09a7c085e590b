"""The errors saesteer raises on purpose: bad input or state that the user can fix.

One base class, so the CLI turns any of them into one line naming the field or file (and
exit status 2) while a bug still shows its traceback. This module imports nothing, so any
module can raise these without an import cycle.
"""


class SaesteerError(Exception):
    """Bad input or state; the message names the field or file and, where known, the fix."""


class UsageError(SaesteerError, ValueError):
    """A function's arguments do not fit each other (a caller's mistake, e.g. a hand-built
    batch whose parts differ in length); the message names the parts."""


class ConfigError(SaesteerError, ValueError):
    """A config value is invalid; the message names the field."""


class DataFileError(SaesteerError, ValueError):
    """An input file or an HTTP response body is malformed (invalid JSON, a wrong shape)."""


class HttpError(SaesteerError, RuntimeError):
    """A server refused a request: a rejected API key, or a redirect that is not followed."""


class ArtifactError(SaesteerError, RuntimeError):
    """An artifact on disk is unreadable or stale; the message names it and the fix."""


class ModelError(SaesteerError, RuntimeError):
    """A model cannot be found, converted or loaded."""


class SaeError(SaesteerError, RuntimeError):
    """An SAE cannot be found or loaded, or does not fit the model."""


class ResidualsError(SaesteerError, RuntimeError):
    """A residual cache does not hold what its reader needs."""


class ActivationsError(SaesteerError, ValueError):
    """Top-activating examples are missing or malformed."""


class NeuronpediaError(ActivationsError):
    """Neuronpedia's API failed or answered something unusable."""


class ReleasedDataError(SaesteerError, ValueError):
    """A file of the paper's released data is missing or malformed."""


class JudgeError(SaesteerError, RuntimeError):
    """A concept judge is misconfigured or answered something unusable."""
