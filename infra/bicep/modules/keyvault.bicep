// Key Vault (RBAC mode) for the few secrets left once everything else uses the managed
// identity: the agent-key HMAC secret, pipeline keys, SMTP password. (Teams webhook URLs
// belong to notification rules and live with them in Postgres.) The app reads these as
// Key Vault references in its app settings.

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
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource agentKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'agent-key-secret'
  properties: {
    value: agentKeySecret
  }
}

// Created empty; the deployer adds `name=sha256hex` entries (docs/deploy.md).
resource pipelineKeys 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'pipeline-keys'
  properties: {
    value: ' '
  }
}

resource smtp 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'smtp-password'
  properties: {
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
output pipelineKeysSecretUri string = pipelineKeys.properties.secretUri
output smtpPasswordSecretUri string = smtp.properties.secretUri
