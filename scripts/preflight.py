#!/usr/bin/env python3
"""Pre-flight of the Azure deployment, offline: reads terraform/*.tf, host.json and every
functions/*/function.json and checks them against each other and against what makes the app start and every
trigger fire in Azure (docs/deploy.md, "First apply"). Nothing here reaches Azure: this is what can be
decided from the files.

Usage:
  preflight.py [--root DIR] [--var-file FILE]... [--binary PATH]
                                              check DIR (default: the repository) with the variables of the
                                              tfvars files given (your my.tfvars), defaults otherwise; exit 1
                                              on any failure
  preflight.py --self-test [--binary PATH]    every rule fails on a copy broken the way it guards against,
                                              and the configuration before issue #29 fails as reported

--binary is the sentiment-lake executable whose `sizing` command works out host.json's memory budget
(default: target/debug/sentiment-lake, built with cargo when missing).
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import hcl2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Storage operations after which a blob is whole (Microsoft's BlobCreated `api` values).
COMPLETING_APIS = {"PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob", "SftpCommit"}
APP = "azurerm_function_app_flex_consumption"


def first(value):
    """hcl2 wraps attribute values in one-element lists."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


class Config:
    def __init__(self, root, var_files=()):
        self.root = root
        self.resources, self.data, self.locals, self.variables = {}, {}, {}, {}
        self.values = {}
        for path in var_files:
            with open(path) as f:
                self.values.update({k: first(v) for k, v in hcl2.load(f).items()})
        for path in sorted(glob.glob(os.path.join(root, "terraform", "*.tf"))):
            with open(path) as f:
                parsed = hcl2.load(f)
            for block in parsed.get("resource", []):
                for kind, named in block.items():
                    for name, attrs in named.items():
                        self.resources[(kind, name)] = attrs
            for block in parsed.get("data", []):
                for kind, named in block.items():
                    for name, attrs in named.items():
                        self.data[(kind, name)] = attrs
            for block in parsed.get("locals", []):
                self.locals.update({k: first(v) for k, v in block.items() if not k.startswith("__")})
            for block in parsed.get("variable", []):
                self.variables.update(block)
        with open(os.path.join(root, "host.json")) as f:
            self.host = json.load(f)
        self.functions = {}
        for path in sorted(glob.glob(os.path.join(root, "functions", "*", "function.json"))):
            with open(path) as f:
                self.functions[os.path.basename(os.path.dirname(path))] = json.load(f)

    def of_kind(self, kind):
        return {name: attrs for (k, name), attrs in self.resources.items() if k == kind}

    def app(self):
        apps = self.of_kind(APP)
        return next(iter(apps.items())) if len(apps) == 1 else (None, None)

    def resolve(self, value):
        """`${local.x}` is replaced by the local's expression."""
        value = first(value)
        while isinstance(value, str):
            match = re.fullmatch(r"\$\{local\.(\w+)\}", value)
            if not match or match.group(1) not in self.locals:
                break
            value = first(self.locals[match.group(1)])
        return value

    def app_settings_expression(self):
        _, app = self.app()
        return str(self.resolve(app.get("app_settings", ""))) if app else ""

    def app_settings(self):
        """Setting name -> its expression, read from the map literal(s) the app's settings are built from."""
        text = self.app_settings_expression()
        return {m.group(1): m.group(2) for m in re.finditer(r"'([A-Za-z_][A-Za-z0-9_]*)': '((?:[^'\\]|\\.)*)'", text)}

    def default(self, variable):
        """The variable's value: from a tfvars file given, else its default."""
        if variable in self.values:
            return self.values[variable]
        attrs = self.variables.get(variable)
        return first(attrs["default"]) if attrs and "default" in attrs else None

    def number(self, value):
        """A literal, or a variable's default."""
        value = first(value)
        if isinstance(value, (int, float)):
            return int(value)
        match = re.fullmatch(r"\$\{var\.(\w+)\}", str(value))
        return int(self.default(match.group(1))) if match and self.default(match.group(1)) is not None else None

    def triggers(self):
        for name, function in self.functions.items():
            for binding in function.get("bindings", []):
                if binding.get("type", "").endswith("Trigger"):
                    yield name, binding

    def roles(self):
        """(role name, scope expression, principal expression) of every role assignment."""
        return [(first(a.get("role_definition_name")), str(first(a.get("scope"))), str(first(a.get("principal_id"))))
                for a in self.of_kind("azurerm_role_assignment").values()]


def app_roles(config, role):
    principal = "${local.app_principal}"
    app_name, _ = config.app()
    direct = f"${{{APP}.{app_name}.identity[0].principal_id}}"
    return [scope for name, scope, who in config.roles() if name == role and who in (principal, direct)]


# Every rule returns a list of problems; an empty list passes.

def host_storage_is_identity_based(config):
    problems = []
    app_name, app = config.app()
    if app is None:
        return ["no single azurerm_function_app_flex_consumption"]
    settings = config.app_settings()
    if "AzureWebJobsStorage" in settings:
        problems.append("AzureWebJobsStorage is set by name: that connection string wins over the identity-based form")
    if not any(k.startswith("AzureWebJobsStorage__") for k in settings):
        problems.append("no AzureWebJobsStorage__accountName (identity-based host storage)")
    if "Identity" not in str(first(app.get("storage_authentication_type"))):
        problems.append("the app's storage_authentication_type is not an identity")
    # azurerm writes a key-based AzureWebJobsStorage of its own (provider issue 29693): it must be removed.
    updates = [a for a in config.of_kind("azapi_update_resource").values()
               if str(first(a.get("type", ""))).startswith("Microsoft.Web/sites/config@") and first(a.get("name")) == "appsettings"
               and f"{APP}.{app_name}.id" in str(first(a.get("parent_id")))]
    if not updates:
        problems.append("azurerm injects AzureWebJobsStorage=...AccountKey=; no azapi_update_resource rewrites the app's settings without it")
    for update in updates:
        body = first(update.get("body", {}))
        properties = str(body.get("properties") if isinstance(body, dict) else None)
        expression = str(first(app.get("app_settings", "")))
        reference = expression[2:-1] if expression.startswith("${") and expression.endswith("}") else expression
        if reference not in properties and str(config.resolve(properties)) != config.app_settings_expression():
            problems.append("the azapi_update_resource writes other settings than the app's")
        # azurerm keeps this one in site_config; the rewrite must carry it or Application Insights goes dark.
        insights = first(app.get("site_config", [{}])).get("application_insights_connection_string")
        if insights and "APPLICATIONINSIGHTS_CONNECTION_STRING" not in properties:
            problems.append("the azapi_update_resource drops APPLICATIONINSIGHTS_CONNECTION_STRING, which azurerm keeps in site_config")
        if "APPLICATIONINSIGHTS_CONNECTION_STRING" in config.app_settings():
            problems.append("APPLICATIONINSIGHTS_CONNECTION_STRING in app_settings: azurerm reads it back into site_config, a diff on every plan that re-injects the key")
        triggered = json.dumps(update.get("lifecycle", []))
        if f"{APP}.{app_name}" not in triggered:
            problems.append("the azapi_update_resource is not replace_triggered_by the app (every app update re-injects the key)")
    if "app_settings" not in json.dumps(app.get("lifecycle", [])):
        problems.append("the app does not ignore_changes app_settings, so azurerm and azapi would rewrite each other's settings")
    return problems


def connections_are_identity_based(config):
    problems = []
    settings = config.app_settings()
    for name, trigger in config.triggers():
        connection = trigger.get("connection")
        if not connection:
            continue
        if connection in settings:
            problems.append(f"{name}: {connection} is set by name (a key-based twin of the identity form)")
        forms = [k for k in settings if k.startswith(connection + "__")]
        if not forms:
            problems.append(f"{name}: no identity-based {connection}__* setting")
        if trigger["type"] == "blobTrigger" and f"{connection}__queueServiceUri" not in settings:
            problems.append(f"{name}: a blob trigger's connection needs {connection}__queueServiceUri (poison messages)")
    for account, attrs in config.of_kind("azurerm_storage_account").items():
        if first(attrs.get("shared_access_key_enabled")) is not False:
            problems.append(f"storage account {account} allows shared keys")
    for ns, attrs in config.of_kind("azurerm_eventhub_namespace").items():
        if first(attrs.get("local_authentication_enabled")) is not False:
            problems.append(f"Event Hubs namespace {ns} allows SAS keys")
    return problems


def settings_referenced_exist(config):
    settings = config.app_settings()
    problems = []
    for name, function in config.functions.items():
        for setting in re.findall(r"%([A-Za-z0-9_]+)%", json.dumps(function)):
            if setting not in settings:
                problems.append(f"{name}: %{setting}% is not an app setting")
    return problems


def roles_per_trigger(config):
    problems = []
    host_owner = [s for s in app_roles(config, "Storage Blob Data Owner") if "azurerm_storage_account.host" in s]
    if not host_owner:
        problems.append("the app has no Storage Blob Data Owner on its host storage (timers, keys, checkpoints)")
    for name, trigger in config.triggers():
        kind = trigger["type"]
        if kind == "eventHubTrigger":
            if not (app_roles(config, "Azure Event Hubs Data Receiver") or app_roles(config, "Azure Event Hubs Data Owner")):
                problems.append(f"{name}: no Azure Event Hubs Data Receiver for the app")
        elif kind == "blobTrigger":
            queue = [s for s in app_roles(config, "Storage Queue Data Contributor")]
            if not any("azurerm_storage_account.host" in s for s in queue):
                problems.append(f"{name}: a blob trigger queues deliveries on host storage: Storage Queue Data Contributor missing there")
            if len(queue) < 2:
                problems.append(f"{name}: a blob trigger puts poison messages on the source account: Storage Queue Data Contributor missing there")
        elif kind == "eventGridTrigger":
            readers = app_roles(config, "Storage Blob Data Reader") + app_roles(config, "Storage Blob Data Contributor")
            if not any("legacy" in s for s in readers):
                problems.append(f"{name}: the app cannot read the legacy container the events name")
            hooks = [a for a in config.of_kind("azurerm_eventgrid_system_topic_event_subscription").values()
                     if f"/runtime/webhooks/eventgrid?functionName={name}&" in json.dumps(a.get("webhook_endpoint", []))]
            if not hooks:
                problems.append(f"{name}: no Event Grid subscription delivers to /runtime/webhooks/eventgrid?functionName={name}")
            for hook in hooks:
                if "event_grid_extension_config_key" not in json.dumps(hook.get("webhook_endpoint", [])):
                    problems.append(f"{name}: the subscription does not use the eventgrid_extension system key")
    for subscription in config.of_kind("azurerm_eventgrid_system_topic_event_subscription").values():
        endpoint = json.dumps(subscription.get("webhook_endpoint", []))
        if "/runtime/webhooks/blobs" in endpoint:
            function = re.search(r"functionName=Host\.Functions\.(\w+)", endpoint)
            target = config.functions.get(function.group(1) if function else "", {})
            if not any(b.get("type") == "blobTrigger" for b in target.get("bindings", [])):
                problems.append("an Event Grid subscription delivers to the blobs extension but that function has no blob trigger")
    return problems


def first_apply_needs_no_running_app(config):
    problems = []
    for name, attrs in config.data.items():
        if name[0] == "azurerm_function_app_host_keys" and "enable_legacy_migration" not in str(first(attrs.get("count", ""))):
            problems.append(f"data.{name[0]}.{name[1]} is read on the first apply, before any code is deployed (no count on the migration flag)")
    for name, attrs in config.of_kind("azurerm_eventgrid_system_topic_event_subscription").items():
        if "/runtime/webhooks/" in json.dumps(attrs.get("webhook_endpoint", [])) and "enable_legacy_migration" not in str(first(attrs.get("count", ""))):
            problems.append(f"Event Grid subscription {name} is validated against a function the first apply has not deployed")
    return problems


def partial_uploads_do_not_trigger(config):
    problems = []
    for name, attrs in config.of_kind("azurerm_eventgrid_system_topic_event_subscription").items():
        if "Microsoft.Storage.BlobCreated" not in json.dumps(attrs.get("included_event_types", [])):
            continue
        filters = [f for block in attrs.get("advanced_filter", []) for f in block.get("string_in", [])]
        api = [f for f in filters if first(f.get("key")) == "data.api"]
        if not api:
            problems.append(f"{name}: no data.api filter: a Data Lake upload triggers on CreateFile, before its bytes are flushed")
            continue
        values = set(first(api[0].get("values")) or [])
        if not values <= COMPLETING_APIS:
            problems.append(f"{name}: data.api lets {sorted(values - COMPLETING_APIS)} through, which leave no complete blob")
        if "FlushWithClose" not in values:
            problems.append(f"{name}: data.api leaves out FlushWithClose, how a Data Lake upload completes")
    return problems


def catalog_is_tls_and_keyless(config):
    problems = []
    uri = config.app_settings().get("SENTIMENT_LAKE_CATALOG_URI", "")
    if "sslmode=verify-full" not in uri:
        problems.append("the catalog URI does not ask for sslmode=verify-full (require encrypts without checking the server)")
    for name, attrs in config.of_kind("azurerm_postgresql_flexible_server").items():
        auth = first(attrs.get("authentication", [{}]))
        if first(auth.get("password_auth_enabled")) is not False:
            problems.append(f"PostgreSQL {name} accepts passwords")
    tls = [a for a in config.of_kind("azurerm_postgresql_flexible_server_configuration").values()
           if first(a.get("name")) == "require_secure_transport" and str(first(a.get("value"))).lower() == "on"]
    if not tls:
        problems.append("require_secure_transport is not on")
    return problems


def entra_admins_name_one_principal(config):
    problems = []
    for name, attrs in config.of_kind("azurerm_postgresql_flexible_server_active_directory_administrator").items():
        object_id, principal = str(first(attrs.get("object_id"))), str(first(attrs.get("principal_name")))
        sources = []
        for expression in (object_id, principal):
            match = re.search(r"\$\{(var\.\w+|data\.\w+\.\w+|\w+\.\w+)", expression)
            sources.append(match.group(1) if match else expression)
        same_variable = sources[0] == sources[1] and sources[0].startswith("var.")
        app_name, _ = config.app()
        the_app = sources[0] == "local.app_principal" and sources[1] == f"{APP}.{app_name}"
        if not (same_variable or the_app):
            problems.append(f"Entra administrator {name}: object_id from {sources[0]} but principal_name from {sources[1]}")
    return problems


def cache_is_entra_only(config):
    problems = []
    settings = config.app_settings()
    managed, classic = config.of_kind("azurerm_managed_redis"), config.of_kind("azurerm_redis_cache")
    if not managed:
        problems.append("no Azure Managed Redis: Azure Cache for Redis retires on 2028-09-30")
    elif config.default("cache_product") not in (None, "managed-redis"):
        problems.append("Azure Managed Redis is not the default cache_product")
    for name, attrs in managed.items():
        database = first(attrs.get("default_database", [{}]))
        if first(database.get("access_keys_authentication_enabled")) is not False:
            problems.append(f"Managed Redis {name} keeps access keys")
        if first(database.get("clustering_policy")) not in ("EnterpriseCluster", "NoCluster"):
            problems.append(f"Managed Redis {name}: the OSS cluster policy needs a cluster client; EnterpriseCluster gives one endpoint")
    for name, attrs in classic.items():
        config_block = first(attrs.get("redis_configuration", [{}]))
        if first(attrs.get("access_keys_authentication_enabled")) is not False:
            problems.append(f"Azure Cache for Redis {name} keeps access keys")
        if first(config_block.get("active_directory_authentication_enabled")) is not True:
            problems.append(f"Azure Cache for Redis {name} has no Entra sign-in")
    assignments = list(config.of_kind("azurerm_managed_redis_access_policy_assignment").values()) + list(
        config.of_kind("azurerm_redis_cache_access_policy_assignment").values())
    if (managed or classic) and not any("app_principal" in str(first(a.get("object_id"))) for a in assignments):
        problems.append("no Redis access policy assignment for the app's identity")
    if settings.get("SENTIMENT_LAKE_REDIS_AUTH") != "entra":
        problems.append("SENTIMENT_LAKE_REDIS_AUTH is not entra")
    for name, attrs in config.of_kind("azurerm_key_vault_secret").items():
        if "access_key" in str(first(attrs.get("value"))):
            problems.append(f"Key Vault secret {name} holds a Redis access key")
    return problems


def memory_fits(config, binary):
    problems = []
    settings = config.app_settings()
    for setting in ("SENTIMENT_LAKE_EVENTHUB_PARTITIONS", "SENTIMENT_LAKE_INSTANCE_MEMORY_MB"):
        if setting not in settings:
            problems.append(f"{setting} is not an app setting, so doctor cannot check the memory budget in the app")
    _, app = config.app()
    memory = config.number(app.get("instance_memory_in_mb")) if app else None
    partitions = config.number(first(config.of_kind("azurerm_eventhub").get("events", {}).get("partition_count")) or 0)
    event_kb = config.default("max_event_kb") or 64
    if not memory or not partitions:
        return problems + ["the instance memory or the partition count cannot be read from the Terraform"]
    command = [binary, "sizing", "--host-json", os.path.join(config.root, "host.json"), "--partitions", str(partitions),
               "--instance-memory-mb", str(memory), "--max-event-kb", str(event_kb)]
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, RUST_LOG="error", RUST_BACKTRACE="0", RUST_LIB_BACKTRACE="0"))
    if result.returncode != 0:
        problems.append(f"host.json's Event Hubs limits can exceed a {memory} MiB instance holding {partitions} partitions of {event_kb} KB events:\n"
                        + result.stdout.rstrip() + ("\n" + result.stderr.strip() if result.stderr.strip() else ""))
    return problems


RULES = [
    ("host-storage", "the host reaches its storage with its identity, and no key-based AzureWebJobsStorage survives", host_storage_is_identity_based),
    ("connections", "every trigger connection is identity-based, with no key-based twin; storage and Event Hubs refuse keys", connections_are_identity_based),
    ("settings", "every %setting% a function.json names is an app setting", settings_referenced_exist),
    ("roles", "each trigger's identity has the roles Microsoft's tables ask for", roles_per_trigger),
    ("first-apply", "the first apply needs no deployed code (host keys and webhook subscriptions behind the migration flag)", first_apply_needs_no_running_app),
    ("partial-uploads", "only whole uploads trigger a migration (data.api filter)", partial_uploads_do_not_trigger),
    ("catalog", "the catalog is TLS (verify-full) and password-less", catalog_is_tls_and_keyless),
    ("entra-admins", "each PostgreSQL Entra administrator's object id and name come from one source", entra_admins_name_one_principal),
    ("cache", "the cache is Azure Managed Redis by default, Entra sign-in only, with a cluster policy the client handles", cache_is_entra_only),
    ("memory", "prefetch x partitions x event size, batches and a commit pass fit the instance", None),
]


def check(root, binary, quiet=False, var_files=()):
    config = Config(root, var_files)
    failed = set()
    for rule, description, function in RULES:
        problems = memory_fits(config, binary) if rule == "memory" else function(config)
        if problems:
            failed.add(rule)
        if not quiet:
            print(f"{'FAIL' if problems else 'ok':4}  {rule}: {description}")
            for problem in problems:
                print("        " + problem.replace("\n", "\n        "))
    return failed


# Each breaks one thing the way it was (or could be) broken; the rule named must catch it.
MUTATIONS = [
    ("host-storage", "terraform/main.tf", "    AzureWebJobsStorage__accountName ", "    AzureWebJobsStorage = \"DefaultEndpointsProtocol=https;AccountKey=;\"\n    AzureWebJobsStorage__accountName "),
    ("host-storage", "terraform/main.tf", '  name      = "appsettings"', '  name      = "web"'),
    ("host-storage", "terraform/main.tf", "    replace_triggered_by = [azurerm_function_app_flex_consumption.this]", "    replace_triggered_by = []"),
    ("host-storage", "terraform/main.tf", "    AzureWebJobsStorage__accountName ", "    APPLICATIONINSIGHTS_CONNECTION_STRING = azurerm_application_insights.this.connection_string\n    AzureWebJobsStorage__accountName "),
    ("connections", "terraform/main.tf", "    EVENTHUB_NAME ", "    EventHubConnection = \"Endpoint=sb://x/;SharedAccessKey=\"\n    EVENTHUB_NAME "),
    ("settings", "functions/IngestEvents/function.json", '"%EVENTHUB_NAME%"', '"%EVENTHUB_NAME_TYPO%"'),
    ("roles", "terraform/main.tf", 'role_definition_name = "Azure Event Hubs Data Receiver"', 'role_definition_name = "Reader"'),
    ("roles", "functions/MigrateBlob/function.json", '"type": "eventGridTrigger"', '"type": "blobTrigger", "connection": "LegacyStorage", "path": "legacy/{name}", "source": "EventGrid"'),
    ("first-apply", "terraform/main.tf", '  count               = var.enable_legacy_migration ? 1 : 0\n  name                = azurerm_function_app_flex_consumption.this.name', '  name                = azurerm_function_app_flex_consumption.this.name'),
    ("partial-uploads", "terraform/main.tf", '"PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob", "SftpCommit"', '"PutBlob", "CreateFile", "FlushWithClose"'),
    ("catalog", "terraform/main.tf", "?sslmode=verify-full", "?sslmode=require"),
    ("entra-admins", "terraform/main.tf", "  object_id           = var.catalog_admin.object_id", "  object_id           = data.azurerm_client_config.current.object_id"),
    ("cache", "terraform/main.tf", "    access_keys_authentication_enabled = false\n    client_protocol", "    access_keys_authentication_enabled = true\n    client_protocol"),
    ("cache", "terraform/main.tf", 'clustering_policy                  = "EnterpriseCluster"', 'clustering_policy                  = "OSSCluster"'),
    ("memory", "host.json", '"prefetchCount": 400', '"prefetchCount": 3000'),
]

# What the configuration before issue #29 (testdata/preflight/before-issue-29) must fail.
BEFORE = {"host-storage", "roles", "first-apply", "partial-uploads", "catalog", "entra-admins", "cache", "memory"}


def self_test(binary):
    failures = []
    scratch = tempfile.mkdtemp()
    try:
        clean = os.path.join(scratch, "clean")
        os.makedirs(clean)
        for part in ("terraform", "functions"):
            shutil.copytree(os.path.join(REPO, part), os.path.join(clean, part))
        shutil.copy(os.path.join(REPO, "host.json"), clean)
        if check(clean, binary, quiet=True):
            failures.append("the repository's own configuration does not pass")
        for number, (rule, path, old, new) in enumerate(MUTATIONS):
            copy = os.path.join(scratch, f"mutant-{number}-{rule}")
            shutil.copytree(clean, copy)
            target = os.path.join(copy, path)
            with open(target) as f:
                text = f.read()
            if old not in text:
                failures.append(f"mutation for {rule}: {old!r} is not in {path} any more; update the self-test")
                continue
            with open(target, "w") as f:
                f.write(text.replace(old, new, 1))
            caught = check(copy, binary, quiet=True)
            verdict = "caught" if rule in caught else "MISSED"
            print(f"{verdict:6}  {rule}: {path}: {old.strip()[:60]!r} -> {new.strip()[:60]!r}")
            if rule not in caught:
                failures.append(f"rule {rule} did not catch its mutation of {path}")
        before = os.path.join(REPO, "testdata", "preflight", "before-issue-29")
        caught = check(before, binary, quiet=True)
        print(f"before issue #29: fails {sorted(caught)}")
        if not BEFORE <= caught:
            failures.append(f"the configuration before issue #29 passes {sorted(BEFORE - caught)}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for failure in failures:
        print("FAIL  " + failure)
    return not failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=REPO)
    parser.add_argument("--var-file", action="append", default=[], help="a tfvars file whose values override the variables' defaults")
    parser.add_argument("--binary", default=os.path.join(REPO, "target", "debug", "sentiment-lake"))
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        subprocess.run(["cargo", "build", "--locked", "--quiet", "--bin", "sentiment-lake"], cwd=REPO, check=True)
    if args.self_test:
        sys.exit(0 if self_test(args.binary) else 1)
    failed = check(args.root, args.binary, var_files=args.var_file)
    print(f"pre-flight: {'FAILED: ' + ', '.join(sorted(failed)) if failed else 'every rule passes'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
