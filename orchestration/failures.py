"""Turn Dagster step failures into the one-line reasons a user needs."""

_WRAPPER_PREFIXES = ("dagster._core.definitions.events.Failure: ",)


def root_message(error) -> str:
    """The message of the first error that is not Dagster's wrapper (DagsterExecutionStepExecutionError):
    the project's own error says what happened, in words; the library error under it is detail."""
    while getattr(error, "cause", None) is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    message = error.message.strip()
    for prefix in _WRAPPER_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def failure_reasons(result) -> list[str]:
    """Reasons of every failed step in an in-process execution result."""
    return [
        f"{event.step_key}: {root_message(event.event_specific_data.error)}"
        for event in result.all_events
        if event.is_step_failure and event.event_specific_data and event.event_specific_data.error
    ]
