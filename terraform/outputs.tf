output "resource_group" {
  value = azurerm_resource_group.this.name
}

output "function_app_name" {
  value = azurerm_function_app_flex_consumption.this.name
}

output "function_app_hostname" {
  value = azurerm_function_app_flex_consumption.this.default_hostname
}

output "warehouse" {
  value = azurerm_function_app_flex_consumption.this.app_settings["SENTIMENT_LAKE_WAREHOUSE"]
}

output "legacy_container_url" {
  value = "${azurerm_storage_account.lake.primary_blob_endpoint}${azurerm_storage_container.legacy.name}"
}

output "eventhub_namespace" {
  value = azurerm_eventhub_namespace.this.name
}

output "catalog_server" {
  value = azurerm_postgresql_flexible_server.catalog.fqdn
}

output "key_vault_uri" {
  value = azurerm_key_vault.this.vault_uri
}

output "deployment_container" {
  value = "${azurerm_storage_account.host.primary_blob_endpoint}${azurerm_storage_container.deployments.name}"
}

output "redis_url" {
  description = "The answer cache (Entra sign-in: the app's token as password; no access keys)."
  value       = local.redis_url
}
