//! Keyset pagination by id, newest first: `?limit=20&before=<id>`. Ids are UUID v7, so they
//! sort by creation time, and a page is `WHERE id < before ORDER BY id DESC LIMIT limit + 1`.

use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::ApiError;

/// The largest page.
pub const MAX_PAGE_SIZE: i64 = 100;

/// The default page.
pub const DEFAULT_PAGE_SIZE: i64 = 20;

/// `?limit=&before=`.
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// Only items older than this one (the previous page's `next_before`).
    pub before: Option<Uuid>,
}

impl PageQuery {
    /// The page size, checked: a 400 problem when out of range.
    pub fn limit(&self) -> Result<i64, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if (1..=MAX_PAGE_SIZE).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::BadRequest(format!(
                "`limit` must be between 1 and {MAX_PAGE_SIZE}"
            )))
        }
    }

    /// How many rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> Result<i64, ApiError> {
        Ok(self.limit()? + 1)
    }
}

/// Cuts `rows` (fetched with [`PageQuery::fetch`]) to the page and returns the `next_before`
/// cursor when another page follows.
pub fn paginate<T>(
    mut rows: Vec<T>,
    limit: i64,
    id: impl Fn(&T) -> Uuid,
) -> (Vec<T>, Option<Uuid>) {
    let size = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > size;
    rows.truncate(size);
    let next = if more { rows.last().map(id) } else { None };
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_knows_whether_another_follows() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let (page, next) = paginate(ids.clone(), 2, |id| *id);
        assert_eq!(page, ids[..2]);
        assert_eq!(next, Some(ids[1]));
        let (page, next) = paginate(ids.clone(), 3, |id| *id);
        assert_eq!(page.len(), 3);
        assert_eq!(next, None);
    }

    #[test]
    fn the_limit_is_bounded() {
        assert_eq!(PageQuery::default().limit().unwrap(), 20);
        let too_big = PageQuery {
            limit: Some(101),
            before: None,
        };
        assert!(too_big.limit().is_err());
        let zero = PageQuery {
            limit: Some(0),
            before: None,
        };
        assert!(zero.limit().is_err());
    }
}
