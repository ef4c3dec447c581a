// Key Vault secrets from @secure() deployment parameters. A secret is written only when its
// value is non-empty, so a later `azd provision` without the value keeps what is in the vault
// (set or rotated there directly). Vault names use dashes; the app maps them to OPENAI_API_KEY etc.
param keyVaultName string

@secure()
param openAiApiKey string = ''

@secure()
param grokApiKey string = ''

@secure()
param alphaVantageApiKey string = ''

@secure()
@description('HMAC key of pagination cursors: the one in the vault on later provisions, a random password from azd on the first.')
param cursorSigningKey string

// azd's random password is shorter than the 32 characters the app requires: lengthen it once,
// deterministically; the stored (long enough) value then comes back unchanged on every provision.
var cursorSigningKeyValue = length(cursorSigningKey) >= 32 ? cursorSigningKey : concat(cursorSigningKey, '.', guid(cursorSigningKey, keyVaultName))

@secure()
@description('External MongoDB/Atlas URI (external mode only).')
param externalMongoUri string = ''

var mongoUriSecretName = 'MONGODB-URI'

module openAiSecret '../core/security/keyvault-secret.bicep' = if (!empty(openAiApiKey)) {
  name: 'secret-openai-api-key'
  params: {
    keyVaultName: keyVaultName
    name: 'OPENAI-API-KEY'
    value: openAiApiKey
  }
}

module grokSecret '../core/security/keyvault-secret.bicep' = if (!empty(grokApiKey)) {
  name: 'secret-grok-api-key'
  params: {
    keyVaultName: keyVaultName
    name: 'GROK-API-KEY'
    value: grokApiKey
  }
}

module alphaVantageSecret '../core/security/keyvault-secret.bicep' = if (!empty(alphaVantageApiKey)) {
  name: 'secret-alpha-vantage-api-key'
  params: {
    keyVaultName: keyVaultName
    name: 'ALPHA-VANTAGE-API-KEY'
    value: alphaVantageApiKey
  }
}

module cursorSigningKeySecret '../core/security/keyvault-secret.bicep' = if (!empty(cursorSigningKeyValue)) {
  name: 'secret-cursor-signing-key'
  params: {
    keyVaultName: keyVaultName
    name: 'CURSOR-SIGNING-KEY'
    value: cursorSigningKeyValue
  }
}

module mongoUriSecret '../core/security/keyvault-secret.bicep' = if (!empty(externalMongoUri)) {
  name: 'secret-mongodb-uri'
  params: {
    keyVaultName: keyVaultName
    name: mongoUriSecretName
    value: externalMongoUri
  }
}

// The secret's name only (the app setting's Key Vault reference is built from it).
output mongoUriSecretName string = mongoUriSecretName
