"""The samples-v2 patterns of azure-functions-durable-python, rewritten as one fixture app.

Function chaining (``my_orchestrator``), fan-out/fan-in (``E2_BackupSiteContent``) and
human interaction (``E4_SmsPhoneVerification``), with the HTTP starter of the samples.
The orchestrator bodies are the samples' idiomatic SDK code; only the outside world is
local: the backup copies files into a folder instead of Blob storage, and the "SMS" is
written to ``SENT_CODES`` instead of Twilio.
"""

from __future__ import annotations

import os
import random
import shutil
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

myApp = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
SENT_CODES: dict[str, int] = {}


@myApp.route(route="orchestrators/{functionName}", methods=["POST"])
@myApp.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient
                     ) -> func.HttpResponse:
    function_name = req.route_params.get("functionName")
    body = req.get_body()
    instance_id = await client.start_new(function_name, None,
                                         req.get_json() if body else None)
    return client.create_check_status_response(req, instance_id)


# --- function chaining ---------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def my_orchestrator(context: df.DurableOrchestrationContext):
    result1 = yield context.call_activity("say_hello", "Tokyo")
    result2 = yield context.call_activity("say_hello", "Seattle")
    result3 = yield context.call_activity("say_hello", "London")
    return [result1, result2, result3]


@myApp.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"


# --- fan-out/fan-in ------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def E2_BackupSiteContent(context: df.DurableOrchestrationContext):
    root_directory: str = context.get_input()
    if not root_directory:
        raise Exception("A directory path is required as input")
    files = yield context.call_activity("E2_GetFileList", root_directory)
    tasks = []
    for file in files:
        tasks.append(context.call_activity("E2_CopyFileToBlob", file))
    results = yield context.task_all(tasks)
    total_bytes = sum(results)
    return total_bytes


@myApp.activity_trigger(input_name="rootDirectory")
def E2_GetFileList(rootDirectory: str) -> list[str]:
    all_file_paths = []
    for path, _, files in os.walk(rootDirectory):
        for name in files:
            all_file_paths.append(os.path.join(path, name))
    return all_file_paths


@myApp.activity_trigger(input_name="filePath")
def E2_CopyFileToBlob(filePath: str) -> int:
    backups = os.environ["BACKUP_DIR"]
    shutil.copy(filePath, os.path.join(backups, os.path.basename(filePath)))
    return os.path.getsize(filePath)


# --- human interaction ---------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def E4_SmsPhoneVerification(context: df.DurableOrchestrationContext):
    phone_number = context.get_input()
    if not phone_number:
        raise Exception("A phone number input is required.")
    challenge_code = yield context.call_activity("E4_SendSmsChallenge", phone_number)
    expiration = context.current_utc_datetime + timedelta(seconds=180)
    timeout_task = context.create_timer(expiration)
    authorized = False
    for _ in range(3):
        challenge_response_task = context.wait_for_external_event("SmsChallengeResponse")
        winner = yield context.task_any([challenge_response_task, timeout_task])
        if winner == challenge_response_task:
            if challenge_response_task.result == challenge_code:
                authorized = True
                break
        else:
            break
    if not timeout_task.is_completed:
        timeout_task.cancel()
    return authorized


@myApp.activity_trigger(input_name="phoneNumber")
def E4_SendSmsChallenge(phoneNumber: str) -> int:
    code = random.randint(0, 10000)
    SENT_CODES[phoneNumber] = code
    return code
