# terraform apply -var-file=example.tfvars (copy and edit; every value here is an example)
name             = "sentlake"
location         = "westeurope"
partition_count  = 8
throughput_units = 2
max_instances    = 40
# The catalog server's administrator for people: a group's object id and name (az ad group show --group <name>).
catalog_admin = {
  object_id      = "00000000-0000-0000-0000-000000000000"
  principal_name = "data-platform-admins"
  principal_type = "Group"
}
cors_origins            = ["https://dashboards.example.com"]
enable_legacy_migration = false
