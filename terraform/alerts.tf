# Alerts an on-call engineer gets (issue #36): one action group, log alerts on the app's data signals and metric
# alerts on the platform's own figures. The app evaluates its signals every commit interval and logs one
# "Data signal firing." line per firing signal (src/maintain/signals.rs); the same signals are gauges for the
# Prometheus rules in deploy/prometheus/alerts.yml. Thresholds: docs/operations.md.

resource "azurerm_monitor_action_group" "oncall" {
  name                = "${var.name}-oncall"
  resource_group_name = azurerm_resource_group.this.name
  short_name          = substr(replace("${var.name}oc", "-", ""), 0, 12)

  dynamic "email_receiver" {
    for_each = toset(var.alert_emails)
    content {
      name                    = "email-${index(var.alert_emails, email_receiver.value)}"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }
}

locals {
  # signal -> severity (0 critical .. 4 verbose) and how long it must keep firing.
  signal_alerts = {
    stalled_committer = { severity = 1, window = "PT10M", description = "Staged rows older than two commit intervals are not being committed (docs/operations.md#stalled-committer)." }
    dead_letter_rate  = { severity = 2, window = "PT15M", description = "More than 5 % of the last 15 minutes' events were dead-lettered (docs/operations.md#dead-letter-rate)." }
    quiet_source      = { severity = 3, window = "PT30M", description = "An Event Hubs partition sent nothing for three commit intervals (docs/operations.md#quiet-source)." }
    score_drift       = { severity = 3, window = "PT30M", description = "A producer's model version scored the last day differently from the week before (PSI above 0.2; docs/quality.md#score-drift)." }
    drift_unknown     = { severity = 3, window = "PT30M", description = "Score drift cannot be judged: the quality table is unreadable (docs/quality.md#score-drift)." }
    signals_unknown   = { severity = 1, window = "PT15M", description = "The data signals cannot be worked out (storage or the catalog down, or a hung call): the other alerts cannot be trusted (docs/operations.md#stalled-committer)." }
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "signal" {
  for_each             = local.signal_alerts
  name                 = "${var.name}-${replace(each.key, "_", "-")}"
  resource_group_name  = azurerm_resource_group.this.name
  location             = azurerm_resource_group.this.location
  description          = each.value.description
  severity             = each.value.severity
  scopes               = [azurerm_application_insights.this.id]
  evaluation_frequency = "PT5M"
  window_duration      = each.value.window

  auto_mitigation_enabled = true

  criteria {
    query                   = <<-KQL
      traces
      | where message has "Data signal firing" and message has "${each.key}"
    KQL
    time_aggregation_method = "Count"
    operator                = "GreaterThan"
    threshold               = 0
    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }

  action {
    action_groups = [azurerm_monitor_action_group.oncall.id]
  }
}

# The hub itself went quiet: no message in for 30 minutes (seen by Event Hubs, whatever the app does).
resource "azurerm_monitor_metric_alert" "hub_quiet" {
  name                = "${var.name}-hub-quiet"
  resource_group_name = azurerm_resource_group.this.name
  scopes              = [azurerm_eventhub_namespace.this.id]
  description         = "No message reached the sentiment event hub for 30 minutes."
  severity            = 3
  frequency           = "PT5M"
  window_size         = "PT30M"

  criteria {
    metric_namespace = "Microsoft.EventHub/namespaces"
    metric_name      = "IncomingMessages"
    aggregation      = "Total"
    operator         = "LessThan"
    threshold        = 1
    dimension {
      name     = "EntityName"
      operator = "Include"
      values   = [azurerm_eventhub.events.name]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.oncall.id
  }
}

# The app answers the host with errors: invocations failing (a transient failure answers non-2xx, so the host
# retries; many in a row mean the lake, the catalog or storage is down).
resource "azurerm_monitor_metric_alert" "app_errors" {
  name                = "${var.name}-app-5xx"
  resource_group_name = azurerm_resource_group.this.name
  scopes              = [azurerm_function_app_flex_consumption.this.id]
  description         = "The function app answered more than 20 requests with 5xx in 5 minutes."
  severity            = 2
  frequency           = "PT1M"
  window_size         = "PT5M"

  criteria {
    metric_namespace = "Microsoft.Web/sites"
    metric_name      = "Http5xx"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 20
  }

  action {
    action_group_id = azurerm_monitor_action_group.oncall.id
  }
}
