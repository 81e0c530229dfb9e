"""The SDK's entity sample shape through the local host: an HTTP client function that
signals the entity and reads its state with the ``durableClient`` binding."""

import json

import azure.durable_functions as df
import azure.functions as func

myApp = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@myApp.entity_trigger(context_name="context")
def Counter(context):
    current_value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        current_value += context.get_input()
    elif context.operation_name == "reset":
        current_value = 0
    context.set_state(current_value)
    context.set_result(current_value)


@myApp.orchestration_trigger(context_name="context")
def counter_orchestrator(context: df.DurableOrchestrationContext):
    entity_id = df.EntityId("Counter", context.get_input())
    context.signal_entity(entity_id, "add", 5)
    state = yield context.call_entity(entity_id, "get")
    return state


@myApp.route(route="entity/{entityName}/{entityKey}", methods=["POST", "GET"])
@myApp.durable_client_input(client_name="client")
async def entity_client(req: func.HttpRequest, client: df.DurableOrchestrationClient
                        ) -> func.HttpResponse:
    entity_id = df.EntityId(req.route_params["entityName"], req.route_params["entityKey"])
    if req.method == "POST":
        await client.signal_entity(entity_id, "add", req.get_json())
        return func.HttpResponse(status_code=202)
    state = await client.read_entity_state(entity_id)
    return func.HttpResponse(json.dumps({"exists": state.entity_exists,
                                         "state": state.entity_state}),
                             mimetype="application/json")


@myApp.route(route="orchestrators/{functionName}", methods=["POST"])
@myApp.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient
                     ) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["functionName"],
                                         client_input=req.get_json())
    return client.create_check_status_response(req, instance_id)
