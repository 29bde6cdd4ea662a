//! Downloads from an execution's page: its archive and each collected file.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;

use super::page::{Page, PageResult};
use crate::Web;
use crate::api_executions::visible;
use crate::error::ApiError;

type Shared = State<Arc<Web>>;

/// The execution's archive (the API's download, for a browser's session).
pub async fn archive(State(s): Shared, p: Page, Path(id): Path<String>) -> PageResult {
    Ok(crate::api_executions::archive(State(s), p.caller(), Path(id)).await?)
}

/// One collected file, by its place in the execution's list; only files under the data
/// folder are served.
pub async fn file(
    State(s): Shared,
    p: Page,
    Path((id, index)): Path<(String, usize)>,
) -> PageResult {
    let e = visible(&s, &p.caller(), &id).await?;
    let files = s.store.files(&e.id).await?;
    let f = files
        .get(index)
        .ok_or_else(|| ApiError::NotFound(format!("execution {} has no file {index}", e.id)))?;
    // The file is kept under <data>/executions/<id>/<server folder>/: nothing else is
    // served, whatever the recorded path says.
    let gone = || ApiError::NotFound(format!("{} is no longer kept", f.remote_path));
    let folder = s
        .env()
        .cfg
        .data_dir
        .join("executions")
        .join(&e.id)
        .join(ordo_inventory::folder_name_of(&f.node))
        .canonicalize()
        .map_err(|_| gone())?;
    let path = folder
        .join(&f.local_path)
        .canonicalize()
        .map_err(|_| gone())?;
    if !path.starts_with(&folder) || !path.is_file() {
        return Err(gone().into());
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::NotFound(format!("{} is no longer kept", f.remote_path)))?;
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().replace(['"', '\\', '\r', '\n'], "_"))
        .unwrap_or_else(|| "file".into());
    let mut r = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
