"""The function app indexes cleanly and exposes exactly the expected functions."""

from function_app import app

EXPECTED = {
    "health": ("httpTrigger", "health"),
    "negotiate": ("httpTrigger", "negotiate"),
    "realtime_group": ("httpTrigger", "realtime/groups/{group}"),
    "artifact": ("httpTrigger", "artifacts/{*name}"),
}


def test_function_app_lists_expected_functions_with_bindings() -> None:
    found = {}
    for fn in app.get_functions():
        trigger = fn.get_trigger()
        found[fn.get_function_name()] = (trigger.get_binding_name(),
                                         getattr(trigger, "route", None))
    assert found == EXPECTED
