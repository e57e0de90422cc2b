terraform {
  required_version = ">= 1.6"
  required_providers {
    # 4.60 brings azurerm_managed_redis_access_policy_assignment (Entra sign-in to Azure Managed Redis).
    azurerm = { source = "hashicorp/azurerm", version = "~> 4.60" }
    # Only for removing the key-based AzureWebJobsStorage setting azurerm writes (see the app below).
    azapi = { source = "Azure/azapi", version = "~> 2.0" }
  }
}

provider "azurerm" {
  features {}
  # The lake and host accounts refuse shared keys; the provider manages their containers with Entra ID.
  storage_use_azuread = true
}

data "azurerm_client_config" "current" {}

locals {
  compact_name = replace(var.name, "-", "")
  # Role assignments are scoped to the one container or hub a role is for, not the whole account.
  lake_container_scope   = "${azurerm_storage_account.lake.id}/blobServices/default/containers/${azurerm_storage_container.lake.name}"
  legacy_container_scope = "${azurerm_storage_account.lake.id}/blobServices/default/containers/${azurerm_storage_container.legacy.name}"
  app_principal          = azurerm_function_app_flex_consumption.this.identity[0].principal_id
  # The answer cache: Azure Managed Redis by default (TLS on 10000), Azure Cache for Redis while it lasts
  # (TLS on 6380); either way Entra sign-in only, no access keys.
  managed_cache = var.cache_product == "managed-redis"
  redis_url     = local.managed_cache ? "rediss://${azurerm_managed_redis.answers[0].hostname}:${azurerm_managed_redis.answers[0].default_database[0].port}" : "rediss://${azurerm_redis_cache.answers[0].hostname}:${azurerm_redis_cache.answers[0].ssl_port}"
}

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-rg"
  location = var.location
}

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-logs"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  sku                 = "PerGB2018"
  retention_in_days   = 30
}

resource "azurerm_application_insights" "this" {
  name                = "${var.name}-insights"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  workspace_id        = azurerm_log_analytics_workspace.this.id
  application_type    = "other"
}

# The Iceberg warehouse and the legacy uploads: ADLS Gen2 (hierarchical namespace), reached only with Entra ID
# (the app's managed identity; no account keys exist to leak).
resource "azurerm_storage_account" "lake" {
  #checkov:skip=CKV_AZURE_33:Queue service logging does not apply: the account serves blobs only, no queues are used.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys; customer-managed keys are an organisation policy choice (var.name's owners), not a product need.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet-integrated Flex plan and DNS zones this estate does not create; access is Entra-only with TLS 1.2.
  #checkov:skip=CKV_AZURE_59:Public network access stays on for the Flex Consumption app without VNet integration; shared keys are disabled, so only Entra identities with RBAC get in.
  #checkov:skip=CKV_AZURE_206:ZRS is the chosen durability; GRS doubles cost and the data can be re-ingested from Event Hubs retention and the legacy files.
  #checkov:skip=CKV_AZURE_35:Default network action Allow for the same reason as CKV_AZURE_59 (no VNet integration); authentication is Entra-only.
  #checkov:skip=CKV2_AZURE_40:Shared key access is disabled (shared_access_key_enabled = false); the check misreads the provider default.
  #checkov:skip=CKV2_AZURE_41:No SAS tokens are issued; with shared keys disabled none can be.
  #checkov:skip=CKV2_AZURE_38:Soft delete is set on the blob properties below; the check expects a container-level policy that ADLS Gen2 does not support.
  name                            = "${local.compact_name}lake"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
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
    delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_container" "lake" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging goes to the diagnostic setting of the account (Log Analytics) below.
  name                  = "lake"
  storage_account_id    = azurerm_storage_account.lake.id
  container_access_type = "private"
}

# Legacy Parquet exports are uploaded here; Event Grid tells the MigrateBlob function about each new blob.
resource "azurerm_storage_container" "legacy" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging goes to the diagnostic setting of the account (Log Analytics) below.
  name                  = "legacy"
  storage_account_id    = azurerm_storage_account.lake.id
  container_access_type = "private"
}

# Upload events Event Grid could not deliver within its retry policy land here, so no upload is forgotten:
# `sentiment-lake migrate` migrates the files they name (docs/deploy.md).
resource "azurerm_storage_container" "upload_events" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging goes to the diagnostic setting of the account (Log Analytics) below.
  name                  = "upload-events-undelivered"
  storage_account_id    = azurerm_storage_account.lake.id
  container_access_type = "private"
}

resource "azurerm_monitor_diagnostic_setting" "lake_blobs" {
  name                       = "lake-blob-logs"
  target_resource_id         = "${azurerm_storage_account.lake.id}/blobServices/default"
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

# The Functions host's own storage (deployment package, timers' locks, Event Hubs checkpoints), reached with
# the app's identity too.
resource "azurerm_storage_account" "host" {
  #checkov:skip=CKV_AZURE_33:The host's queues are internal to the Functions runtime; their logging adds cost without an audit need.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys; see the lake account.
  #checkov:skip=CKV2_AZURE_33:No private endpoints without VNet integration; see the lake account.
  #checkov:skip=CKV_AZURE_59:Public network access for the Flex Consumption host without VNet integration; Entra-only authentication.
  #checkov:skip=CKV_AZURE_206:LRS: the host's state (checkpoints, leases, package) is rebuilt by a redeploy.
  #checkov:skip=CKV_AZURE_35:Default network action Allow, as CKV_AZURE_59.
  #checkov:skip=CKV2_AZURE_40:Shared key access is disabled; see the lake account.
  #checkov:skip=CKV2_AZURE_41:No SAS tokens are issued; with shared keys disabled none can be.
  #checkov:skip=CKV2_AZURE_38:Soft delete of the host's own blobs would keep stale leases and checkpoints.
  name                            = "${local.compact_name}host"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  shared_access_key_enabled       = false
  local_user_enabled              = false
  allow_nested_items_to_be_public = false
  default_to_oauth_authentication = true
}

resource "azurerm_storage_container" "deployments" {
  #checkov:skip=CKV2_AZURE_21:The deployment container holds one package written by the deploy; reads are the platform's.
  name                  = "deployments"
  storage_account_id    = azurerm_storage_account.host.id
  container_access_type = "private"
}

resource "azurerm_eventhub_namespace" "this" {
  #checkov:skip=CKV2_AZURE_32:Private endpoints need VNet integration; local (SAS) auth is disabled so only Entra identities connect.
  #checkov:skip=CKV_AZURE_228:Zone redundancy depends on the region's support; Standard namespaces in zone-capable regions get it by default.
  name                          = "${var.name}-ehns"
  resource_group_name           = azurerm_resource_group.this.name
  location                      = azurerm_resource_group.this.location
  sku                           = "Standard"
  capacity                      = var.throughput_units
  local_authentication_enabled  = false
  minimum_tls_version           = "1.2"
  public_network_access_enabled = true
}

resource "azurerm_eventhub" "events" {
  name              = "sentiment-events"
  namespace_id      = azurerm_eventhub_namespace.this.id
  partition_count   = var.partition_count
  message_retention = 7
}

resource "azurerm_eventhub_consumer_group" "ingest" {
  name                = "sentiment-lake-ingest"
  namespace_name      = azurerm_eventhub_namespace.this.name
  eventhub_name       = azurerm_eventhub.events.name
  resource_group_name = azurerm_resource_group.this.name
}

# Answer cache for the query API, signed in to with the app's Entra identity (a token as password, renewed
# before it expires); access keys are off, so there is no key to store or leak. Azure Managed Redis by default:
# Azure Cache for Redis (Basic/Standard/Premium) retires on 2028-09-30. The EnterpriseCluster policy gives one
# endpoint that routes every key itself, so the app's single-endpoint client sees one server.
resource "azurerm_managed_redis" "answers" {
  #checkov:skip=CKV_AZURE_89:Public access with TLS and Entra-only sign-in; private endpoints need VNet integration this estate does not create.
  count                     = local.managed_cache ? 1 : 0
  name                      = "${var.name}-cache"
  resource_group_name       = azurerm_resource_group.this.name
  location                  = azurerm_resource_group.this.location
  sku_name                  = var.managed_redis_sku
  high_availability_enabled = true
  public_network_access     = "Enabled"

  default_database {
    access_keys_authentication_enabled = false
    client_protocol                    = "Encrypted"
    clustering_policy                  = "EnterpriseCluster"
    eviction_policy                    = "VolatileLRU"
  }
}

resource "azurerm_managed_redis_access_policy_assignment" "app" {
  count            = local.managed_cache ? 1 : 0
  managed_redis_id = azurerm_managed_redis.answers[0].id
  object_id        = local.app_principal
}

# The design card's product, while it lasts: the same Entra sign-in, TLS on 6380.
resource "azurerm_redis_cache" "answers" {
  #checkov:skip=CKV_AZURE_89:Public access with TLS and Entra-only sign-in; private endpoints need VNet integration.
  count                              = local.managed_cache ? 0 : 1
  name                               = "${var.name}-cache"
  resource_group_name                = azurerm_resource_group.this.name
  location                           = azurerm_resource_group.this.location
  capacity                           = var.redis_capacity
  family                             = "C"
  sku_name                           = "Standard"
  non_ssl_port_enabled               = false
  minimum_tls_version                = "1.2"
  public_network_access_enabled      = true
  access_keys_authentication_enabled = false

  redis_configuration {
    active_directory_authentication_enabled = true
  }
}

resource "azurerm_redis_cache_access_policy_assignment" "app" {
  count              = local.managed_cache ? 0 : 1
  name               = "sentiment-lake-app"
  redis_cache_id     = azurerm_redis_cache.answers[0].id
  access_policy_name = "Data Contributor"
  object_id          = local.app_principal
  object_id_alias    = "sentiment-lake-app"
}

# The SQL catalog every instance shares (a SQLite file per instance would give each its own table). Entra
# sign-in only: the app connects as its managed identity (a token as password, renewed before it expires),
# people as themselves; there is no password to leak.
resource "azurerm_postgresql_flexible_server" "catalog" {
  #checkov:skip=CKV_AZURE_136:Geo-redundant backups are a cost choice; the catalog is small and its rows can be rebuilt from the metadata files.
  #checkov:skip=CKV2_AZURE_57:Private endpoints need VNet integration; TLS is enforced and the firewall admits Azure services only.
  name                          = "${var.name}-catalog"
  resource_group_name           = azurerm_resource_group.this.name
  location                      = azurerm_resource_group.this.location
  version                       = "16"
  sku_name                      = var.catalog_sku
  storage_mb                    = 32768
  backup_retention_days         = 7
  public_network_access_enabled = true
  zone                          = "1"

  authentication {
    active_directory_auth_enabled = true
    password_auth_enabled         = false
    tenant_id                     = data.azurerm_client_config.current.tenant_id
  }
}

resource "azurerm_postgresql_flexible_server_configuration" "require_tls" {
  name      = "require_secure_transport"
  server_id = azurerm_postgresql_flexible_server.catalog.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_configuration" "log_connections" {
  name      = "log_connections"
  server_id = azurerm_postgresql_flexible_server.catalog.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_database" "catalog" {
  name      = "sentiment_catalog"
  server_id = azurerm_postgresql_flexible_server.catalog.id
  charset   = "UTF8"
  collation = "en_US.utf8"
}

# 0.0.0.0-0.0.0.0 is Azure's "allow Azure services" rule: Flex Consumption has no fixed outbound addresses.
resource "azurerm_postgresql_flexible_server_firewall_rule" "azure_services" {
  #checkov:skip=CKV2_AZURE_26:The Azure-services rule (0.0.0.0) admits only Azure's own outbound addresses; Flex Consumption has no fixed IPs to list, and TLS plus the password still apply.
  name             = "azure-services"
  server_id        = azurerm_postgresql_flexible_server.catalog.id
  start_ip_address = "0.0.0.0"
  end_ip_address   = "0.0.0.0"
}

# Entra administrators: a person or group (people sign in with their identities), and the app's identity,
# whose role name is the app's name. The server holds only the catalog database, which the app owns.
resource "azurerm_postgresql_flexible_server_active_directory_administrator" "app" {
  server_name         = azurerm_postgresql_flexible_server.catalog.name
  resource_group_name = azurerm_resource_group.this.name
  tenant_id           = data.azurerm_client_config.current.tenant_id
  object_id           = local.app_principal
  principal_name      = azurerm_function_app_flex_consumption.this.name
  principal_type      = "ServicePrincipal"
}

# The people's administrator: object id, name and type all from one variable, so they name one principal.
resource "azurerm_postgresql_flexible_server_active_directory_administrator" "people" {
  server_name         = azurerm_postgresql_flexible_server.catalog.name
  resource_group_name = azurerm_resource_group.this.name
  tenant_id           = data.azurerm_client_config.current.tenant_id
  object_id           = var.catalog_admin.object_id
  principal_name      = var.catalog_admin.principal_name
  principal_type      = var.catalog_admin.principal_type
}

# Secrets the app reads through Key Vault references: Dremio's password (everything else signs in with the
# app's identity).
resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_189:Public network access for the Flex Consumption app without VNet integration; access is RBAC-only.
  #checkov:skip=CKV2_AZURE_32:Private endpoints need VNet integration.
  #checkov:skip=CKV_AZURE_109:The firewall stays open for the same reason; RBAC decides who reads secrets.
  name                       = "${local.compact_name}kv"
  resource_group_name        = azurerm_resource_group.this.name
  location                   = azurerm_resource_group.this.location
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  rbac_authorization_enabled = true
  purge_protection_enabled   = true
  soft_delete_retention_days = 30
}

resource "azurerm_role_assignment" "deployer_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_secret" "dremio_password" {
  count           = var.dremio_password == null ? 0 : 1
  name            = "dremio-password"
  key_vault_id    = azurerm_key_vault.this.id
  content_type    = "text/plain"
  expiration_date = var.secret_expiration_date
  value           = var.dremio_password
  depends_on      = [azurerm_role_assignment.deployer_secrets]
}

resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_225:Flex Consumption (FC1) places instances itself; zone redundancy is not a setting of this plan type.
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero by design; always-ready instances are a cost choice per deployment.
  name                = "${var.name}-plan"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  os_type             = "Linux"
  sku_name            = "FC1"
}

locals {
  # Every setting the app runs with. azurerm's Flex Consumption resource adds a key-based AzureWebJobsStorage
  # ("...AccountKey=;...") even with identity-based storage (hashicorp/terraform-provider-azurerm#29693,
  # Azure/azure-functions-host#11796); that exact name wins over the AzureWebJobsStorage__* form, and the
  # account has no keys, so the host would have no timers, no keys and no Event Hubs checkpoints. The
  # settings are therefore written once more by azapi_update_resource.app_settings below, without it.
  app_settings = merge({
    AzureWebJobsStorage__accountName            = azurerm_storage_account.host.name
    AzureWebJobsStorage__credential             = "managedidentity"
    EventHubConnection__fullyQualifiedNamespace = "${azurerm_eventhub_namespace.this.name}.servicebus.windows.net"
    EVENTHUB_NAME                               = azurerm_eventhub.events.name
    EVENTHUB_CONSUMER_GROUP                     = azurerm_eventhub_consumer_group.ingest.name
    SENTIMENT_LAKE_WAREHOUSE                    = "abfss://${azurerm_storage_container.lake.name}@${azurerm_storage_account.lake.name}.dfs.core.windows.net/warehouse"
    SENTIMENT_LAKE_LEGACY_LOCATION              = "abfss://${azurerm_storage_container.legacy.name}@${azurerm_storage_account.lake.name}.dfs.core.windows.net"
    SENTIMENT_LAKE_AZURE_AUTH                   = "managed-identity"
    # verify-full: Azure Database for PostgreSQL's certificate chains to roots the binary carries (Mozilla's).
    SENTIMENT_LAKE_CATALOG_URI  = "postgres://${var.name}-func@${azurerm_postgresql_flexible_server.catalog.fqdn}:5432/${azurerm_postgresql_flexible_server_database.catalog.name}?sslmode=verify-full"
    SENTIMENT_LAKE_CATALOG_AUTH = "entra"
    SENTIMENT_LAKE_REDIS_URL    = local.redis_url
    SENTIMENT_LAKE_REDIS_AUTH   = "entra"
    # What `doctor` needs to check the memory budget of host.json (docs/deploy.md, Sizing).
    SENTIMENT_LAKE_EVENTHUB_PARTITIONS  = tostring(var.partition_count)
    SENTIMENT_LAKE_INSTANCE_MEMORY_MB   = tostring(var.instance_memory_mb)
    SENTIMENT_LAKE_MAX_EVENT_KB         = tostring(var.max_event_kb)
    SENTIMENT_LAKE_COMMIT_SCHEDULE      = var.commit_schedule
    SENTIMENT_LAKE_MAINTAIN_SCHEDULE    = var.maintain_schedule
    SENTIMENT_LAKE_REPLICATE_SCHEDULE   = var.replicate_schedule
    SENTIMENT_LAKE_DELETE_ORPHANS       = "true"
    SENTIMENT_LAKE_COMMIT_INTERVAL_SECS = "300"
    SENTIMENT_LAKE_LOG_JSON             = "true"
    SENTIMENT_LAKE_CORS_ORIGINS         = join(",", var.cors_origins)
    # glibc gives each busy thread its own heap arena and keeps freed pages in it; two arenas cut the
    # committer's peak resident memory over a 2 GB backlog from 566 to 372 MiB (docs/benchmarks.md).
    MALLOC_ARENA_MAX = "2"
    }, var.dremio == null ? {} : {
    # Dremio over Flight SQL (docs/dremio.md); the password comes from Key Vault, never from this file.
    SENTIMENT_LAKE_ENGINE           = var.dremio.engine
    SENTIMENT_LAKE_WRITER           = var.dremio.writer
    SENTIMENT_LAKE_MAINTENANCE      = var.dremio.maintenance
    SENTIMENT_LAKE_DREMIO_URL       = var.dremio.url
    SENTIMENT_LAKE_DREMIO_USER      = var.dremio.user
    SENTIMENT_LAKE_DREMIO_TABLE     = var.dremio.table
    SENTIMENT_LAKE_DREMIO_CATALOG   = var.dremio.catalog
    SENTIMENT_LAKE_DREMIO_WAREHOUSE = coalesce(var.dremio.warehouse, "")
    SENTIMENT_LAKE_DREMIO_PASSWORD  = var.dremio_password == null ? "" : "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.dremio_password[0].versionless_id})"
  }, local.replica_settings)
}

resource "azurerm_function_app_flex_consumption" "this" {
  #checkov:skip=CKV_AZURE_221:Public network access: Event Grid and dashboards call the app; API functions require function keys.
  name                        = "${var.name}-func"
  resource_group_name         = azurerm_resource_group.this.name
  location                    = azurerm_resource_group.this.location
  service_plan_id             = azurerm_service_plan.this.id
  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.host.primary_blob_endpoint}${azurerm_storage_container.deployments.name}"
  storage_authentication_type = "SystemAssignedIdentity"
  runtime_name                = "custom"
  runtime_version             = "1.0"
  instance_memory_in_mb       = var.instance_memory_mb
  maximum_instance_count      = var.max_instances
  https_only                  = true

  identity {
    type = "SystemAssigned"
  }

  site_config {
    minimum_tls_version                    = "1.2"
    application_insights_connection_string = azurerm_application_insights.this.connection_string
    cors {
      allowed_origins = var.cors_origins
    }
  }

  app_settings = local.app_settings

  lifecycle {
    # azapi_update_resource.app_settings owns the settings after creation (without the injected key).
    ignore_changes = [app_settings]
  }
}

# The app's settings exactly as local.app_settings says (plus the Application Insights setting azurerm keeps
# in site_config), replacing what azurerm wrote: the workaround documented on
# hashicorp/terraform-provider-azurerm#29693. Written again whenever the app is updated, since every update
# of the app by azurerm injects the key-based setting anew.
resource "azapi_update_resource" "app_settings" {
  type      = "Microsoft.Web/sites/config@2023-12-01"
  name      = "appsettings"
  parent_id = azurerm_function_app_flex_consumption.this.id
  body = {
    properties = merge(local.app_settings, {
      APPLICATIONINSIGHTS_CONNECTION_STRING = azurerm_application_insights.this.connection_string
    })
  }

  lifecycle {
    replace_triggered_by = [azurerm_function_app_flex_consumption.this]
  }
}

# Least privilege, per trigger (Microsoft's tables for identity-based connections):
# - the host (timers' locks, function keys, Event Hubs checkpoints, the deployment package) on its own
#   account: Storage Blob Data Owner; Storage Table Data Contributor for the host's diagnostic events. No
#   queue role: no function uses a queue or a blob trigger (MigrateBlob is an Event Grid trigger);
# - IngestEvents: Azure Event Hubs Data Receiver on the one hub;
# - MigrateBlob: Storage Blob Data Reader on the legacy container (it streams the file named by the event);
# - the lake: Storage Blob Data Contributor on the lake container only;
# - the cache and the catalog: an access policy assignment and an Entra administrator (above);
# - Key Vault Secrets User for Dremio's password.
resource "azurerm_role_assignment" "lake_writer" {
  scope                = local.lake_container_scope
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = local.app_principal
}

resource "azurerm_role_assignment" "legacy_reader" {
  scope                = local.legacy_container_scope
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = local.app_principal
}

resource "azurerm_role_assignment" "host_storage" {
  scope                = azurerm_storage_account.host.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = local.app_principal
}

resource "azurerm_role_assignment" "host_tables" {
  scope                = azurerm_storage_account.host.id
  role_definition_name = "Storage Table Data Contributor"
  principal_id         = local.app_principal
}

resource "azurerm_role_assignment" "events_reader" {
  scope                = azurerm_eventhub.events.id
  role_definition_name = "Azure Event Hubs Data Receiver"
  principal_id         = local.app_principal
}

resource "azurerm_role_assignment" "app_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.app_principal
}

# Blob uploads to the legacy container reach the MigrateBlob function (an eventGridTrigger: the event, never
# the file) through Event Grid. The topic's own identity writes undeliverable events to a container.
resource "azurerm_eventgrid_system_topic" "lake" {
  name                = "${var.name}-lake-events"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  source_resource_id  = azurerm_storage_account.lake.id
  topic_type          = "Microsoft.Storage.StorageAccounts"

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "upload_events_writer" {
  scope                = "${azurerm_storage_account.lake.id}/blobServices/default/containers/${azurerm_storage_container.upload_events.name}"
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_eventgrid_system_topic.lake.identity[0].principal_id
}

# The Event Grid extension's system key exists only once the deployed app has started with an Event Grid
# trigger, so it is read only with enable_legacy_migration (the second apply, docs/deploy.md).
data "azurerm_function_app_host_keys" "this" {
  count               = var.enable_legacy_migration ? 1 : 0
  name                = azurerm_function_app_flex_consumption.this.name
  resource_group_name = azurerm_resource_group.this.name
}

resource "azurerm_eventgrid_system_topic_event_subscription" "legacy_uploads" {
  # Event Grid validates the endpoint when the subscription is created, so it needs the deployed function.
  count                 = var.enable_legacy_migration ? 1 : 0
  name                  = "legacy-uploads"
  system_topic          = azurerm_eventgrid_system_topic.lake.name
  resource_group_name   = azurerm_resource_group.this.name
  included_event_types  = ["Microsoft.Storage.BlobCreated"]
  event_delivery_schema = "EventGridSchema"

  subject_filter {
    subject_begins_with = "/blobServices/default/containers/${azurerm_storage_container.legacy.name}/"
    subject_ends_with   = ".parquet"
  }

  # Only operations that leave a whole blob: on a hierarchical-namespace account BlobCreated also fires on
  # CreateFile, before the file's bytes are flushed. (The function ignores such events too.)
  advanced_filter {
    string_in {
      key    = "data.api"
      values = ["PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob", "SftpCommit"]
    }
  }

  webhook_endpoint {
    url = "https://${azurerm_function_app_flex_consumption.this.default_hostname}/runtime/webhooks/eventgrid?functionName=MigrateBlob&code=${data.azurerm_function_app_host_keys.this[0].event_grid_extension_config_key}"
  }

  # A delivery that fails (the function answers 500 while another delivery of the same file is migrating it,
  # or storage is unavailable) is retried for a day, then kept in the undelivered container.
  retry_policy {
    max_delivery_attempts = 30
    event_time_to_live    = 1440
  }

  dead_letter_identity {
    type = "SystemAssigned"
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.lake.id
    storage_blob_container_name = azurerm_storage_container.upload_events.name
  }

  depends_on = [azurerm_role_assignment.upload_events_writer]
}
