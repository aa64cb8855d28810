"""Errors raised by comfybridge.

Every error says whether trying again can help (``retryable``), so a caller
(an RQ job, a script) can decide between a retry with backoff and a final
failure without parsing messages.
"""

from __future__ import annotations


class ComfyError(Exception):
    """Base class of every comfybridge error."""

    retryable = False


class ComfyUnavailable(ComfyError):
    """The backend could not be reached or answered 5xx: temporary."""

    retryable = True


class PromptLost(ComfyError):
    """The backend no longer knows a prompt it accepted (it restarted)."""

    retryable = True


class ParamsInvalid(ComfyError):
    """Parameters do not satisfy the workflow's schema.

    ``errors`` maps a property name ("" for the whole object) to its messages.
    """

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        text = "; ".join(f"{k or '(params)'}: {' '.join(v)}" for k, v in errors.items())
        super().__init__(f"invalid parameters: {text}")


class ContractError(ComfyError):
    """A schema or its bindings do not fit the graph: a workflow author's mistake."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class WorkflowRejected(ComfyError):
    """The backend refused the graph (HTTP 400, or 200 with ``node_errors``).

    ``messages`` are readable lines naming node class, input and, where a
    binding targets that input, the schema property.
    """

    def __init__(
        self, messages: list[str], *, error: dict | None = None, node_errors: dict | None = None
    ):
        self.messages = list(messages)
        self.error = error or {}
        self.node_errors = node_errors or {}
        super().__init__("; ".join(self.messages) or "workflow rejected")


class ExecutionFailed(ComfyError):
    """A node raised at run time (``execution_error``)."""

    def __init__(
        self, *, node_id: str, node_type: str, exception_type: str, exception_message: str
    ):
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type
        self.exception_message = exception_message.strip()
        super().__init__(
            f"node {node_id} ({node_type}) failed: {exception_type}: {self.exception_message}"
        )


class Interrupted(ComfyError):
    """The run was interrupted before it finished."""


class RunTimeout(ComfyError):
    """The run did not finish within the caller's deadline. The prompt may still run."""

    retryable = True


class DownloadTooLarge(ComfyError):
    """A file from ``/view`` was larger than the caller's limit."""


class OutputMissing(ComfyError):
    """``/view`` has no such file (404): it was deleted, or the reference is wrong."""
