"""A test-only app with a timer every second that also runs on start-up."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

app = func.FunctionApp()

runs: list[tuple[bool, datetime]] = []


@app.timer_trigger(arg_name="timer", schedule="* * * * * *", run_on_startup=True)
async def every_second(timer: func.TimerRequest) -> None:
    runs.append((timer.past_due, datetime.now(UTC)))
