//! Where reference photos go (`--photo-store`): the data directory, or an S3-compatible bucket
//! with the `AWS_*` settings to reach it. Only the parsed setting: the stores are
//! `store::photos`.

/// Where reference photos go: `--photo-store` (also `ROLLCALL_PHOTO_STORE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PhotoLocation {
    /// `<data-dir>/img_refs/`.
    #[default]
    DataDir,
    Bucket(BucketLocation),
}

impl PhotoLocation {
    /// `s3://BUCKET[/prefix]`; the endpoint, region and credentials come from `aws` (the
    /// `AWS_*` environment variables). `dir` (or nothing) is the data directory.
    pub fn parse(text: &str, aws: Vec<(String, String)>) -> Result<PhotoLocation, String> {
        let text = text.trim();
        if text.is_empty() || text == "dir" {
            return Ok(PhotoLocation::DataDir);
        }
        BucketLocation::parse(text, aws).map(PhotoLocation::Bucket)
    }
}

/// `s3://BUCKET[/prefix]` and the `AWS_*` settings to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct BucketLocation {
    bucket: String,
    prefix: Option<String>,
    /// `AWS_*` variables (name, value), as the environment gave them.
    aws: Vec<(String, String)>,
}

/// Never prints the values of the `AWS_*` settings: they hold the secret key.
impl std::fmt::Debug for BucketLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.aws.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("BucketLocation")
            .field("url", &self.url())
            .field("aws", &names)
            .finish()
    }
}

impl BucketLocation {
    fn parse(text: &str, aws: Vec<(String, String)>) -> Result<BucketLocation, String> {
        let usage = || format!("`{text}`: use s3://BUCKET or s3://BUCKET/PREFIX");
        let rest = text.strip_prefix("s3://").ok_or_else(usage)?;
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, p.trim_end_matches('/')),
            None => (rest, ""),
        };
        // S3's rules for bucket names: 3–63 of a-z 0-9 . -, starting and ending alphanumeric.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(format!(
                "{}: `{bucket}` is not a bucket name (3 to 63 lower-case letters, digits, dots \
                 and hyphens)",
                usage()
            ));
        }
        let prefix_ok = prefix.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars().all(|c| !c.is_control() && !c.is_whitespace())
        });
        if !prefix.is_empty() && !prefix_ok {
            return Err(format!("{}: `{prefix}` is not a key prefix", usage()));
        }
        Ok(BucketLocation {
            bucket: bucket.to_owned(),
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            aws,
        })
    }

    /// A bucket reached with these `AWS_*` settings instead of the environment's.
    pub fn with_aws(mut self, aws: Vec<(String, String)>) -> Self {
        self.aws = aws;
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// `s3://BUCKET[/prefix]`.
    pub fn url(&self) -> String {
        match &self.prefix {
            Some(p) => format!("s3://{}/{p}", self.bucket),
            None => format!("s3://{}", self.bucket),
        }
    }

    /// The `AWS_*` settings, as (name, value).
    pub fn aws_settings(&self) -> &[(String, String)] {
        &self.aws
    }

    /// One `AWS_*` setting, when given and not empty.
    pub fn aws_var(&self, name: &str) -> Option<&str> {
        self.aws
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_location_is_the_data_dir_or_a_bucket() {
        assert_eq!(
            PhotoLocation::parse("", vec![]).unwrap(),
            PhotoLocation::DataDir
        );
        let PhotoLocation::Bucket(b) = PhotoLocation::parse("s3://photos/site-a/", vec![]).unwrap()
        else {
            panic!("a bucket")
        };
        assert_eq!((b.bucket(), b.prefix()), ("photos", Some("site-a")));
        for bad in [
            "photos",
            "s3://",
            "s3://UPPER",
            "s3://a",
            "s3://photos/../x",
            "s3://photos//x",
            "gs://photos",
            "s3://pho tos",
        ] {
            assert!(PhotoLocation::parse(bad, vec![]).is_err(), "{bad}");
        }
    }
}
