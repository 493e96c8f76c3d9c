//! Uploaded files, stored in chunks.

use crate::entity::{file, file_chunk};
use crate::{Result, Store};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

/// Rows hold at most this much of a file.
const CHUNK: usize = 512 * 1024;

impl Store {
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
        use sea_orm::sea_query::Expr;
        let total: Option<Option<i64>> = file::Entity::find()
            .select_only()
            .column_as(Expr::col(file::Column::Size).sum(), "total")
            .filter(file::Column::Owner.eq(owner))
            .filter(file::Column::CreatedAt.gte(since_ms))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(total.flatten().unwrap_or(0).max(0) as u64)
    }

    /// Deletes the files uploaded before `cutoff_ms`, chunks first; how many.
    pub async fn delete_files_before(&self, cutoff_ms: i64) -> Result<u64> {
        let old: Vec<String> = file::Entity::find()
            .select_only()
            .column(file::Column::Key)
            .filter(file::Column::CreatedAt.lt(cutoff_ms))
            .into_tuple()
            .all(&self.db)
            .await?;
        if old.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin().await?;
        file_chunk::Entity::delete_many()
            .filter(file_chunk::Column::FileKey.is_in(old.clone()))
            .exec(&txn)
            .await?;
        let deleted = file::Entity::delete_many()
            .filter(file::Column::Key.is_in(old))
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
