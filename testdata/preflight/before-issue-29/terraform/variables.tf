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

variable "commit_schedule" {
  description = "NCRONTAB schedule of the CommitStaged timer (six fields, seconds first)."
  type        = string
  default     = "*/30 * * * * *"
}

variable "catalog_sku" {
  description = "Azure Database for PostgreSQL Flexible Server SKU for the shared SQL catalog (small: it holds one row per table)."
  type        = string
  default     = "B_Standard_B1ms"
}

variable "catalog_admin_principal_name" {
  description = "Display name (UPN or group name) of the Entra administrator of the catalog server: the deploying principal."
  type        = string
}

variable "catalog_admin_principal_type" {
  description = "User, Group or ServicePrincipal."
  type        = string
  default     = "User"
}

variable "redis_capacity" {
  description = "Azure Cache for Redis size in the Standard C family (0 = 250 MB, 1 = 1 GB, ...)."
  type        = number
  default     = 0
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
