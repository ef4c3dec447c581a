// Azure Managed Redis (Microsoft.Cache/redisEnterprise) with one TLS database on port 10000.
// The access key goes straight into Key Vault as REDIS-PASSWORD; it is never an output.
param name string
param location string = resourceGroup().location
param tags object = {}

@description('Balanced_B0 is the smallest Azure Managed Redis SKU.')
param skuName string = 'Balanced_B0'

@allowed([
  'Enabled'
  'Disabled'
])
param highAvailability string = 'Disabled'

param keyVaultName string

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: highAvailability
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    port: 10000
    clientProtocol: 'Encrypted'
    // EnterpriseCluster: one endpoint that a plain (non-cluster) redis-py client can use.
    clusteringPolicy: 'EnterpriseCluster'
    evictionPolicy: 'VolatileLRU'
    accessKeysAuthentication: 'Enabled'
  }
}

module keySecret '../security/keyvault-secret.bicep' = {
  name: 'secret-redis-password'
  params: {
    keyVaultName: keyVaultName
    name: 'REDIS-PASSWORD'
    value: database.listKeys().primaryKey
  }
}

output hostName string = cluster.properties.hostName
output port int = database.properties.port
