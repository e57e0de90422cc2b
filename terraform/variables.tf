variable "name" {
  description = "Prefix for every resource name (lowercase letters and digits, at most 16 characters: storage account names are <name>lake and <name>host)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,15}$", var.name))
    error_message = "name: 3-16 lowercase letters or digits, starting with a letter."
  }
}

variable "location" {
  description = "Azure region."
  type        = string
  default     = "westeurope"
}

variable "partition_count" {
  description = "Event Hubs partitions: the upper bound on ingest instances."
  type        = number
  default     = 8
}

variable "throughput_units" {
  description = "Event Hubs throughput units (1 TU = 1 MB/s or 1,000 events/s in)."
  type        = number
  default     = 2
}

variable "max_instances" {
  description = "Flex Consumption maximum instance count."
  type        = number
  default     = 40
}

variable "maintain_schedule" {
  description = "NCRONTAB schedule of the MaintainTable timer (compaction, manifest rewrite, snapshot expiry, orphan cleanup)."
  type        = string
  default     = "0 */15 * * * *"
}

variable "replicate_schedule" {
  description = "NCRONTAB schedule of the ReplicateLake timer (one replication round to the replica, when SENTIMENT_LAKE_REPLICA is set; otherwise it does nothing)."
  type        = string
  default     = "*/30 * * * * *"
}

variable "commit_schedule" {
  description = "NCRONTAB schedule of the CommitStaged timer (six fields, seconds first)."
  type        = string
  default     = "0 */5 * * * *"
}

variable "catalog_sku" {
  description = "Azure Database for PostgreSQL Flexible Server SKU for the shared SQL catalog (small: it holds one row per table)."
  type        = string
  default     = "B_Standard_B1ms"
}

variable "catalog_admin" {
  description = "The Entra administrator of the catalog server for people (a group is best): its object id, its display name (a UPN or the group's name) and its type. All three must name the same principal."
  type = object({
    object_id      = string
    principal_name = string
    principal_type = optional(string, "Group")
  })
  validation {
    condition     = contains(["User", "Group", "ServicePrincipal"], var.catalog_admin.principal_type)
    error_message = "catalog_admin.principal_type: User, Group or ServicePrincipal."
  }
  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.catalog_admin.object_id))
    error_message = "catalog_admin.object_id: the principal's object id (a GUID), e.g. from `az ad group show --group <name> --query id -o tsv`."
  }
}

variable "cache_product" {
  description = "The answer cache: managed-redis (Azure Managed Redis, the default) or cache-for-redis (Azure Cache for Redis Standard, which Azure retires on 2028-09-30). Both with Entra sign-in only."
  type        = string
  default     = "managed-redis"
  validation {
    condition     = contains(["managed-redis", "cache-for-redis"], var.cache_product)
    error_message = "cache_product: managed-redis or cache-for-redis."
  }
}

variable "managed_redis_sku" {
  description = "Azure Managed Redis SKU (Balanced_B0 is the smallest; answers are small JSON documents with a TTL)."
  type        = string
  default     = "Balanced_B0"
}

variable "redis_capacity" {
  description = "With cache_product = cache-for-redis: the size in the Standard C family (0 = 250 MB, 1 = 1 GB, ...)."
  type        = number
  default     = 0
}

variable "instance_memory_mb" {
  description = "Flex Consumption instance memory (512, 2048 or 4096). host.json's Event Hubs limits are sized for 2048 with partition_count partitions of events up to max_event_kb (docs/deploy.md, Sizing; checked by scripts/preflight.py and doctor)."
  type        = number
  default     = 2048
  validation {
    condition     = contains([512, 2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb: 512, 2048 or 4096."
  }
}

variable "max_event_kb" {
  description = "The largest event producers send, in KB: part of the memory budget of host.json (docs/deploy.md, Sizing)."
  type        = number
  default     = 64
}

variable "cors_origins" {
  description = "Browser origins allowed to call the query API (dashboards)."
  type        = list(string)
  default     = []
}

variable "dremio_password" {
  description = "Password of the Dremio account the app uses (kept in Key Vault); null when Dremio is not used."
  type        = string
  default     = null
  sensitive   = true
}

variable "replica" {
  description = "Disaster recovery (docs/recovery.md): a replica storage account in `location` (the region paired with the lake's) kept up to date by the ReplicateLake timer, and its own PostgreSQL catalog (`catalog_uri`, a database in that region the app's identity signs in to, as SENTIMENT_LAKE_CATALOG_URI does). null: no replica."
  type = object({
    location    = string
    catalog_uri = string
  })
  default = null
}

variable "dremio" {
  description = "Dremio for queries, the records writer or maintenance (docs/dremio.md); null: the embedded engine does everything."
  type = object({
    url         = string
    user        = string
    table       = string
    engine      = optional(string, "dremio")
    writer      = optional(string, "direct")
    maintenance = optional(string, "embedded")
    catalog     = optional(string, "nessie")
    warehouse   = optional(string)
  })
  default = null
}

variable "secret_expiration_date" {
  description = "Expiry (RFC 3339) of the Key Vault secrets; rotate them before it."
  type        = string
  default     = "2027-12-31T00:00:00Z"
}

variable "enable_legacy_migration" {
  description = "Subscribe the MigrateBlob function to uploads in the legacy container (needs the app deployed first)."
  type        = bool
  default     = false
}

variable "alert_emails" {
  description = "Who the on-call alerts (terraform/alerts.tf) mail; empty: the action group has no receiver yet."
  type        = list(string)
  default     = []
}
