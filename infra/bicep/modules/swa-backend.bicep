// Links the Function App as the Static Web App's /api backend. SWA then fronts it with
// its Easy Auth and forwards x-ms-client-principal to the functions.

@description('Static Web App name')
param staticWebAppName string

@description('Function App resource id')
param functionAppId string

@description('Function App region')
param functionAppLocation string

resource swa 'Microsoft.Web/staticSites@2023-12-01' existing = {
  name: staticWebAppName
}

resource backend 'Microsoft.Web/staticSites/linkedBackends@2023-12-01' = {
  parent: swa
  name: 'backend'
  properties: {
    backendResourceId: functionAppId
    region: functionAppLocation
  }
}
