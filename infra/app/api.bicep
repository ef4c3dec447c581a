// The StockAgent API Function App and the complete set of its app settings.
//
// Setting names are the ones the code reads (shared/config/env.py); tests/unit/infra
// checks both directions. Secrets are not app settings: the app fetches OPENAI_API_KEY,
// GROK_API_KEY, ALPHA_VANTAGE_API_KEY, REDIS_PASSWORD and MONGODB_PASSWORD from Key Vault
// once per cold start (USE_AZURE_KEYVAULT), authenticating as AZURE_CLIENT_ID.
param name string
param location string = resourceGroup().location
param tags object = {}

param appServicePlanId string
param storageAccountName string
param deploymentStorageContainerName string
param applicationInsightsName string

@description('Resource id of the user-assigned identity.')
param identityId string
@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Vault URI, with trailing slash.')
param keyVaultUri string

param alwaysReadyInstances int = 0
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100
param instanceMemoryMB int = 2048

@description('MONGODB_URI value: a URI without password (cosmos) or a Key Vault reference (external). Never a plain credential.')
param mongoUri string
param mongoDatabase string = 'stockagent'
param mongoRetryWrites bool = false

@description('Azure Managed Redis host name. Empty: no Redis (in-memory cache).')
param redisHost string = ''
@description('Azure Managed Redis TLS port.')
param redisPort int = 10000

param logLevel string = 'INFO'
param corsOrigins string = ''
param modelProvider string = 'offline'
param openAiModel string = ''
param marketProviders string = ''
param marketRefreshSchedule string = '0 */15 * * * *'
param migrationSchedule string = '0 0 3 * * *'
param easyAuthEnabled bool = false
param entraAudience string = ''
param entraTenantId string = ''

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// Read by the Functions host and the Azure SDK, not by our code.
var platformSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // The queue endpoint the triggers listen on and the app's producer sends to (shared/queues), as the identity.
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  // Application Insights has local auth disabled: the host sends telemetry as the identity.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // DefaultAzureCredential picks the user-assigned identity from this.
  AZURE_CLIENT_ID: identityClientId
}

var coreSettings = {
  APP_ENV: 'production'
  // Production defaults to secrets-only overrides; these app settings are the deployment's
  // configuration, so every one of them must apply.
  CONFIG_ENV_OVERRIDE_MODE: 'all'
  USE_AZURE_KEYVAULT: 'true'
  AZURE_KEYVAULT_URI: keyVaultUri
  LOG_LEVEL: logLevel
  MONGODB_URI: mongoUri
  MONGODB_DATABASE: mongoDatabase
  MONGODB_RETRY_WRITES: mongoRetryWrites ? 'true' : 'false'
  MODEL_PROVIDER: modelProvider
  MARKET_REFRESH_SCHEDULE: marketRefreshSchedule
  MIGRATION_SCHEDULE: migrationSchedule
  EASY_AUTH_ENABLED: easyAuthEnabled ? 'true' : 'false'
  CORS_ORIGINS: corsOrigins
}

// Only with managed Redis; without these the app uses its in-memory cache.
var redisSettings = {
  REDIS_HOST: redisHost
  REDIS_PORT: string(redisPort)
  REDIS_SSL: 'true'
}

var marketSettings = {
  MARKET_PROVIDERS: marketProviders
}

var openAiModelSettings = {
  OPENAI_MODEL: openAiModel
}

var entraSettings = {
  ENTRA_AUDIENCE: entraAudience
  ENTRA_TENANT_ID: entraTenantId
}

// Optional groups are left out, not set empty: an empty value would override config files.
var optionalSettings = union(!empty(redisHost) ? redisSettings : {}, !empty(marketProviders) ? marketSettings : {}, !empty(openAiModel) ? openAiModelSettings : {}, !empty(entraAudience) ? entraSettings : {})
var appSettings = union(platformSettings, coreSettings, optionalSettings)

module functionApp '../core/host/functions-flexconsumption.bicep' = {
  name: 'api-functionapp'
  params: {
    name: name
    location: location
    tags: union(tags, {
      'azd-service-name': 'api'
    })
    appServicePlanId: appServicePlanId
    storageAccountName: storageAccountName
    deploymentStorageContainerName: deploymentStorageContainerName
    identityId: identityId
    runtimeName: 'python'
    runtimeVersion: '3.13'
    alwaysReadyInstances: alwaysReadyInstances
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    appSettings: appSettings
  }
}

output name string = functionApp.outputs.name
output uri string = functionApp.outputs.uri
