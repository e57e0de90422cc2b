variable "name" {
  description = "Prefix for every resource name (lowercase letters and digits)."
  type        = string
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

variable "catalog_uri" {
  description = "SQL catalog URI shared by all instances (PostgreSQL for more than one instance)."
  type        = string
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
