// Azure SignalR Service in Serverless mode: the app publishes over the REST API with Entra
// tokens (App Server role) and clients connect with tokens from /api/negotiate.

@description('SignalR name')
param name string

@description('Region')
param location string

@description('Tags')
param tags object

@description('Tier')
@allowed([
  'Free_F1'
  'Standard_S1'
])
param sku string

@description('Units (Standard_S1 only; 1,000 concurrent connections each)')
@minValue(1)
@maxValue(100)
param capacity int = 1

@description('Principal of the Function App identity')
param principalId string

@description('Origins allowed to connect from a browser (the web app)')
param allowedOrigins array

var signalrAppServer = '420fcaa2-552c-430f-98ca-3264be4806c7'

resource signalr 'Microsoft.SignalRService/signalR@2024-03-01' = {
  name: name
  location: location
  tags: tags
  kind: 'SignalR'
  sku: {
    name: sku
    capacity: sku == 'Free_F1' ? 1 : capacity
  }
  properties: {
    features: [
      {
        flag: 'ServiceMode'
        value: 'Serverless'
      }
    ]
    // access keys off: the app authenticates with its managed identity
    disableLocalAuth: true
    cors: {
      allowedOrigins: allowedOrigins
    }
  }
}

resource appServer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(signalr.id, principalId, signalrAppServer)
  scope: signalr
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', signalrAppServer)
  }
}

output endpoint string = 'https://${signalr.properties.hostName}'
output id string = signalr.id
