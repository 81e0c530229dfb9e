// The Function App: Flex Consumption (FC1), Python 3.11 on Linux, running as the user-
// assigned identity. Every connection is identity-based (`<name>__credential`,
// `__clientId`, `__serviceUri`...), secrets come from Key Vault references, and
// `appSettings` below is the one list the settings-drift test checks against
// shared/settings.py.

@description('Function App name')
param name string

@description('Flex Consumption plan name')
param planName string

@description('Region')
param location string

@description('Tags')
param tags object

@description('Resource id of the user-assigned identity')
param identityId string

@description('Client id of that identity (AZURE_CLIENT_ID, <connection>__clientId)')
param identityClientId string

@description('Name of that identity: the Postgres role the app logs in as')
param identityName string

@description('Storage account of AzureWebJobsStorage')
param storageAccountName string

@description('Blob container for the deployment package')
param deploymentContainerName string

@description('Blob endpoint, e.g. https://acct.blob.core.windows.net/')
param blobEndpoint string

@description('Queue endpoint')
param queueEndpoint string

@description('Table endpoint')
param tableEndpoint string

@description('Table of task log lines')
param logTableName string

@description('Blob container of backup artifacts')
param artifactContainerName string

@description('Service Bus namespace host')
param serviceBusHost string

@description('Session-enabled task queue')
param taskQueueName string

@description('SignalR endpoint (https://...)')
param signalrEndpoint string

@description('Durable Task Scheduler endpoint (https://...durabletask.io)')
param durableTaskEndpoint string

@description('Durable task hub on that scheduler')
param taskHubName string

@description('Postgres server host')
param postgresHost string

@description('Postgres database')
param postgresDatabase string

@description('Application Insights connection string')
param appInsightsConnectionString string

@description('Key Vault secret URI of the agent-key HMAC secret')
param agentKeySecretUri string

@description('Key Vault secret URI of the SMTP password (a blank secret means no SMTP AUTH)')
param smtpPasswordSecretUri string

@description('Public URL of the web app (links in notifications)')
param publicUrl string

@description('Maximum instances')
param maximumInstanceCount int

@description('Postgres connections per instance')
param dbPoolMax int

@description('Memory per instance in MB')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

// The token is the password; the user is the identity's Postgres role (created by the
// post-provision hook with pgaadauth_create_principal).
var databaseUrl = 'host=${postgresHost} port=5432 dbname=${postgresDatabase} user=${identityName} sslmode=require'

var appSettings = {
  // Functions host storage (host leases, the deployment package) through the identity
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: blobEndpoint
  AzureWebJobsStorage__queueServiceUri: queueEndpoint
  AzureWebJobsStorage__tableServiceUri: tableEndpoint
  // Durable Functions backend: Durable Task Scheduler (host.json storageProvider
  // azureManaged), Entra-only through the identity; hubName is CLOUDOPS_TASK_HUB
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${durableTaskEndpoint};TaskHub=${taskHubName};Authentication=ManagedIdentity;ClientID=${identityClientId}'
  // Service Bus trigger and sender
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusHost
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  // SignalR REST publishing with Entra tokens
  AzureSignalRConnectionString__serviceUri: signalrEndpoint
  AzureSignalRConnectionString__credential: 'managedidentity'
  AzureSignalRConnectionString__clientId: identityClientId
  // OpenTelemetry / App Insights with Entra-authenticated ingestion
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  AZURE_CLIENT_ID: identityClientId
  CLOUDOPS_MODE: 'azure'
  // Most functions are sync and wait on Postgres/HTTP: more worker threads than cores
  PYTHON_THREADPOOL_THREAD_COUNT: '32'
  DATABASE_URL: databaseUrl
  CLOUDOPS_DATABASE_ENTRA_USER: identityName
  CLOUDOPS_TASK_QUEUE: taskQueueName
  CLOUDOPS_TASK_HUB: taskHubName
  CLOUDOPS_SIGNALR_HUB: 'cloudops'
  CLOUDOPS_LOG_STORE: 'table'
  CLOUDOPS_LOG_TABLE: logTableName
  CLOUDOPS_ARTIFACT_CONTAINER: artifactContainerName
  CLOUDOPS_AGENT_KEY_SECRET: '@Microsoft.KeyVault(SecretUri=${agentKeySecretUri})'
  CLOUDOPS_SMTP_PASSWORD: '@Microsoft.KeyVault(SecretUri=${smtpPasswordSecretUri})'
  CLOUDOPS_PUBLIC_URL: publicUrl
  CLOUDOPS_LOG_LEVEL: 'INFO'
  CLOUDOPS_DB_POOL_MAX: string(dbPoolMax)
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No FTP and no basic-auth publishing (deploys use the identity and OneDeploy)
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

output id string = site.id
output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
output databaseUrl string = databaseUrl
