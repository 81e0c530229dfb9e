"""Run a catalogue script: argv executed directly (no shell, so metacharacters in
parameters are plain text), an explicit environment, a timeout that kills the whole
process tree, output streamed to the task log, and the exit code as the result.

A script may report outputs the way CI systems let steps do: it appends ``name=value``
lines to the file named by ``$CLOUDOPS_OUTPUT``; they come back in the result as
``outputs`` (a deploy script reports the environment's ``url`` this way).

Its own progress moves the task's progress bar: a line ``::progress 40`` (percent), or a
step counter at the start of a line, ``[3/5] migrating``, as many tools print them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import deque
from pathlib import Path
from typing import Any

from agent import process
from agent.handlers import JobCancelled, JobContext, JobFailed, require

BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
TAIL_LINES = 20
OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_OUTPUTS, MAX_OUTPUT_CHARS = 20, 2000
PROGRESS_COMMAND = re.compile(r"^::progress\s+(\d{1,3})(?:\.\d+)?\s*%?\s*$")
STEP_COUNTER = re.compile(r"^\s*\[(\d{1,4})\s*/\s*(\d{1,4})\]")


def script_progress(line: str) -> int | None:
    """The percentage a script's output line reports, if it reports one."""
    command = PROGRESS_COMMAND.match(line)
    if command:
        return min(100, int(command.group(1)))
    counter = STEP_COUNTER.match(line)
    if counter and int(counter.group(2)) > 0 and int(counter.group(1)) <= int(counter.group(2)):
        return int(100 * int(counter.group(1)) / int(counter.group(2)))
    return None


def _check_allowed(argv0: str, allowed: list[str] | None) -> str:
    """The executable to run for ``argv0``; refused unless the agent's config lists it in
    ``allowedExecutables`` (no list: no scripts)."""
    if allowed is None:
        raise JobFailed("refused by the agent: it runs no scripts (its config has no "
                        "allowedExecutables list)")
    resolved = shutil.which(argv0) or argv0
    allowed_paths = {shutil.which(a) or a for a in allowed}
    if argv0 in allowed or resolved in allowed_paths:
        return resolved
    raise JobFailed(f"refused by the agent: executable {argv0!r} is not in this agent's "
                    "allowedExecutables")


def run_script(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    argv = require(payload, "argv", list)
    if not argv or not all(isinstance(a, str) for a in argv):
        raise JobFailed("argv must be a non-empty list of strings")
    timeout = payload.get("timeoutSeconds", 600)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise JobFailed("timeoutSeconds must be a positive number")
    extra = payload.get("env") or {}
    if not isinstance(extra, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise JobFailed("env must map names to strings")
    executable = _check_allowed(argv[0], ctx.config.allowed_executables)
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ} | extra
    workdir = ctx.config.work_path / "jobs" / ctx.job_id
    workdir.mkdir(parents=True, exist_ok=True)
    output_file = workdir / "cloudops-output"
    output_file.unlink(missing_ok=True)
    env["CLOUDOPS_OUTPUT"] = str(output_file)
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def on_line(line: str) -> None:
        tail.append(line)
        ctx.log(line)
        progress = script_progress(line)
        if progress is not None:
            ctx.progress(progress)

    ctx.log(f"$ {' '.join(argv)}")
    try:
        outcome = process.run([executable, *argv[1:]], env=env, on_line=on_line,
                              timeout=float(timeout), cancel=ctx.cancel, cwd=str(workdir))
    except FileNotFoundError:
        raise JobFailed(f"executable {argv[0]!r} not found on this agent") from None
    except PermissionError:
        raise JobFailed(f"executable {argv[0]!r} is not executable") from None
    if outcome.cancelled:
        raise JobCancelled("cancelled: the script's process tree was stopped")
    if outcome.timed_out:
        raise JobFailed(f"timed out after {timeout:g} s; the script's process tree was "
                        "killed\n" + "\n".join(tail))
    if outcome.exit_code != 0:
        raise JobFailed(f"{payload.get('script') or argv[0]} exited with code "
                        f"{outcome.exit_code}; last lines:\n" + "\n".join(tail))
    outputs = read_outputs(output_file)
    return {"exitCode": 0, "outputs": outputs} if outputs else {"exitCode": 0}


def read_outputs(path: Path) -> dict[str, str]:
    """``name=value`` lines a script appended to ``$CLOUDOPS_OUTPUT`` (later ones win).

    Malformed lines fail the job rather than vanish: a deploy whose URL went missing
    should say so, not succeed quietly.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise JobFailed(f"cannot read the script's outputs: {exc}") from None
    outputs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not OUTPUT_NAME.match(name) or len(value) > MAX_OUTPUT_CHARS:
            raise JobFailed(f"$CLOUDOPS_OUTPUT line {number} is not name=value "
                            f"(names: letters, digits, _; values up to {MAX_OUTPUT_CHARS} "
                            "characters)")
        outputs[name] = value
    if len(outputs) > MAX_OUTPUTS:
        raise JobFailed(f"the script reported {len(outputs)} outputs; at most {MAX_OUTPUTS}")
    return outputs
