// Durable Task Scheduler: the Durable Functions backend in Azure (docs/architecture.md,
// "The Durable backend in Azure"). The scheduler pushes work items to the app over gRPC,
// so the first click after a quiet spell starts its orchestration at once: no queue
// polling with a back-off up to maxQueuePollingInterval, as the Azure Storage provider
// has. Access is Entra-only (the app's identity, Durable Task Data Contributor on the task
// hub); the network allow-list must name at least one range (an empty list refuses every
// call) and the Flex Consumption app has no fixed outbound address, hence 0.0.0.0/0.

@description('Scheduler name')
param name string

@description('Region (the Function App region, for latency)')
param location string

@description('Tags')
param tags object

@description('Billing: Consumption (per dispatched action, no idle cost, up to 500 actions/s) or Dedicated (capacity units, 2,000 actions/s each)')
@allowed([
  'Consumption'
  'Dedicated'
])
param sku string = 'Consumption'

@description('Capacity units (Dedicated only; 3 for high availability)')
@minValue(1)
@maxValue(3)
param capacity int = 1

@description('Task hub name (host.json hubName, through CLOUDOPS_TASK_HUB)')
param taskHubName string

@description('Principal of the Function App identity')
param principalId string

var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: sku == 'Dedicated' ? {
      name: sku
      capacity: capacity
    } : {
      name: sku
    }
    ipAllowlist: [
      '0.0.0.0/0'
    ]
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

resource dataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(taskHub.id, principalId, durableTaskDataContributor)
  scope: taskHub
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
  }
}

output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
output id string = scheduler.id
