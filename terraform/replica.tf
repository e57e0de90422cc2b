# Disaster recovery (docs/recovery.md): a replica of the lake in another storage account, in the region
# paired with the lake's, which the ReplicateLake timer keeps up to date in commit order. Only when
# var.replica is set. The replica's SQL catalog is a PostgreSQL database of its own in that region
# (var.replica.catalog_uri): the primary's catalog is lost with the primary's region.

resource "azurerm_storage_account" "replica" {
  #checkov:skip=CKV_AZURE_33:Queue service logging does not apply: the account serves blobs only, no queues are used.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys; customer-managed keys are an organisation policy choice (var.name's owners), not a product need.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet-integrated Flex plan and DNS zones this estate does not create; access is Entra-only with TLS 1.2.
  #checkov:skip=CKV_AZURE_59:Public network access stays on for the Flex Consumption app without VNet integration; shared keys are disabled, so only Entra identities with RBAC get in.
  #checkov:skip=CKV_AZURE_206:The replica is itself the copy in another region; ZRS within that region is its durability.
  #checkov:skip=CKV_AZURE_35:Default network action Allow for the same reason as CKV_AZURE_59 (no VNet integration); authentication is Entra-only.
  #checkov:skip=CKV2_AZURE_40:Shared key access is disabled (shared_access_key_enabled = false); the check misreads the provider default.
  #checkov:skip=CKV2_AZURE_41:No SAS tokens are issued; with shared keys disabled none can be.
  #checkov:skip=CKV2_AZURE_38:Soft delete is set on the blob properties below; the check expects a container-level policy that ADLS Gen2 does not support.
  count                           = var.replica == null ? 0 : 1
  name                            = "${local.compact_name}dr"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = var.replica.location
  account_tier                    = "Standard"
  account_replication_type        = "ZRS"
  is_hns_enabled                  = true
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  shared_access_key_enabled       = false
  local_user_enabled              = false
  allow_nested_items_to_be_public = false
  default_to_oauth_authentication = true

  blob_properties {
    # A replica is the copy of last resort: a deleted blob stays recoverable for two weeks.
    delete_retention_policy {
      days = 14
    }
  }
}

resource "azurerm_storage_container" "replica" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging goes to the diagnostic setting of the account (Log Analytics) below.
  count                 = var.replica == null ? 0 : 1
  name                  = "replica"
  storage_account_id    = azurerm_storage_account.replica[0].id
  container_access_type = "private"
}

resource "azurerm_monitor_diagnostic_setting" "replica_blobs" {
  count                      = var.replica == null ? 0 : 1
  name                       = "replica-blob-logs"
  target_resource_id         = "${azurerm_storage_account.replica[0].id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
  metric {
    category = "Transaction"
  }
}

# The app writes the replica (ReplicateLake) and nothing else there.
resource "azurerm_role_assignment" "replica_writer" {
  count                = var.replica == null ? 0 : 1
  scope                = azurerm_storage_container.replica[0].id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = local.app_principal
}

locals {
  replica_settings = var.replica == null ? {} : {
    SENTIMENT_LAKE_REPLICA             = "abfss://${azurerm_storage_container.replica[0].name}@${azurerm_storage_account.replica[0].name}.dfs.core.windows.net/warehouse"
    SENTIMENT_LAKE_REPLICA_CATALOG_URI = var.replica.catalog_uri
  }
}
