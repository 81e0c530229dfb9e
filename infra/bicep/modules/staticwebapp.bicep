// The Static Web App (Standard: needed for a linked backend and a custom Entra provider).
// Sign-in goes through Azure AD; web/staticwebapp.config.json names the app settings
// below (AAD_CLIENT_ID / AAD_CLIENT_SECRET) in its auth.identityProviders section.

@description('Static Web App name')
param name string

@description('Region (Static Web Apps are offered in a few regions)')
param location string

@description('Tags')
param tags object

@description('Entra app registration client id for sign-in (empty: pre-configured Azure AD provider)')
param aadClientId string

@secure()
@description('Entra app registration client secret')
param aadClientSecret string

resource swa 'Microsoft.Web/staticSites@2023-12-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'web'
  })
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    allowConfigFileUpdates: true
    stagingEnvironmentPolicy: 'Enabled'
  }
}

resource swaSettings 'Microsoft.Web/staticSites/config@2023-12-01' = if (!empty(aadClientId)) {
  parent: swa
  name: 'appsettings'
  properties: {
    AAD_CLIENT_ID: aadClientId
    AAD_CLIENT_SECRET: aadClientSecret
  }
}

output name string = swa.name
output id string = swa.id
output defaultHostname string = swa.properties.defaultHostname
