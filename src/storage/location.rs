//! Storage locations as users write them: a directory, a `file://` URL, or an Azure URL
//! (`abfss://<container>@<account>.dfs.core.windows.net/<path>`, or `abfs`, `wasbs`, `wasb`).
//!
//! Every part comes from configuration or from another engine's metadata, so each is checked: account and
//! container names against Azure's rules, paths through `object_store::path::Path::parse` (no `.` or `..`
//! segments, no control characters), so no location string can address anything outside what it names.

use std::path::{Path as FsPath, PathBuf};

use object_store::path::Path;

use super::error::StorageError;

/// Azure URL schemes Iceberg engines write: ADLS Gen2 (`abfs[s]`, Hadoop ABFS, PyIceberg, Dremio) and the
/// older blob form (`wasb[s]`). All address the same objects of a hierarchical-namespace account.
const AZURE_SCHEMES: [&str; 4] = ["abfss", "abfs", "wasbs", "wasb"];

/// Where a warehouse (or a legacy input file) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory (absolute, without `.` segments).
    Local(PathBuf),
    Azure(AzureLocation),
}

/// An object path inside one Azure storage container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureLocation {
    /// As written (`abfss`, ...), so the URLs recorded in table metadata keep the user's form.
    pub scheme: String,
    pub container: String,
    pub account: String,
    /// Host as written (`<account>.dfs.core.windows.net`, or a sovereign cloud's suffix).
    pub host: String,
    /// Container-relative path (may be empty: the container's root).
    pub path: Path,
}

impl Location {
    /// Accepts a path, a `file://` URL or an Azure URL.
    pub fn parse(location: &str) -> Result<Self, StorageError> {
        if let Some(azure) = AzureLocation::parse(location)? {
            return Ok(Location::Azure(azure));
        }
        let path = location.strip_prefix("file://").unwrap_or(location);
        if path.is_empty() || path.contains("://") {
            return Err(StorageError::Config(format!("{location:?} is neither a directory nor a file:// or abfss:// URL")));
        }
        let path = FsPath::new(path);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| StorageError::Config(format!("current directory: {e}")))?.join(path)
        };
        // Table metadata records this location verbatim: drop `.` segments so other engines see clean paths.
        Ok(Location::Local(absolute.components().collect()))
    }

    /// The URL Iceberg metadata records for files under this location (no trailing slash).
    pub fn url(&self) -> String {
        match self {
            Location::Local(path) => format!("file://{}", path.display()).trim_end_matches('/').to_string(),
            Location::Azure(azure) => azure.url(),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }
}

impl AzureLocation {
    /// `Ok(None)` when `location` is not an Azure URL at all.
    pub fn parse(location: &str) -> Result<Option<Self>, StorageError> {
        let Some((scheme, rest)) = location.split_once("://") else {
            return Ok(None);
        };
        if !AZURE_SCHEMES.contains(&scheme) {
            return Ok(None);
        }
        let bad = |why: &str| StorageError::Config(format!("{location:?}: {why} (expected {scheme}://<container>@<account>.<host>/<path>)"));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (container, host) = authority.split_once('@').ok_or_else(|| bad("no container"))?;
        let account = host.split('.').next().unwrap_or_default();
        if !valid_account(account) {
            return Err(bad("the account name must be 3-24 lowercase letters or digits"));
        }
        if !valid_container(container) {
            return Err(bad("the container name must be 3-63 lowercase letters, digits or single hyphens"));
        }
        if host.contains(['/', '?', '#']) || host.len() > 253 {
            return Err(bad("invalid host"));
        }
        let path = path.trim_matches('/');
        let path = Path::parse(path).map_err(|e| bad(&format!("invalid path: {e}")))?;
        Ok(Some(Self { scheme: scheme.to_string(), container: container.to_string(), account: account.to_string(), host: host.to_string(), path }))
    }

    pub fn url(&self) -> String {
        let path = self.path.as_ref();
        let sep = if path.is_empty() { "" } else { "/" };
        format!("{}://{}@{}{sep}{path}", self.scheme, self.container, self.host)
    }

    /// The location of a blob named by its URL as Azure reports it (a trigger's `Uri`, an Event Grid event's
    /// `url`): `https://<account>.blob.<suffix>/<container>/<path>`, or path-style
    /// `http://127.0.0.1:10000/<account>/<container>/<path>` (Azurite). The path is percent-decoded once, as
    /// the service encodes it.
    pub fn from_blob_url(blob_url: &str) -> Result<Self, StorageError> {
        let bad = |why: &str| StorageError::Config(format!("blob URL {blob_url:?}: {why}"));
        let url = url::Url::parse(blob_url).map_err(|e| bad(&e.to_string()))?;
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        let mut segments: Vec<String> = url
            .path_segments()
            .ok_or_else(|| bad("no path"))?
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let path_style = host.parse::<std::net::IpAddr>().is_ok() || host == "localhost";
        let (account, suffix) = if path_style {
            if segments.is_empty() {
                return Err(bad("no account"));
            }
            (segments.remove(0), "core.windows.net".to_string())
        } else {
            let (account, rest) = host.split_once('.').ok_or_else(|| bad("no account in the host"))?;
            let suffix = rest.strip_prefix("blob.").or_else(|| rest.strip_prefix("dfs.")).unwrap_or(rest);
            (account.to_string(), suffix.to_string())
        };
        if segments.len() < 2 {
            return Err(bad("expected /<container>/<path>"));
        }
        let container = segments.remove(0);
        let url = format!("abfss://{container}@{account}.dfs.{suffix}/{}", segments.join("/"));
        Self::parse(&url)?.ok_or_else(|| bad("not an Azure location"))
    }

    /// The root of the container this location is in.
    pub fn container_root(&self) -> Self {
        Self { path: Path::default(), ..self.clone() }
    }

    /// True when `other` is this location or under it, in the same container of the same account (whatever
    /// scheme), matching whole path segments.
    pub fn contains(&self, other: &AzureLocation) -> bool {
        self.same_container(other) && self.cloud() == other.cloud() && other.path.prefix_matches(&self.path)
    }

    /// The endpoint suffix the account lives under (`core.windows.net`, a sovereign cloud's), whatever
    /// service (`blob`, `dfs`) the host names.
    fn cloud(&self) -> &str {
        let rest = self.host.split_once('.').map_or("", |(_, rest)| rest);
        rest.strip_prefix("blob.").or_else(|| rest.strip_prefix("dfs.")).unwrap_or(rest)
    }

    /// True when `other` names an object of the same container of the same account (whatever scheme).
    pub fn same_container(&self, other: &AzureLocation) -> bool {
        self.account == other.account && self.container == other.container
    }
}

fn valid_account(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn valid_container(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_file_urls_and_azure_urls() {
        assert_eq!(Location::parse("/tmp/wh").unwrap().url(), "file:///tmp/wh");
        assert_eq!(Location::parse("file:///tmp/wh/").unwrap().url(), "file:///tmp/wh");
        assert_eq!(Location::parse("/tmp/./wh/.").unwrap().url(), "file:///tmp/wh");
        let relative = Location::parse("./wh").unwrap().url();
        assert!(relative.starts_with("file:///") && relative.ends_with("/wh") && !relative.contains("/./"), "{relative}");
        let Location::Azure(azure) = Location::parse("abfss://lake@acct.dfs.core.windows.net/warehouse/").unwrap() else { panic!("azure") };
        assert_eq!((azure.container.as_str(), azure.account.as_str(), azure.path.as_ref()), ("lake", "acct", "warehouse"));
        assert_eq!(azure.url(), "abfss://lake@acct.dfs.core.windows.net/warehouse");
        let root = AzureLocation::parse("wasbs://lake@acct.blob.core.windows.net").unwrap().unwrap();
        assert_eq!(root.url(), "wasbs://lake@acct.blob.core.windows.net");
        assert!(root.same_container(&azure));
        assert!(Location::parse("s3://bucket").is_err());
    }

    #[test]
    fn blob_urls_as_azure_reports_them() {
        let azure = AzureLocation::from_blob_url("https://acct.blob.core.windows.net/legacy/exports/AAPL%202023.parquet").unwrap();
        assert_eq!(azure.url(), "abfss://legacy@acct.dfs.core.windows.net/exports/AAPL 2023.parquet");
        let azurite = AzureLocation::from_blob_url("http://127.0.0.1:10000/devstoreaccount1/legacy/x.parquet").unwrap();
        assert_eq!(azurite.url(), "abfss://legacy@devstoreaccount1.dfs.core.windows.net/x.parquet");
        let china = AzureLocation::from_blob_url("https://acct.blob.core.chinacloudapi.cn/legacy/x.parquet").unwrap();
        assert_eq!(china.host, "acct.dfs.core.chinacloudapi.cn");
        // Events of a hierarchical-namespace account name the file by its Data Lake endpoint.
        let dfs = AzureLocation::from_blob_url("https://acct.dfs.core.windows.net/legacy/2019/x.parquet").unwrap();
        assert_eq!(dfs.url(), "abfss://legacy@acct.dfs.core.windows.net/2019/x.parquet");
        for bad in ["https://acct.blob.core.windows.net/legacy", "https://acct.blob.core.windows.net/legacy/a%2F..%2Fb", "not a url"] {
            assert!(AzureLocation::from_blob_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_location_contains_what_is_under_it_by_whole_segments() {
        let legacy = AzureLocation::parse("abfss://legacy@acct.dfs.core.windows.net/exports").unwrap().unwrap();
        let inside = AzureLocation::from_blob_url("https://acct.blob.core.windows.net/legacy/exports/2019/a.parquet").unwrap();
        assert!(legacy.contains(&inside));
        assert!(legacy.container_root().contains(&inside));
        let sibling = AzureLocation::from_blob_url("https://acct.blob.core.windows.net/legacy/exports-old/a.parquet").unwrap();
        assert!(!legacy.contains(&sibling), "a prefix of a segment is not inside");
        let other_account = AzureLocation::from_blob_url("https://evil.blob.core.windows.net/legacy/exports/a.parquet").unwrap();
        assert!(!legacy.contains(&other_account));
        let other_container = AzureLocation::from_blob_url("https://acct.blob.core.windows.net/lake/exports/a.parquet").unwrap();
        assert!(!legacy.contains(&other_container));
        let other_cloud = AzureLocation::from_blob_url("https://acct.blob.core.chinacloudapi.cn/legacy/exports/a.parquet").unwrap();
        assert!(!legacy.contains(&other_cloud), "the same account name in another cloud is another account");
        let wasbs = AzureLocation::parse("wasbs://legacy@acct.blob.core.windows.net/exports").unwrap().unwrap();
        assert!(wasbs.contains(&inside), "blob and dfs spellings of one account are one account");
    }

    #[test]
    fn hostile_azure_urls_are_refused() {
        for bad in [
            "abfss://nohost",
            "abfss://lake@ACCT.dfs.core.windows.net/x",
            "abfss://la@acct.dfs.core.windows.net/x",
            "abfss://Lake@acct.dfs.core.windows.net/x",
            "abfss://a--b@acct.dfs.core.windows.net/x",
            "abfss://lake@acct.dfs.core.windows.net/a/../b",
            "abfss://lake@acct.dfs.core.windows.net/a/./b",
            "abfss://lake@acct.dfs.core.windows.net/a//b",
            "abfss://lake@acct.dfs.core.windows.net/a\u{7}b",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
