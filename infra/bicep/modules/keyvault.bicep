// Key Vault (RBAC mode) for the few secrets left once everything else uses the managed
// identity: the agent-key HMAC secret and the SMTP password. (Pipeline keys are HMAC
// hashes in Postgres; Teams webhook URLs belong to notification rules, also in Postgres.)
// The app reads these as Key Vault references in its app settings. Purge protection on,
// RBAC only, and the firewall denies every network but trusted Azure services and the
// deployer's address unless `networkAccess` is 'public' (docs/deploy.md: Flex Consumption
// without VNet integration cannot pass the firewall).

@description('Vault name (3-24 characters)')
@minLength(3)
@maxLength(24)
param name string

@description('Region')
param location string

@description('Tags')
param tags object

@description('Principal of the Function App identity (reads secrets)')
param principalId string

@description('Principal running azd (manages secrets, e.g. pipeline keys)')
param deployerPrincipalId string

@description('Kind of deploying principal')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string

@description('restricted: deny all but trusted Azure services and allowedIpAddresses; public: allow every network (a Function App without VNet integration needs it)')
@allowed([
  'restricted'
  'public'
])
param networkAccess string = 'restricted'

@description('Addresses admitted through the firewall (the deployer)')
param allowedIpAddresses array = []

@secure()
@description('HMAC secret for agent API keys')
param agentKeySecret string

@secure()
@description('SMTP password (optional)')
param smtpPassword string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // a deleted vault or secret cannot be purged before its retention ends
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: networkAccess == 'public' ? 'Allow' : 'Deny'
      ipRules: [for ip in allowedIpAddresses: {
        value: ip
      }]
    }
  }
}

resource agentKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'agent-key-secret'
  properties: {
    contentType: 'text/plain'
    value: agentKeySecret
  }
}

resource smtp 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'smtp-password'
  properties: {
    contentType: 'text/plain'
    value: empty(smtpPassword) ? ' ' : smtpPassword
  }
}

resource appReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

resource deployerManagesSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}

output name string = vault.name
output agentKeySecretUri string = agentKey.properties.secretUri
output smtpPasswordSecretUri string = smtp.properties.secretUri
