// Service Bus: the session-enabled `tasks` queue (SessionId = environment id gives FIFO per
// environment; MessageId = task id with duplicate detection makes re-sends harmless).
// Standard tier: sessions and duplicate detection are not available on Basic.

@description('Namespace name')
param name string

@description('Region')
param location string

@description('Tags')
param tags object

@description('Principal of the Function App identity')
param principalId string

@description('Queue the HTTP API sends tasks to (CLOUDOPS_TASK_QUEUE)')
param queueName string

@description('Deliveries before a message is dead-lettered')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int = 10

@description('Window in which a repeated MessageId (task id) is dropped')
param duplicateDetectionWindow string = 'PT10M'

@description('Namespace tier')
@allowed([
  'Standard'
  'Premium'
])
param sku string = 'Standard'

// Data Owner on the queue only (not the namespace): send + receive for the app, and the
// manage right the Functions scale controller needs to read the queue's message count.
var serviceBusDataOwner = '090c5cfd-751d-490a-894a-3ce6f1109419'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: queueName
  properties: {
    requiresSession: true
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    lockDuration: 'PT1M'
    defaultMessageTimeToLive: 'P1D'
    enableBatchedOperations: true
  }
}

resource queueOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, principalId, serviceBusDataOwner)
  scope: queue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataOwner)
  }
}

output host string = '${namespace.name}.servicebus.windows.net'
output queueName string = queue.name
output id string = namespace.id
