// StockAgent API on Azure Functions Flex Consumption, provisioned by `azd up`.
//
// Layout follows the Functions azd quickstarts: this file (subscription scope) creates the
// resource group and wires local modules; infra/app/* holds the app-specific pieces and
// infra/core/* plain resource declarations (no registry modules, so it builds offline).
//
// Secrets never leave this deployment: @secure() parameters go straight into Key Vault,
// the Redis key is written to Key Vault inside its module, and no output carries a secret.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------
// azd environment
// ---------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used for the resource group name and a unique resource token.')
param environmentName string

@minLength(1)
@description('Primary location for all resources (must offer Flex Consumption).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person running azd (AZURE_PRINCIPAL_ID). Gets Key Vault Secrets Officer so they can set and rotate secrets. Empty: no assignment.')
param principalId string = ''

@description('Override the resource group name. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

@minLength(1)
@description('Part of the Key Vault name. Change it (azd env set KEYVAULT_NAME_SALT ...) to get a new vault name when a soft-deleted vault of an earlier deployment still holds the old one.')
param keyVaultNameSalt string = '1'

// ---------------------------------------------------------------------------------------
// Function App scale (the cost-relevant knobs of Flex Consumption)
// ---------------------------------------------------------------------------------------

@minValue(0)
@maxValue(20)
@description('Always-ready instances for the HTTP functions (billed while idle). 0 = scale to zero, cold starts possible.')
param alwaysReadyInstances int = 0

@minValue(40)
@maxValue(1000)
@description('Upper bound on instances the app may scale out to (Flex Consumption accepts 40 to 1000).')
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
@description('Memory per instance in MB (billed per GB-second).')
param instanceMemoryMB int = 2048

// ---------------------------------------------------------------------------------------
// Data stores
// ---------------------------------------------------------------------------------------

@allowed([
  'cosmos'
  'external'
])
@description('cosmos: create an Azure Cosmos DB for MongoDB (vCore) cluster. external: use an existing MongoDB/Atlas URI (externalMongoUri).')
param mongoMode string = 'cosmos'

@description('Database name inside the cluster.')
param mongoDatabase string = 'stockagent'

@description('Administrator user of the Cosmos DB for MongoDB (vCore) cluster (cosmos mode).')
param mongoAdminUser string = 'stockagentadmin'

// No default and deliberately absent from main.parameters.json: azd asks for it (hidden
// input) on the first provision and keeps the answer in .azure/<env>/config.json, not in .env.
@secure()
@description('Administrator password of the vCore cluster (cosmos mode, 8-256 characters). Stored in Key Vault as MONGODB-PASSWORD. Ignored in external mode.')
param mongoAdminPassword string

@description('vCore compute tier (cosmos mode): Free, M10, M20, M25, M30, M40, ...')
param mongoTier string = 'M10'

@description('Disk size per vCore node in GB (cosmos mode).')
param mongoStorageGb int = 32

@allowed([
  'Disabled'
  'SameZone'
  'ZoneRedundantPreferred'
])
@description('High availability of the vCore cluster (cosmos mode). Anything but Disabled doubles the compute cost.')
param mongoHighAvailability string = 'Disabled'

@secure()
@description('Full MongoDB/Atlas connection string, credentials included (external mode). Stored in Key Vault as MONGODB-URI and referenced from the MONGODB_URI app setting.')
param externalMongoUri string = ''

@description('MONGODB_RETRY_WRITES in external mode (cosmos mode always uses false: vCore does not support retryable writes).')
param externalMongoRetryWrites bool = true

@allowed([
  'managed'
  'none'
])
@description('managed: create Azure Managed Redis (shared cache and rate limits across instances). none: in-memory cache per instance.')
param redisMode string = 'managed'

@description('Azure Managed Redis SKU (managed mode), e.g. Balanced_B0, Balanced_B1, MemoryOptimized_M10.')
param redisSku string = 'Balanced_B0'

@allowed([
  'Enabled'
  'Disabled'
])
@description('Replicate the Redis data (managed mode). Enabled doubles the cost; the cache can be rebuilt, so it is off by default.')
param redisHighAvailability string = 'Disabled'

// ---------------------------------------------------------------------------------------
// Secrets (each is written to Key Vault only when non-empty; see README.md, "Deploy to Azure")
// ---------------------------------------------------------------------------------------

@secure()
@description('OpenAI API key. Stored in Key Vault as OPENAI-API-KEY.')
param openAiApiKey string = ''

@secure()
@description('xAI Grok API key. Stored in Key Vault as GROK-API-KEY.')
param grokApiKey string = ''

@secure()
@description('Alpha Vantage API key. Stored in Key Vault as ALPHA-VANTAGE-API-KEY.')
param alphaVantageApiKey string = ''

@secure()
@description('HMAC key of pagination cursors, stored in Key Vault as CURSOR-SIGNING-KEY. main.parameters.json asks azd for $(secretOrRandomPassword): the key already in the vault on every later provision (open cursors stay valid), a random one on the first; it never sits in .azure/<env>/.env.')
param cursorSigningKey string

// ---------------------------------------------------------------------------------------
// App behaviour (app settings; names match shared/config/env.py)
// ---------------------------------------------------------------------------------------

@description('LOG_LEVEL: DEBUG, INFO, WARNING, ERROR.')
param logLevel string = 'INFO'

@description('CORS_ORIGINS: comma-separated list of allowed browser origins. Empty: no cross-origin access.')
param corsOrigins string = ''

@description('MODEL_PROVIDER: offline, openai, grok, azure_openai, compatible. openai/grok need their key in Key Vault.')
param modelProvider string = 'offline'

@description('OPENAI_MODEL. Empty: the default from config/config.yaml.')
param openAiModel string = ''

@description('MARKET_PROVIDERS: provider order for every data type (yahoo, alpha_vantage, offline). alpha_vantage needs ALPHA-VANTAGE-API-KEY.')
param marketProviders string = 'yahoo,offline'

@description('MARKET_REFRESH_SCHEDULE: NCRONTAB (6 fields) of the market refresh timer.')
param marketRefreshSchedule string = '0 */15 * * * *'

@description('MIGRATION_SCHEDULE: NCRONTAB (6 fields) of the schema migration timer.')
param migrationSchedule string = '0 0 3 * * *'

@description('EASY_AUTH_ENABLED: trust the App Service Authentication (Easy Auth) principal headers. Only with App Service Authentication configured on the app (not part of this template).')
param easyAuthEnabled bool = false

@description('ENTRA_AUDIENCE: audience (application id URI or client id) of bearer tokens. Empty: Entra bearer tokens are not configured.')
param entraAudience string = ''

@description('ENTRA_TENANT_ID for bearer tokens. Empty: this subscription\'s tenant (used only when entraAudience is set).')
param entraTenantId string = ''

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var deploymentStorageContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'
// Vault names are global and a deleted vault keeps its name while soft-deleted (7 days here):
// the salt lets a new deployment of the same environment take a fresh name (docs/deploy.md).
var keyVaultName = '${abbrs.keyVaultVaults}${toLower(uniqueString(resourceToken, keyVaultNameSalt))}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------
// Identity, storage, monitoring, Key Vault
// ---------------------------------------------------------------------------------------

module identity './core/security/user-assigned-identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './core/storage/storage-account.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containers: [
      deploymentStorageContainerName
    ]
    // Queue-triggered functions (functions/jobs.py) and their poison queues.
    queues: [
      'market-refresh'
      'market-refresh-poison'
    ]
  }
}

module monitoring './core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module keyVault './core/security/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
  }
}

module secrets './app/secrets.bicep' = {
  name: 'secrets'
  scope: rg
  params: {
    keyVaultName: keyVault.outputs.name
    openAiApiKey: openAiApiKey
    grokApiKey: grokApiKey
    alphaVantageApiKey: alphaVantageApiKey
    cursorSigningKey: cursorSigningKey
    externalMongoUri: mongoMode == 'external' ? externalMongoUri : ''
  }
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    managedIdentityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

// ---------------------------------------------------------------------------------------
// Data stores
// ---------------------------------------------------------------------------------------

module cosmosMongo './core/database/cosmos-mongo-cluster.bicep' = if (mongoMode == 'cosmos') {
  name: 'cosmos-mongo'
  scope: rg
  params: {
    name: '${abbrs.documentDBMongoClusters}${resourceToken}'
    location: location
    tags: tags
    adminUser: mongoAdminUser
    adminPassword: mongoAdminPassword
    computeTier: mongoTier
    storageSizeGb: mongoStorageGb
    highAvailability: mongoHighAvailability
    keyVaultName: keyVault.outputs.name
  }
}

module redis './core/cache/managed-redis.bicep' = if (redisMode == 'managed') {
  name: 'managed-redis'
  scope: rg
  params: {
    name: '${abbrs.cacheRedisEnterprise}${resourceToken}'
    location: location
    tags: tags
    skuName: redisSku
    highAvailability: redisHighAvailability
    keyVaultName: keyVault.outputs.name
  }
}

// In external mode the app setting is a Key Vault reference, resolved by the platform with
// the user-assigned identity (keyVaultReferenceIdentity), so the URI never appears in
// the site configuration.
var externalMongoUriReference = '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secrets.outputs.mongoUriSecretName})'
var mongoUriSetting = mongoMode == 'cosmos' ? cosmosMongo.outputs.uriWithUser : externalMongoUriReference
var redisHostSetting = redisMode == 'managed' ? redis.outputs.hostName : ''

// ---------------------------------------------------------------------------------------
// Function App
// ---------------------------------------------------------------------------------------

module appServicePlan './core/host/appserviceplan.bicep' = {
  name: 'appserviceplan'
  scope: rg
  params: {
    name: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
  }
}

module api './app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    appServicePlanId: appServicePlan.outputs.id
    storageAccountName: storage.outputs.name
    deploymentStorageContainerName: deploymentStorageContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    keyVaultUri: keyVault.outputs.uri
    alwaysReadyInstances: alwaysReadyInstances
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    mongoUri: mongoUriSetting
    mongoDatabase: mongoDatabase
    mongoRetryWrites: mongoMode == 'cosmos' ? false : externalMongoRetryWrites
    redisHost: redisHostSetting
    logLevel: logLevel
    corsOrigins: corsOrigins
    modelProvider: modelProvider
    openAiModel: openAiModel
    marketProviders: marketProviders
    marketRefreshSchedule: marketRefreshSchedule
    migrationSchedule: migrationSchedule
    easyAuthEnabled: easyAuthEnabled
    entraAudience: entraAudience
    entraTenantId: !empty(entraTenantId) ? entraTenantId : tenant().tenantId
  }
  // The identity needs its storage, Key Vault and telemetry roles before the host starts.
  dependsOn: [
    rbac
  ]
}

// ---------------------------------------------------------------------------------------
// Outputs (azd stores them in .azure/<env>/.env: names and endpoints only, never secrets)
// ---------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output SERVICE_API_NAME string = api.outputs.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output AZURE_FUNCTION_URI string = api.outputs.uri
output AZURE_KEYVAULT_NAME string = keyVault.outputs.name
output AZURE_KEYVAULT_URI string = keyVault.outputs.uri
output AZURE_MONGO_MODE string = mongoMode
output AZURE_REDIS_MODE string = redisMode
output AZURE_REDIS_HOST string = redisHostSetting
// The vCore URI names the admin user but carries no password (that is MONGODB-PASSWORD in Key Vault).
output AZURE_COSMOS_MONGODB_URI string = mongoMode == 'cosmos' ? cosmosMongo.outputs.uriWithUser : ''
