// Azure Database for PostgreSQL Flexible Server with Entra authentication. The deployer is
// the Entra admin (the post-provision hook creates the app's role from its managed
// identity and runs migrations); the app logs in as its managed identity with a token.
// A password admin exists only if `passwordAuth` is on (documented break-glass fallback).

@description('Server name')
param name string

@description('Region')
param location string

@description('Tags')
param tags object

@description('Compute SKU')
@allowed([
  'Standard_B1ms'
  'Standard_B2s'
  'Standard_D2ds_v5'
  'Standard_D4ds_v5'
])
param skuName string

@description('Application database')
param databaseName string

@description('public: reachable through firewall rules; disabled: private networking only')
@allowed([
  'public'
  'disabled'
])
param networkAccess string

@description('Extra firewall rules [{name, start, end}] (e.g. the deployer\'s IP for migrations)')
param firewallRules array

@description('Also allow password logins (fallback)')
param passwordAuth bool

@secure()
@description('Fallback admin password (only with passwordAuth)')
param adminPassword string

@description('Object id of the Entra admin')
param entraAdminObjectId string

@description('Name of the Entra admin as Postgres sees it')
param entraAdminName string

@description('Entra admin principal type')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param entraAdminType string

@description('Postgres major version')
@allowed([
  '16'
  '17'
])
param version string = '16'

var burstable = startsWith(skuName, 'Standard_B')

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: burstable ? 'Burstable' : 'GeneralPurpose'
  }
  properties: {
    version: version
    administratorLogin: passwordAuth ? 'cloudopsadmin' : null
    administratorLoginPassword: passwordAuth ? adminPassword : null
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: passwordAuth ? 'Enabled' : 'Disabled'
      tenantId: subscription().tenantId
    }
    storage: {
      storageSizeGB: 32
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    network: {
      publicNetworkAccess: networkAccess == 'public' ? 'Enabled' : 'Disabled'
    }
  }
}

resource entraAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: entraAdminObjectId
  properties: {
    principalType: entraAdminType
    principalName: entraAdminName
    tenantId: subscription().tenantId
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// Flex Consumption apps without a VNet leave from shared Azure IPs: this rule ("Allow
// public access from any Azure service") admits them; see docs/deploy.md for private access.
resource azureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (networkAccess == 'public') {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

@batchSize(1)
resource extraRules 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = [for rule in firewallRules: if (networkAccess == 'public') {
  parent: server
  name: rule.name
  properties: {
    startIpAddress: rule.start
    endIpAddress: rule.end
  }
}]

output host string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
output id string = server.id
