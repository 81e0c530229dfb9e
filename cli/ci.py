"""What the CLI reads from a CI runner's environment: is this CI, and the default
``Idempotency-Key`` that makes a retried pipeline step replay its task instead of
running the operation again.

Azure DevOps: ``ado:<TeamProjectId>:<BuildId>:<JobAttempt>:<digest>``. GitHub Actions:
``gh:<RUN_ID>:<RUN_ATTEMPT>:<digest>``. The digest covers the step (stage/job/step ids;
the repository on GitHub),
the operation, its target and its body, so two different steps of one run never share a
key, while the same step retried (``retryCountOnTaskFailure``, a re-run of the step)
does. A new *attempt* of a job (re-running a failed job) is a deliberate new run, so the
attempt number is part of the key.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

CI_VARIABLES = ("TF_BUILD", "GITHUB_ACTIONS", "CI")

# Per-step identity, in order; absent variables are skipped.
ADO_STEP = ("SYSTEM_STAGENAME", "SYSTEM_PHASENAME", "SYSTEM_JOBNAME", "SYSTEM_TASKINSTANCEID",
            "SYSTEM_TASKDISPLAYNAME")
GITHUB_STEP = ("GITHUB_REPOSITORY", "GITHUB_WORKFLOW", "GITHUB_JOB", "GITHUB_ACTION")


def is_ci(env: Mapping[str, str]) -> bool:
    """True on a CI runner: plain timestamped lines, no progress bar."""
    return any(env.get(name, "").strip().lower() not in ("", "0", "false")
               for name in CI_VARIABLES)


def runner(env: Mapping[str, str]) -> str | None:
    if env.get("TF_BUILD", "").lower() == "true" or env.get("SYSTEM_TEAMPROJECTID"):
        return "azure-devops"
    if env.get("GITHUB_ACTIONS", "").lower() == "true" or env.get("GITHUB_RUN_ID"):
        return "github-actions"
    return None


def _digest(env: Mapping[str, str], step_vars: tuple[str, ...], operation: str,
            target: str, body: Any) -> str:
    material = json.dumps({"step": [env.get(v, "") for v in step_vars],
                           "operation": operation, "target": target, "body": body},
                          sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def default_idempotency_key(env: Mapping[str, str], operation: str, target: str,
                            body: Any) -> tuple[str, bool]:
    """(key, derived from the pipeline run). Outside a pipeline: a fresh random key, so
    the CLI's own retries of one POST are still safe."""
    kind = runner(env)
    if kind == "azure-devops" and env.get("BUILD_BUILDID"):
        attempt = env.get("SYSTEM_JOBATTEMPT") or env.get("SYSTEM_STAGEATTEMPT") or "1"
        return (f"ado:{env.get('SYSTEM_TEAMPROJECTID', '-')}:{env['BUILD_BUILDID']}:{attempt}:"
                f"{_digest(env, ADO_STEP, operation, target, body)}", True)
    if kind == "github-actions" and env.get("GITHUB_RUN_ID"):
        attempt = env.get("GITHUB_RUN_ATTEMPT") or "1"
        return (f"gh:{env['GITHUB_RUN_ID']}:{attempt}:"
                f"{_digest(env, GITHUB_STEP, operation, target, body)}", True)
    return f"cli:{uuid.uuid4()}", False
