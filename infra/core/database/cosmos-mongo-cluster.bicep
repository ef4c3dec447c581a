// Azure Cosmos DB for MongoDB (vCore) cluster reachable from Azure services, with its admin
// password stored in Key Vault as MONGODB-PASSWORD. The URI output names the user but has no
// password: the app merges MONGODB_PASSWORD (from the vault) into it.
param name string
param location string = resourceGroup().location
param tags object = {}

param adminUser string

@secure()
@minLength(8)
@maxLength(256)
@description('Cluster admin password. Required in cosmos mode.')
param adminPassword string

@description('Compute tier: Free, M10, M20, M25, M30, M40, ...')
param computeTier string = 'M10'

param storageSizeGb int = 32

@allowed([
  'Disabled'
  'SameZone'
  'ZoneRedundantPreferred'
])
param highAvailability string = 'Disabled'

param serverVersion string = '7.0'

param keyVaultName string

resource cluster 'Microsoft.DocumentDB/mongoClusters@2024-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    administrator: {
      userName: adminUser
      password: adminPassword
    }
    serverVersion: serverVersion
    compute: {
      tier: computeTier
    }
    storage: {
      sizeGb: storageSizeGb
    }
    sharding: {
      shardCount: 1
    }
    highAvailability: {
      targetMode: highAvailability
    }
    publicNetworkAccess: 'Enabled'
  }
}

// 0.0.0.0 - 0.0.0.0 is the "allow Azure services" rule: Flex Consumption has no fixed
// outbound addresses without a virtual network.
resource allowAzureServices 'Microsoft.DocumentDB/mongoClusters/firewallRules@2024-07-01' = {
  parent: cluster
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

module passwordSecret '../security/keyvault-secret.bicep' = {
  name: 'secret-mongodb-password'
  params: {
    keyVaultName: keyVaultName
    name: 'MONGODB-PASSWORD'
    value: adminPassword
  }
}

// vCore does not support retryable writes, hence retrywrites=false in the URI as well.
output uriWithUser string = 'mongodb+srv://${adminUser}@${cluster.name}.global.mongocluster.cosmos.azure.com/?tls=true&authMechanism=SCRAM-SHA-256&retrywrites=false&maxIdleTimeMS=120000'
output name string = cluster.name
