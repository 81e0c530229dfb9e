// CloudOps Control Plane: everything one `azd up` needs, in one resource group.
// Modules are small and each owns one service plus the role assignments on it.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; used in resource names and the azd-env-name tag')
param environmentName string

@minLength(1)
@description('Primary region for every resource except the Static Web App')
param location string

@description('Static Web Apps exist in a few regions only; its API runs in the Function App anyway')
@allowed([
  'westus2'
  'centralus'
  'eastus2'
  'westeurope'
  'eastasia'
])
param staticWebAppLocation string = 'westeurope'

@description('Object id of the person or pipeline running azd (Entra admin of Postgres, Key Vault secrets officer)')
param principalId string

@description('Sign-in name of that principal as Postgres knows it (UPN of a user, display name of a service principal)')
param principalName string

@description('Kind of principal running azd')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Postgres network access: public with firewall rules, or no public access (needs a VNet; see docs/deploy.md)')
@allowed([
  'public'
  'disabled'
])
param postgresNetworkAccess string = 'public'

@description('Client IP ranges allowed to reach Postgres (the deploying machine runs migrations): [{name, start, end}]')
param postgresFirewallRules array = []

@description('Public IP of the machine running azd, allowed through the Postgres firewall so the post-provision hook can migrate (set by the pre-provision hook)')
param clientIpAddress string = ''

@description('Postgres compute: Burstable B1ms for dev/test, General Purpose D2ds_v5 or larger for production')
@allowed([
  'Standard_B1ms'
  'Standard_B2s'
  'Standard_D2ds_v5'
  'Standard_D4ds_v5'
])
param postgresSkuName string = 'Standard_B1ms'

@description('Keep a password login on Postgres as a fallback to Entra auth (break-glass admin); off by default')
param postgresPasswordAuth bool = false

@secure()
@description('Password of the fallback admin; only used when postgresPasswordAuth is true')
param postgresAdminPassword string = ''

@description('SignalR tier: Free_F1 (20 connections, dev) or Standard_S1 (1,000 connections per unit)')
@allowed([
  'Free_F1'
  'Standard_S1'
])
param signalrSku string = 'Free_F1'

@description('Durable Task Scheduler billing: Consumption (per action, no idle cost) or Dedicated (capacity units)')
@allowed([
  'Consumption'
  'Dedicated'
])
param durableTaskSchedulerSku string = 'Consumption'

@description('Maximum Function App instances (Flex Consumption). Instances x dbPoolMax must stay under the Postgres connection limit (B1ms: 50, ~35 usable)')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 8

@description('Postgres connections per instance (CLOUDOPS_DB_POOL_MAX)')
@minValue(1)
@maxValue(50)
param dbPoolMax int = 4

@secure()
@description('Server secret for HMAC of agent API keys (stored in Key Vault; keep it stable: changing it invalidates agent keys)')
param agentKeySecret string

@secure()
@description('SMTP password for e-mail notifications (optional; stored in Key Vault)')
param smtpPassword string = ''

@description('Application (client) id of the Entra app registration the Static Web App signs users in with')
param aadClientId string = ''

@secure()
@description('Client secret of that app registration')
param aadClientSecret string = ''

@description('Key Vault firewall: restricted (trusted Azure services and AZURE_CLIENT_IP only) or public (a Function App without VNet integration cannot resolve Key Vault references behind the firewall)')
@allowed([
  'restricted'
  'public'
])
param keyVaultNetworkAccess string = 'restricted'

@description('Client id of the Entra app registration pipelines get tokens for (empty: no Entra callers besides the web app)')
param apiClientId string = ''

@description('Application (client) ids of the pipeline apps allowed to call the Function App with Entra tokens')
param pipelineAppIds array = []

var tags = {
  'azd-env-name': environmentName
  app: 'cloudops'
}
var token = toLower(uniqueString(subscription().id, environmentName, location))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-cloudops-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-cloudops-${token}'
    appInsightsName: 'appi-cloudops-${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stcloudops${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    logTableName: 'tasklogs'
    artifactContainerName: 'backups'
    deploymentContainerName: 'app-package'
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: 'sb-cloudops-${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    queueName: 'tasks'
  }
}

module signalr 'modules/signalr.bicep' = {
  name: 'signalr'
  scope: rg
  params: {
    name: 'sigr-cloudops-${token}'
    location: location
    tags: tags
    sku: signalrSku
    principalId: identity.outputs.principalId
    // browsers connect from the web app only
    allowedOrigins: [
      'https://${staticWebApp.outputs.defaultHostname}'
    ]
  }
}

module durableTask 'modules/durabletask.bicep' = {
  name: 'durabletask'
  scope: rg
  params: {
    name: 'dts-cloudops-${token}'
    location: location
    tags: tags
    sku: durableTaskSchedulerSku
    taskHubName: 'cloudops'
    principalId: identity.outputs.principalId
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  scope: rg
  params: {
    name: 'psql-cloudops-${token}'
    location: location
    tags: tags
    skuName: postgresSkuName
    databaseName: 'cloudops'
    networkAccess: postgresNetworkAccess
    firewallRules: concat(postgresFirewallRules, empty(clientIpAddress) ? [] : [
      {
        name: 'deployer'
        start: clientIpAddress
        end: clientIpAddress
      }
    ])
    passwordAuth: postgresPasswordAuth
    adminPassword: postgresAdminPassword
    entraAdminObjectId: principalId
    entraAdminName: principalName
    entraAdminType: principalType
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-cloudops-${take(token, 12)}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    agentKeySecret: agentKeySecret
    smtpPassword: smtpPassword
    networkAccess: keyVaultNetworkAccess
    allowedIpAddresses: empty(clientIpAddress) ? [] : [
      clientIpAddress
    ]
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: 'func-cloudops-${token}'
    planName: 'plan-cloudops-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityName: identity.outputs.name
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    logTableName: storage.outputs.logTableName
    artifactContainerName: storage.outputs.artifactContainerName
    serviceBusHost: serviceBus.outputs.host
    taskQueueName: serviceBus.outputs.queueName
    signalrEndpoint: signalr.outputs.endpoint
    durableTaskEndpoint: durableTask.outputs.endpoint
    taskHubName: durableTask.outputs.taskHubName
    postgresHost: postgres.outputs.host
    postgresDatabase: postgres.outputs.databaseName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    agentKeySecretUri: keyVault.outputs.agentKeySecretUri
    smtpPasswordSecretUri: keyVault.outputs.smtpPasswordSecretUri
    publicUrl: 'https://${staticWebApp.outputs.defaultHostname}'
    maximumInstanceCount: maximumInstanceCount
    dbPoolMax: dbPoolMax
  }
}

module staticWebApp 'modules/staticwebapp.bicep' = {
  name: 'staticwebapp'
  scope: rg
  params: {
    name: 'swa-cloudops-${token}'
    location: staticWebAppLocation
    tags: tags
    aadClientId: aadClientId
    aadClientSecret: aadClientSecret
  }
}

// The link is its own module: the Function App needs the SWA's host name first (links in
// notifications), and the link needs the Function App.
module staticWebAppBackend 'modules/swa-backend.bicep' = {
  name: 'swa-backend'
  scope: rg
  params: {
    staticWebAppName: staticWebApp.outputs.name
    staticWebAppHostname: staticWebApp.outputs.defaultHostname
    functionAppName: functionApp.outputs.name
    functionAppId: functionApp.outputs.id
    functionAppLocation: location
    apiClientId: apiClientId
    pipelineAppIds: pipelineAppIds
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CLIENT_ID string = identity.outputs.clientId
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output AZURE_STATIC_WEB_APP_NAME string = staticWebApp.outputs.name
output AZURE_STATIC_WEB_APP_URL string = 'https://${staticWebApp.outputs.defaultHostname}'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output DATABASE_URL string = functionApp.outputs.databaseUrl
output POSTGRES_HOST string = postgres.outputs.host
output POSTGRES_DATABASE string = postgres.outputs.databaseName
output POSTGRES_APP_ROLE string = identity.outputs.name
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.host
output SIGNALR_ENDPOINT string = signalr.outputs.endpoint
output DURABLE_TASK_SCHEDULER_ENDPOINT string = durableTask.outputs.endpoint
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.appInsightsConnectionString
