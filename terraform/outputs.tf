output "function_app_name" {
  value = azurerm_function_app_flex_consumption.this.name
}

output "warehouse" {
  value = azurerm_function_app_flex_consumption.this.app_settings["SENTIMENT_LAKE_WAREHOUSE"]
}

output "eventhub_namespace" {
  value = azurerm_eventhub_namespace.this.name
}
