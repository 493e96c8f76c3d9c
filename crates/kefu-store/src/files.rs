//! Uploaded files, stored in chunks.

use crate::entity::{file, file_chunk};
use crate::{Result, Store};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Statement,
};

/// Rows hold at most this much of a file.
const CHUNK: usize = kefu_protocol::FILE_CHUNK_BYTES;

impl Store {
    /// Stores part `seq` of an upload still being received: a chunk row
    /// under `key` with no file row yet ([`Store::commit_file`] adds it).
    /// Refused once the file is committed, so nobody appends to a file.
    pub async fn put_file_part(&self, key: &str, seq: i32, data: &[u8]) -> Result<()> {
        if data.len() > CHUNK {
            return Err(crate::StoreError::Conflict(format!(
                "a part holds at most {CHUNK} bytes"
            )));
        }
        if self.file_meta(key).await?.is_some() {
            return Err(crate::StoreError::Conflict(
                "this upload is complete".into(),
            ));
        }
        file_chunk::Entity::insert(file_chunk::ActiveModel {
            file_key: Set(key.to_owned()),
            seq: Set(seq),
            data: Set(data.to_vec()),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Completes an upload whose `parts` parts are stored: from now on it
    /// is a file. Refused if a part is missing.
    pub async fn commit_file(&self, meta: file::Model, parts: u64) -> Result<()> {
        use sea_orm::PaginatorTrait;
        let stored = file_chunk::Entity::find()
            .filter(file_chunk::Column::FileKey.eq(meta.key.clone()))
            .count(&self.db)
            .await?;
        if stored != parts {
            return Err(crate::StoreError::Conflict(format!(
                "{stored} of the upload's {parts} parts arrived"
            )));
        }
        file::Entity::insert(file::ActiveModel::from(meta))
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes the parts of an upload that will not complete (never those
    /// of a committed file).
    pub async fn delete_file_parts(&self, key: &str) -> Result<()> {
        use sea_orm::sea_query::Query;
        // One statement, so that a commit racing it (a retried call) keeps
        // its file whole.
        let committed = Query::select()
            .column(file::Column::Key)
            .from(file::Entity)
            .and_where(file::Column::Key.eq(key))
            .to_owned();
        file_chunk::Entity::delete_many()
            .filter(file_chunk::Column::FileKey.eq(key))
            .filter(file_chunk::Column::FileKey.not_in_subquery(committed))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes the parts of uploads abandoned half-way (a gateway that died
    /// mid-upload) whose keys sort below `below_key`: upload keys begin with
    /// their start time, so that is every one begun before then. How many.
    pub async fn delete_abandoned_parts(&self, below_key: &str) -> Result<u64> {
        use sea_orm::sea_query::Query;
        let files = Query::select()
            .column(file::Column::Key)
            .from(file::Entity)
            .to_owned();
        let deleted = file_chunk::Entity::delete_many()
            .filter(file_chunk::Column::FileKey.lt(below_key))
            .filter(file_chunk::Column::FileKey.not_in_subquery(files))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    pub async fn put_file(&self, meta: file::Model, data: &[u8]) -> Result<()> {
        let txn = self.db.begin().await?;
        let key = meta.key.clone();
        file::Entity::insert(file::ActiveModel::from(meta))
            .exec_without_returning(&txn)
            .await?;
        for (seq, piece) in data.chunks(CHUNK).enumerate() {
            file_chunk::Entity::insert(file_chunk::ActiveModel {
                file_key: Set(key.clone()),
                seq: Set(seq as i32),
                data: Set(piece.to_vec()),
            })
            .exec_without_returning(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Bytes `owner` uploaded since `since_ms`.
    pub async fn bytes_uploaded_since(&self, owner: &str, since_ms: i64) -> Result<u64> {
        // SUM of a BIGINT is NUMERIC on PostgreSQL and DECIMAL on MySQL,
        // which the drivers do not decode as an integer: cast it back.
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "SELECT COALESCE(SUM(size), 0)::BIGINT AS total FROM files \
                 WHERE owner = $1 AND created_at >= $2"
            }
            DbBackend::MySql => {
                "SELECT CAST(COALESCE(SUM(size), 0) AS SIGNED) AS total FROM files \
                 WHERE owner = ? AND created_at >= ?"
            }
            _ => "SELECT COALESCE(SUM(size), 0) AS total FROM files WHERE owner = ? AND created_at >= ?",
        };
        let row = self
            .db
            .query_one(Statement::from_sql_and_values(
                backend,
                sql,
                [owner.into(), since_ms.into()],
            ))
            .await?;
        let total: i64 = match row {
            Some(row) => row.try_get("", "total")?,
            None => 0,
        };
        Ok(total.max(0) as u64)
    }

    /// Deletes the files uploaded before `cutoff_ms`, chunks first; how many.
    pub async fn delete_files_before(&self, cutoff_ms: i64) -> Result<u64> {
        use sea_orm::sea_query::Query;
        let old_keys = Query::select()
            .column(file::Column::Key)
            .from(file::Entity)
            .and_where(file::Column::CreatedAt.lt(cutoff_ms))
            .to_owned();
        let txn = self.db.begin().await?;
        file_chunk::Entity::delete_many()
            .filter(file_chunk::Column::FileKey.in_subquery(old_keys))
            .exec(&txn)
            .await?;
        let deleted = file::Entity::delete_many()
            .filter(file::Column::CreatedAt.lt(cutoff_ms))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(deleted.rows_affected)
    }

    /// A file's metadata.
    pub async fn file_meta(&self, key: &str) -> Result<Option<file::Model>> {
        Ok(file::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?)
    }

    /// Chunk `seq` of a file (each at most 512 KiB, in order from 0);
    /// None past its end.
    pub async fn file_chunk(&self, key: &str, seq: i32) -> Result<Option<Vec<u8>>> {
        Ok(file_chunk::Entity::find()
            .filter(file_chunk::Column::FileKey.eq(key))
            .filter(file_chunk::Column::Seq.eq(seq))
            .one(&self.db)
            .await?
            .map(|c| c.data))
    }

    pub async fn file(&self, key: &str) -> Result<Option<(file::Model, Vec<u8>)>> {
        let Some(meta) = file::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let mut data = Vec::with_capacity(meta.size.max(0) as usize);
        for chunk in file_chunk::Entity::find()
            .filter(file_chunk::Column::FileKey.eq(key))
            .order_by_asc(file_chunk::Column::Seq)
            .all(&self.db)
            .await?
        {
            data.extend_from_slice(&chunk.data);
        }
        Ok(Some((meta, data)))
    }
}
