// Links the Function App as the Static Web App's /api backend, then declares the Function
// App's own authentication (authsettingsV2) so the platform, not the caller, vouches for
// every x-ms-client-principal the app reads:
// - "Azure Static Web Apps (Linked)": requests through the SWA arrive with the user's
//   principal and x-ms-client-principal-idp: azureStaticWebApps;
// - Entra ID, restricted to the pipeline applications (allowedApplications): their app
//   tokens arrive as x-ms-client-principal-idp: aad;
// - AllowAnonymous: unauthenticated requests still reach the code, which answers 401 unless
//   they carry a pipeline key (x-functions-key) or are agents (their own key header);
//   platform authentication strips client-supplied x-ms-client-principal* headers.
// authsettingsV2 is a full PUT that linking also writes, so it is declared after the link.

@description('Static Web App name')
param staticWebAppName string

@description('Static Web App default host name (the Linked provider\'s client id)')
param staticWebAppHostname string

@description('Function App name')
param functionAppName string

@description('Function App resource id')
param functionAppId string

@description('Function App region')
param functionAppLocation string

@description('Client id of the Entra app registration pipelines get tokens for (empty: Entra provider off)')
param apiClientId string

@description('Application (client) ids of the pipeline apps allowed to call with Entra tokens')
param pipelineAppIds array

resource swa 'Microsoft.Web/staticSites@2023-12-01' existing = {
  name: staticWebAppName
}

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource backend 'Microsoft.Web/staticSites/linkedBackends@2023-12-01' = {
  parent: swa
  name: 'backend'
  properties: {
    backendResourceId: functionAppId
    region: functionAppLocation
  }
}

resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  dependsOn: [
    backend
  ]
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    identityProviders: {
      azureStaticWebApps: {
        enabled: true
        registration: {
          clientId: staticWebAppHostname
        }
      }
      azureActiveDirectory: {
        enabled: !empty(apiClientId) && !empty(pipelineAppIds)
        registration: {
          clientId: apiClientId
          openIdIssuer: 'https://login.microsoftonline.com/${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            apiClientId
            'api://${apiClientId}'
          ]
          defaultAuthorizationPolicy: {
            allowedApplications: pipelineAppIds
          }
        }
      }
    }
  }
}
