//! Where a primary file goes in the replica: the same path relative to the warehouse, under the replica's
//! location. A table's metadata, manifest lists and manifests name their files by absolute URL, so every
//! one of those URLs is moved this way, and a URL outside the primary warehouse is refused rather than
//! guessed at.

use object_store::path::Path;

use super::error::ReplicaError;
use crate::storage::Location;

/// Moves paths from one warehouse to another.
#[derive(Debug, Clone)]
pub struct Relocate {
    from: Location,
    to: Location,
}

impl Relocate {
    pub fn new(from: Location, to: Location) -> Self {
        Self { from, to }
    }

    /// `url`'s path relative to the source warehouse (how its store names it), whatever spelling the URL
    /// uses (`file://` or a bare path; `abfss://` or `wasbs://`, the blob or the dfs host).
    pub fn relative(&self, url: &str) -> Result<Path, ReplicaError> {
        let outside = || ReplicaError::OutsideWarehouse { path: url.to_string(), warehouse: self.from.url() };
        let parsed = Location::parse(url).map_err(|_| outside())?;
        let parts: Vec<String> = match (&self.from, &parsed) {
            (Location::Local(root), Location::Local(path)) => {
                let rest = path.strip_prefix(root).map_err(|_| outside())?;
                rest.components()
                    .map(|c| match c {
                        std::path::Component::Normal(part) => part.to_str().map(str::to_string).ok_or_else(outside),
                        _ => Err(outside()),
                    })
                    .collect::<Result<_, _>>()?
            }
            (Location::Azure(root), Location::Azure(path)) if root.contains(path) => {
                path.path.parts().skip(root.path.parts().count()).map(|p| p.as_ref().to_string()).collect()
            }
            _ => return Err(outside()),
        };
        if parts.is_empty() || parts.iter().any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(outside());
        }
        Path::parse(parts.join("/")).map_err(|_| outside())
    }

    /// The URL, in the target warehouse, of the file at `relative` there.
    pub fn target_url(&self, relative: &Path) -> String {
        format!("{}/{relative}", self.to.url())
    }

    /// `url` moved to the target warehouse.
    pub fn url(&self, url: &str) -> Result<String, ReplicaError> {
        Ok(self.target_url(&self.relative(url)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(from: &str, to: &str) -> Relocate {
        Relocate::new(Location::parse(from).unwrap(), Location::parse(to).unwrap())
    }

    #[test]
    fn a_local_path_keeps_its_place_under_the_other_warehouse() {
        let move_ = local("/w/primary", "/w/replica");
        let data = "file:///w/primary/sentiment/sentiment_records/data/a.parquet";
        assert_eq!(move_.url(data).unwrap(), "file:///w/replica/sentiment/sentiment_records/data/a.parquet");
        assert_eq!(move_.url("/w/primary/x/m.avro").unwrap(), "file:///w/replica/x/m.avro");
    }

    #[test]
    fn paths_outside_the_warehouse_are_refused_not_guessed() {
        let move_ = local("/w/primary", "/w/replica");
        for outside in [
            "file:///w/primary-old/a.parquet",
            "/w/other/a.parquet",
            "file:///w/primary",
            "/w/primary/../etc/passwd",
            "abfss://c0ntainer@acct.dfs.core.windows.net/w/primary/a.parquet",
            "s3://bucket/a",
        ] {
            assert!(matches!(move_.url(outside), Err(ReplicaError::OutsideWarehouse { .. })), "{outside}");
        }
    }

    #[test]
    fn azure_urls_move_whatever_scheme_or_host_names_the_container() {
        let move_ = Relocate::new(
            Location::parse("abfss://lake@primary.dfs.core.windows.net/warehouse").unwrap(),
            Location::parse("abfss://lake@replica.dfs.core.windows.net/dr").unwrap(),
        );
        assert_eq!(
            move_.url("wasbs://lake@primary.blob.core.windows.net/warehouse/t/data/a.parquet").unwrap(),
            "abfss://lake@replica.dfs.core.windows.net/dr/t/data/a.parquet"
        );
        assert!(move_.url("abfss://lake@primary.dfs.core.windows.net/elsewhere/a.parquet").is_err());
        assert!(move_.url("abfss://other@primary.dfs.core.windows.net/warehouse/a.parquet").is_err());
    }
}
