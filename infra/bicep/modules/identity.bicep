// The Function App's user-assigned managed identity: every data-plane call it makes
// (Storage, Service Bus, SignalR, Postgres, Key Vault, App Insights) authenticates as it.

@description('Identity name; also the Postgres role name the app logs in as')
param name string

@description('Region')
param location string

@description('Tags applied to the identity')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
