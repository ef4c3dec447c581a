// One Key Vault secret. Callers deploy it only for a non-empty value.
param keyVaultName string
param name string

@secure()
param value string

param contentType string = 'text/plain'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: name
  properties: {
    value: value
    contentType: contentType
    attributes: {
      enabled: true
    }
  }
}

output name string = secret.name
