// A Function App on a Flex Consumption plan running as a user-assigned identity.
// The deployment package lives in a blob container the identity reads and writes; the
// runtime (name + version) is set in functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION must not be app settings (Flex rejects them).
param name string
param location string = resourceGroup().location
param tags object = {}

param appServicePlanId string
param storageAccountName string
param deploymentStorageContainerName string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@allowed([
  'python'
])
param runtimeName string = 'python'

// 3.13 only: the remote build installs requirements.txt on this version, and our pins
// (azure-functions 2.x, the exactly pinned azure-functions-runtime) require 3.13. Flex also
// offers 3.14; add it here once `make test` passes on 3.14 with the pinned worker.
@allowed([
  '3.13'
])
param runtimeVersion string

@minValue(0)
param alwaysReadyInstances int = 0

// Flex Consumption rejects a maximum below 40; 1000 is the plan's ceiling.
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('App settings, complete: the appsettings resource replaces whatever was there.')
param appSettings object

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: appServicePlanId
    httpsOnly: true
    // Key Vault references in app settings resolve with this identity.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentStorageContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        // Always-ready instances for the "http" group (all HTTP triggers); none means scale to zero.
        alwaysReady: alwaysReadyInstances > 0 ? [
          {
            name: 'http'
            instanceCount: alwaysReadyInstances
          }
        ] : []
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: runtimeName
        version: runtimeVersion
      }
    }
  }
}

resource functionAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
}

output id string = functionApp.id
output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
