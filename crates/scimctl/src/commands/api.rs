//! What the commands on scim-server's management API (`/api/v1`) share:
//! where the API is. It lives next to the SCIM endpoints, so `--url
//! http://host/scim/v2` means `http://host/api/v1`; an explicit API URL
//! (`SCIMCTL_API_URL`, `engine --api-url`) wins.

/// Why no management API URL could be made from the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiUrlError {
    /// Neither an API URL nor a SCIM URL was given.
    Missing,
    /// The SCIM URL (trailing `/` dropped) does not end in `/scim/v2`.
    NotScim(String),
}

/// The management API's base URL, without a trailing `/`: `explicit` when
/// given (not blank), else `scim_url` with its `/scim/v2` suffix replaced
/// by `/api/v1`. Each command words the errors for its own options.
pub fn api_url(
    scim_url: Option<&str>,
    explicit: Option<&str>,
) -> std::result::Result<String, ApiUrlError> {
    if let Some(url) = explicit.filter(|s| !s.trim().is_empty()) {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let url = scim_url
        .filter(|s| !s.trim().is_empty())
        .ok_or(ApiUrlError::Missing)?
        .trim_end_matches('/');
    match url.strip_suffix("/scim/v2") {
        Some(root) => Ok(format!("{root}/api/v1")),
        None => Err(ApiUrlError::NotScim(url.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_is_next_to_the_scim_endpoints() {
        assert_eq!(
            api_url(Some("http://127.0.0.1:8080/scim/v2/"), None),
            Ok("http://127.0.0.1:8080/api/v1".into())
        );
        assert_eq!(
            api_url(Some("http://h/scim/v2"), Some("http://other/api/v1/")),
            Ok("http://other/api/v1".into())
        );
        assert_eq!(
            api_url(Some("http://h/scim/v2"), Some(" ")),
            Ok("http://h/api/v1".into())
        );
        assert_eq!(
            api_url(Some("http://h/v2/"), None),
            Err(ApiUrlError::NotScim("http://h/v2".into()))
        );
        assert_eq!(api_url(Some(""), None), Err(ApiUrlError::Missing));
        assert_eq!(api_url(None, None), Err(ApiUrlError::Missing));
    }
}
